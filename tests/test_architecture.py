"""The shape of the code: short functions, and imports that only flow down the layers.

Layers, bottom to top: ``augment.core`` (dataset, readers, runtime, run folders, errors) ←
``classifier`` ← ``gan`` (it uses the judge classifier) ← the application modules in ``augment``
(CLI, compare, rebalance, report, demo).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("augment", "gan", "classifier")
MAX_LINES = 80
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


def long_functions(path: Path, tree: ast.AST, limit: int = MAX_LINES) -> list[str]:
    if path.name == "cli.py":  # CLI commands are long by their option lists
        return []
    return [
        f"{path.relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > limit
    ]


def test_every_function_is_short() -> None:
    bad = []
    for _, path in _modules():
        bad += long_functions(path, ast.parse(path.read_text()))
    assert not bad, "functions over 80 lines (split them into named steps):\n" + "\n".join(bad)


def test_imports_follow_the_layers() -> None:
    bad = []
    for module, path in _modules():
        bad += layer_violations(module, ast.parse(path.read_text()))
    assert not bad, "\n".join(bad)


def test_the_checks_can_fail() -> None:
    """The two checks above catch what they are for."""
    upward = ast.parse("def f():\n    from augment.compare import run_compare\n")
    assert layer_violations("classifier.train", upward)
    assert layer_violations("augment.core.dataset", ast.parse("import gan.models\n"))
    assert not layer_violations("gan.train", ast.parse("from classifier.judge import get_judge\n"))
    assert layer_violations("augment.core.runtime", ast.parse("from augment import compare\n"))
    long_src = "def f():\n" + "    x = 1\n" * 90
    assert long_functions(ROOT / "gan" / "x.py", ast.parse(long_src))
    assert not long_functions(ROOT / "augment" / "cli.py", ast.parse(long_src))


def test_no_duplicated_code() -> None:
    """pylint (dev extra) finds no block of 6+ similar lines in the packages."""
    rules = ["--disable=all", "--enable=duplicate-code", "--min-similarity-lines=6", "--score=n"]
    cmd = [sys.executable, "-m", "pylint", *rules, *PACKAGES]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
