"""Output folders tell the truth about their files.

``generate`` and ``rebalance`` outputs must match their manifest file for file (``check_folder``)
after: run A then run B into the same folder (refused); run A then run B with ``--overwrite``;
run, kill, rerun the same command; ``--overwrite`` over a tree holding a user's own file (refused,
naming the file). Every refusal is one stderr line naming the option or file, exit 2, nothing changed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from augment.core.errors import UserError
from augment.core.manifest import (
    MANIFEST,
    check_folder,
    check_output,
    claim_output,
    read_manifest,
    real_row,
    synthetic_row,
    write_manifest,
)
from tests.conftest import assert_one_line_error, make_folder_tree, run_cli, tree_state, write_image

pytestmark = pytest.mark.usefixtures("quiet")
REPO = Path(__file__).resolve().parents[2]


def synthetic_seeds(out: Path) -> set[str]:
    return {r["seed"] for r in read_manifest(out) if r["source"] == "synthetic"}


# --------------------------------------------------------------------------- the checker
def test_check_folder_names_every_disagreement(tmp_path):
    out = make_folder_tree(tmp_path / "o", {"train/happy": ["a.png", "b.png"], "train/sad": ["c.png"]})
    (out / ".generate.json").write_text("{}")  # bookkeeping is not a face
    rows = [real_row(f"train/{p}", p.split("/")[0], "train", "x") for p in ("happy/a.png", "happy/b.png", "sad/c.png")]
    write_manifest(out, rows)
    assert check_folder(out) == []

    (out / "train/happy/b.png").unlink()
    write_image(out / "train/sad/mine.jpg", [[0, 1], [2, 3]])
    (out / "train/sad/.c.png.ab12cd.tmp").write_bytes(b"half")
    write_manifest(out, [*rows, rows[0]])
    assert check_folder(out) == [
        "train/happy/a.png: listed 2 times in manifest.csv",
        "train/happy/b.png: in manifest.csv, not on disk",
        "train/sad/.c.png.ab12cd.tmp: on disk, not in manifest.csv",
        "train/sad/mine.jpg: on disk, not in manifest.csv",
    ]
    (out / MANIFEST).unlink()
    assert check_folder(out) == [f"{out}: no manifest.csv"]

    # FER2013 CSV rows name rows of one file
    csv_out = tmp_path / "csv"
    csv_out.mkdir()
    (csv_out / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    write_manifest(csv_out, [real_row(f"fer2013.csv#row{i}", "happy", "train", "x") for i in (1, 2)])
    assert check_folder(csv_out) == []


def test_check_output_decides_without_writing(tmp_path):
    out = tmp_path / "o"
    names = {"seed": "--seed"}
    assert check_output(out, "generate", {"seed": 1}, False, names).resume is False and not out.exists()
    claim_output(check_output(out, "generate", {"seed": 1}, False, names))
    # a run that stopped before its first file is not an output to protect: any settings start afresh
    assert check_output(out, "generate", {"seed": 2}, False, names).resume is False
    write_image(out / "happy/syn_happy_000000.png", [[1]])
    (out / "happy/.syn_happy_000000.png.x1y2.tmp").write_bytes(b"")  # a killed write's temp file
    write_manifest(out, [synthetic_row("happy/syn_happy_000000.png", "happy", "train", tmp_path, 1, 1, 0)])
    before = tree_state(out)
    same = check_output(out, "generate", {"seed": 1}, False, names)
    assert same.resume is True and same.remove == ["happy/.syn_happy_000000.png.x1y2.tmp"]
    with pytest.raises(UserError, match="--seed was 1, now 2"):
        check_output(out, "generate", {"seed": 2}, False, names)
    assert tree_state(out) == before
    replace = check_output(out, "generate", {"seed": 2}, True, names)
    assert replace.resume is False and replace.remove == [
        ".generate.json",
        "happy/.syn_happy_000000.png.x1y2.tmp",
        "happy/syn_happy_000000.png",
        "manifest.csv",
    ]
    claim_output(replace)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [".generate.json"]  # class folder gone too


def test_one_identity_rule_names_each_changed_setting(tmp_path):
    """augment.core.identity, which run folders, generate/rebalance outputs and compare reports share: a
    setting is named by the option the user typed, its values shown while they are short."""
    from augment.core.identity import FolderIdentity, option_name, refuse_foreign

    assert option_name("min_prob", {}) == "--min-prob" and option_name("data", {"data": "DATA"}) == "DATA"
    ident = FolderIdentity(".x.json", {"data": "DATA"})
    assert ident.read(tmp_path) is None
    ident.write(tmp_path, {"data": "a", "min_prob": 0.2, "classes": ("x",)})
    old = ident.read(tmp_path)
    assert ident.differing(old, {"data": "a", "min_prob": 0.2, "classes": ("x",)}, old) == []  # tuples as stored
    new = {"data": "b", "min_prob": 0.3, "classes": ["x" * 130]}
    assert ident.describe(old, new, new) == 'DATA was "a", now "b"; --min-prob was 0.2, now 0.3; --classes differs'
    by_key = FolderIdentity("config.json", names=None, show=repr, form="{name}: was {was}, now {now}")
    assert by_key.describe({"lr": 0.001}, {"lr": 0.01}, ["lr"]) == "lr: was 0.001, now 0.01"
    (tmp_path / ".x.json").write_text("{half")
    with pytest.raises(UserError, match=r"\.x\.json: unreadable"):
        ident.read(tmp_path)
    refuse_foreign(tmp_path, "comparison")  # hidden files only: free to take
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not empty and holds no comparison; choose a new --out folder"):
        refuse_foreign(tmp_path, "comparison")


# --------------------------------------------------------------------------- the two commands
@pytest.fixture(scope="module")
def data7(demo_dir, tmp_path_factory) -> Path:
    """The demo faces without contempt, which FER2013 lacks, so ``--out-format fer2013-csv`` can hold them."""
    out = tmp_path_factory.mktemp("data7") / "faces"
    shutil.copytree(demo_dir, out, ignore=shutil.ignore_patterns("contempt"))
    return out


@pytest.fixture(scope="module")
def other_run(tiny_gan_run, tmp_path_factory) -> Path:
    """The same generator in another run folder: another RUN_DIR / --generator."""
    run = tmp_path_factory.mktemp("other") / "run"
    shutil.copytree(tiny_gan_run, run)
    return run


def generate_args(run: Path, out: Path, per_class: int = 3, *extra) -> list:
    return ["generate", run, "--per-class", per_class, "--out", out, "--classes", "disgust,fear", *extra]


def rebalance_args(data: Path, run: Path, out: Path, *extra) -> list:
    return ["rebalance", data, "--generator", run, "--out", out, "--min-prob", 0, "--classes", "disgust,fear", *extra]


@pytest.fixture(scope="module")
def rebalanced7(data7, tiny_gan_run, tmp_path_factory) -> Path:
    """One finished rebalance (run A) of ``data7``; tests work on copies of it."""
    from augment.cli import main
    from tests.conftest import quiet_env

    out = tmp_path_factory.mktemp("rb7") / "out"
    with quiet_env():
        try:
            main([str(a) for a in rebalance_args(data7, tiny_gan_run, out, "--seed", 1)])
        except SystemExit as e:
            assert not e.code
    assert check_folder(out) == []
    return out


def run_a(kind: str, tmp_path: Path, capsys, tiny_gan_run, data7, rebalanced7) -> tuple[Path, list]:
    """Run A of ``kind`` in ``tmp_path/out`` and the arguments that made it."""
    out = tmp_path / "out"
    if kind == "rebalance":
        shutil.copytree(rebalanced7, out)
        return out, rebalance_args(data7, tiny_gan_run, out, "--seed", 1)
    args = generate_args(tiny_gan_run, out, 5)
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    return out, args


# One case per way of mixing two outputs: (command of run A, run B's changes, what the one line names).
CASES = {
    # generate mixes runs: another run, count, seed or class set into a folder holding run A
    "generate-other-run": ("generate", "RUN_DIR was"),
    "generate-per-class": ("generate", "--per-class was 5, now 3"),
    "generate-seed": ("generate", "--seed was 0, now 4"),
    "generate-classes": ("generate", '--classes was ["disgust", "fear"], now ["fear"]'),
    # rebalance --overwrite over a tree holding a user's own file: refused, the file named
    "rebalance-overwrite-users-file": ("rebalance", "train/happy/mine.jpg"),
    # --out-format fer2013-csv with a class FER2013 lacks: refused before a judge or a face is made
    "rebalance-fer2013-contempt": ("rebalance", "--out-format fer2013-csv cannot hold contempt"),
    # rebalance resumed with other settings names the option
    "rebalance-seed": ("rebalance", "--seed was 1, now 2"),
    "rebalance-target": ("rebalance", "the plan (--target, --classes, --fraction, --max-ratio)"),
    "rebalance-format": ("rebalance", '--out-format was "folders", now "fer2013-csv"'),
    "rebalance-generator": ("rebalance", "--generator was"),
    "rebalance-data": ("rebalance", "DATA was"),
}


def run_b(case: str, out: Path, a_args: list, tiny_gan_run, other_run, data7, demo_dir, tmp_path) -> list:
    """Run B of a case, into run A's folder."""
    if case.startswith("generate"):
        b = {
            "generate-other-run": generate_args(other_run, out, 5),
            "generate-per-class": generate_args(tiny_gan_run, out, 3),
            "generate-seed": generate_args(tiny_gan_run, out, 5, "--seed", 4),
            "generate-classes": [*generate_args(tiny_gan_run, out, 5), "--classes", "fear"],
        }
        return b[case]
    if case == "rebalance-overwrite-users-file":
        write_image(out / "train/happy/mine.jpg", [[0, 255], [255, 0]])
        return [*a_args, "--overwrite"]
    if case == "rebalance-fer2013-contempt":
        shutil.copytree(tiny_gan_run, tmp_path / "gen")  # default --min-prob: a judge would be trained in it
        new = tmp_path / "new"  # the corrected rerun must find nothing in its way: nothing is written
        return ["rebalance", demo_dir, "--generator", tmp_path / "gen", "--out", new, "--out-format", "fer2013-csv"]
    data = tmp_path / "moved"
    shutil.copytree(data7, data)
    b = {
        "rebalance-seed": [*a_args, "--seed", 2],
        "rebalance-target": [*a_args, "--target", 30],
        "rebalance-format": [*a_args, "--out-format", "fer2013-csv"],
        "rebalance-generator": rebalance_args(data7, other_run, out, "--seed", 1),
        "rebalance-data": rebalance_args(data, tiny_gan_run, out, "--seed", 1),
    }
    return b[case]


