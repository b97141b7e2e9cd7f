"""The shape of the code: short functions and files, imports that only flow down the layers, and
comments that say what the code does, not what was measured on a given day or which issue asked for it.

Layers, bottom to top: ``augment.core`` (dataset, readers, runtime, run folders, errors) ←
``classifier`` ← ``gan`` (it uses the judge classifier) ← the application modules in ``augment``
(CLI, compare, rebalance, report, demo).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("augment", "gan", "classifier")
MAX_LINES = 80  # of a function
MAX_FILE_LINES = 500  # of a source file
# A date (a figure of that day) or an issue number, anywhere in the code.
DATED = re.compile(r"20[0-9]{2}-[0-9]{2}-[0-9]{2}|issue [0-9]+", re.IGNORECASE)
# What each layer may import from the project (a module always may import its own layer).
ALLOWED = {
    "augment.core": ("augment.core",),
    "classifier": ("augment.core", "classifier"),
    "gan": ("augment.core", "classifier", "gan"),
    "augment": ("augment.core", "augment", "classifier", "gan"),
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            rel = f.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((".".join(parts), f))
    return out


def layer_of(module: str) -> str:
    if module == "augment.core" or module.startswith("augment.core."):
        return "augment.core"
    return module.split(".")[0]


def project_imports(module: str, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, imported module) for every import of the project, lazy ones inside functions too."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def layer_violations(module: str, tree: ast.AST) -> list[str]:
    allowed = ALLOWED[layer_of(module)]
    bad = []
    for line, name in project_imports(module, tree):
        target = layer_of(name)
        if target not in allowed:
            bad.append(f"{module}:{line} imports {name} ({layer_of(module)} may import only {', '.join(allowed)})")
    return bad


def _sources(*dirs: str) -> list[Path]:
    return [f for d in dirs for f in sorted((ROOT / d).rglob("*.py"))]


def long_functions(path: Path, tree: ast.AST, limit: int = MAX_LINES) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > limit
    ]


def long_file(path: Path, text: str, limit: int = MAX_FILE_LINES) -> list[str]:
    lines = len(text.splitlines())
    return [f"{path.relative_to(ROOT)} ({lines} lines)"] if lines > limit else []


def dated_lines(path: Path, text: str) -> list[str]:
    """Lines that name a date or an issue number: say what holds without it (the history is CHANGELOG.md's)."""
    return [
        f"{path.relative_to(ROOT)}:{i} {line.strip()}"
        for i, line in enumerate(text.splitlines(), start=1)
        if DATED.search(line)
    ]


def duplicated_code(*paths: str | Path) -> str:
    """What pylint's duplicate-code check (dev extra) reports on ``paths``: blocks of 6+ similar lines."""
    rules = ["--disable=all", "--enable=duplicate-code", "--min-similarity-lines=6", "--score=n"]
    cmd = [sys.executable, "-m", "pylint", *rules, *map(str, paths)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return proc.stdout.strip() + proc.stderr.strip() if proc.returncode or proc.stdout.strip() else ""


def test_every_function_is_short() -> None:
    bad = []
    for _, path in _modules():
        bad += long_functions(path, ast.parse(path.read_text()))
    assert not bad, "functions over 80 lines (split them into named steps):\n" + "\n".join(bad)


def test_every_file_is_short() -> None:
    bad = []
    for path in _sources(*PACKAGES):
        bad += long_file(path, path.read_text())
    assert not bad, f"source files over {MAX_FILE_LINES} lines (split them by job):\n" + "\n".join(bad)


def test_no_dates_or_issue_numbers_in_the_code() -> None:
    bad = []
    for path in _sources(*PACKAGES, "scripts"):
        bad += dated_lines(path, path.read_text())
    assert not bad, "dated text or issue numbers (say what holds, without them):\n" + "\n".join(bad)


def test_imports_follow_the_layers() -> None:
    bad = []
    for module, path in _modules():
        bad += layer_violations(module, ast.parse(path.read_text()))
    assert not bad, "\n".join(bad)


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Every check of this file catches what it is for, and passes what it is not for."""
    upward = ast.parse("def f():\n    from augment.compare import run_compare\n")
    assert layer_violations("classifier.train", upward)
    assert layer_violations("augment.core.dataset", ast.parse("import gan.models\n"))
    assert not layer_violations("gan.train", ast.parse("from classifier.judge import get_judge\n"))
    assert layer_violations("augment.core.runtime", ast.parse("from augment import compare\n"))
    long_src = "def f():\n" + "    x = 1\n" * 90
    assert long_functions(ROOT / "gan" / "x.py", ast.parse(long_src))
    assert long_functions(ROOT / "augment" / "cli.py", ast.parse(long_src))  # the CLI too
    assert not long_functions(ROOT / "gan" / "x.py", ast.parse("def f():\n" + "    x = 1\n" * 79))
    assert long_file(ROOT / "augment" / "cli.py", "x = 1\n" * 501)
    assert not long_file(ROOT / "augment" / "cli.py", "x = 1\n" * 500)
    day, issue = "-".join(("2026", "11", "28")), " ".join(("issue", "13"))  # in parts: no date in this file
    for dated in (f"# measured {day}: 0.544", f"# since {day}, the default", f"# ({issue}'s banding)"):
        assert dated_lines(ROOT / "gan" / "x.py", dated), dated
    block = "".join(f"    total = total * {i} + {i}\n" for i in range(8))
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text(f"def {name}(total):\n{block}    return total\n")
    assert duplicated_code(tmp_path / "a.py", tmp_path / "b.py")
    assert not duplicated_code(tmp_path / "a.py")


def test_no_duplicated_code() -> None:
    """pylint (dev extra) finds no block of 6+ similar lines in the packages."""
    found = duplicated_code(*PACKAGES)
    assert not found, found