@pytest.mark.parametrize("case", list(CASES))
def test_run_b_into_run_a_is_refused_and_changes_nothing(
    case, capsys, tmp_path, tiny_gan_run, other_run, data7, demo_dir, rebalanced7
):
    kind, named = CASES[case]
    out, a_args = run_a(kind, tmp_path, capsys, tiny_gan_run, data7, rebalanced7)
    b_args = run_b(case, out, a_args, tiny_gan_run, other_run, data7, demo_dir, tmp_path)
    before = tree_state(out)
    code, stdout, err = run_cli(capsys, *b_args)
    assert_one_line_error(code, err, named)
    assert tree_state(out) == before  # nothing written, nothing removed
    if case == "rebalance-overwrite-users-file":
        assert check_folder(out) == ["train/happy/mine.jpg: on disk, not in manifest.csv"]
    else:
        assert check_folder(out) == []
    if case == "rebalance-fer2013-contempt":
        assert not (tmp_path / "new").exists() and not (tmp_path / "gen" / "judge").exists()
        assert "rebalance plan" in stdout  # refused after the plan, before a judge is trained or a face made


def test_generate_b_with_overwrite_holds_only_b(capsys, tmp_path, tiny_gan_run, other_run, data7, rebalanced7):
    """runA --per-class 5, then runB --per-class 3 --overwrite: the folder holds only B."""
    out, _ = run_a("generate", tmp_path, capsys, tiny_gan_run, data7, rebalanced7)
    code, _, err = run_cli(capsys, *generate_args(other_run, out, 3, "--seed", 2, "--overwrite"))
    assert code == 0, err
    assert check_folder(out) == []
    rows = read_manifest(out)
    assert len(rows) == 6 == len(list(out.rglob("*.png")))
    assert {Path(r["generator_run"]) for r in rows} == {other_run.resolve()}
    fresh = tmp_path / "fresh"
    assert run_cli(capsys, *generate_args(other_run, fresh, 3, "--seed", 2))[0] == 0
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.png")} == {
        str(p.relative_to(fresh)): p.read_bytes() for p in fresh.rglob("*.png")
    }


def test_rebalance_b_with_overwrite_holds_only_b(capsys, tmp_path, tiny_gan_run, data7, rebalanced7):
    out, a_args = run_a("rebalance", tmp_path, capsys, tiny_gan_run, data7, rebalanced7)
    from gan.sample import load_generator, sampling_seed

    disgust = load_generator(tiny_gan_run)[1]["classes"].index("disgust")  # the one class data7 lacks faces of
    assert synthetic_seeds(out) == {str(sampling_seed(1, disgust))}
    code, _, err = run_cli(capsys, *a_args, "--seed", 2, "--fraction", 0.5, "--overwrite")
    assert code == 0, err
    assert check_folder(out) == []
    assert synthetic_seeds(out) == {str(sampling_seed(2, disgust))}
    syn = [r for r in read_manifest(out) if r["source"] == "synthetic"]
    assert len(syn) == 9 == len(list(out.rglob("syn_*.png")))  # half of disgust's 18


def interrupt_after(monkeypatch, n: int, *targets: tuple[object, str]) -> None:
    """Raise KeyboardInterrupt (Ctrl-C) when the writers have written ``n`` files."""
    calls = {"n": 0}
    for module, name in targets:
        real = getattr(module, name)

        def wrapped(*args, _real=real, **kwargs):
            _real(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] >= n:
                raise KeyboardInterrupt

        monkeypatch.setattr(module, name, wrapped)


@pytest.mark.parametrize("kind", ["generate", "rebalance"])
def test_interrupted_then_rerun_finishes_without_duplicates(
    kind, capsys, monkeypatch, tmp_path, tiny_gan_run, data7, rebalanced7
):
    import augment.writer
    import gan.generate

    out = tmp_path / "out"
    real_files = len(read_manifest(rebalanced7)) - 18  # written first, then disgust's 18 synthetic faces
    if kind == "generate":
        args = generate_args(tiny_gan_run, out, 5)
        interrupt_after(monkeypatch, 4, (gan.generate, "write_png"))
    else:
        args = rebalance_args(data7, tiny_gan_run, out, "--seed", 1)
        interrupt_after(monkeypatch, real_files + 5, (augment.writer, "write_png"), (augment.writer, "_place_real"))
    code, _, _ = run_cli(capsys, *args)
    assert code != 0 and not (out / f"{kind}.json").exists()
    missing = check_folder(out)  # the manifest, written first, lists the files still to come; nothing else differs
    assert missing and all(p.endswith("in manifest.csv, not on disk") for p in missing)
    monkeypatch.undo()
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert check_folder(out) == []
    rows = read_manifest(out)
    assert len(rows) == len({r["path"] for r in rows}) == (10 if kind == "generate" else real_files + 18)
    if kind == "rebalance":  # the same files, bytes and manifest as the uninterrupted run A
        assert rows == read_manifest(rebalanced7)
        assert all((out / r["path"]).read_bytes() == (rebalanced7 / r["path"]).read_bytes() for r in rows)


def test_generate_killed_with_sigkill_then_rerun(capsys, tmp_path, tiny_gan_run):
    """A real ``kill -9`` in the middle of an atomic write: the rerun removes its temp file and finishes."""
    out = tmp_path / "out"
    args = [str(a) for a in generate_args(tiny_gan_run, out, 5)]
    script = textwrap.dedent(
        """
        import os, signal, sys
        import gan.generate
        from augment.core.atomic import atomic_path
        real, calls = gan.generate.write_png, [0]

        def write_png(path, image):
            calls[0] += 1
            if calls[0] == 4:
                with atomic_path(path) as tmp:
                    tmp.write_bytes(b"half a png")
                    os.kill(os.getpid(), signal.SIGKILL)
            real(path, image)

        gan.generate.write_png = write_png
        from augment.cli import main
        main(sys.argv[1:])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "AUGMENT_QUIET": "1"}
    proc = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    temps = [str(p.relative_to(out)) for p in out.rglob("*.tmp")]
    assert len(temps) == 1 and len(list(out.rglob("*.png"))) == 3
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert check_folder(out) == [] and not list(out.rglob("*.tmp"))
    assert len(read_manifest(out)) == 10 == len(list(out.rglob("*.png")))


def test_generate_overwrite_over_a_users_file_is_refused(capsys, tmp_path, tiny_gan_run, data7, rebalanced7):
    out, args = run_a("generate", tmp_path, capsys, tiny_gan_run, data7, rebalanced7)
    write_image(out / "fear/mine.jpg", [[0, 255], [255, 0]])
    before = tree_state(out)
    code, _, err = run_cli(capsys, *generate_args(tiny_gan_run, out, 3, "--overwrite"))
    assert_one_line_error(code, err, "fear/mine.jpg", "--out")
    assert tree_state(out) == before
    assert check_folder(out) == ["fear/mine.jpg: on disk, not in manifest.csv"]
