"""``rebalance``'s output: synthetic train images per plan, the manifest, both layouts, OUT rules, resume,
and the command line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from augment import writer
from augment.core.errors import UserError
from augment.core.manifest import MANIFEST_FIELDS, check_folder, read_manifest
from augment.core.readers import load_dataset
from augment.plan import plan_rebalance
from augment.rebalance import STATE_FILE, run_rebalance
from tests.augment.rebalance.helpers import OFF, digest, image_files, only, plan_rows, tree_bytes
from tests.conftest import TINY_GAN_STEPS as STEPS
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")


@pytest.fixture(scope="module")
def rebalanced(data, plan, tiny_gan_run, tmp_path_factory) -> tuple[Path, dict]:
    """One uninterrupted folders rebalance, shared by the read-only tests and as a reference."""
    out = tmp_path_factory.mktemp("rb") / "out"
    summary = run_rebalance(data, tiny_gan_run, out, plan, None, OFF, seed=3, progress=False)
    return out, summary


# --------------------------------------------------------------------------- plan arithmetic on real data
def test_plan_of_the_demo_data(plan, data):
    by = {p.name: p for p in plan}
    assert data.counts("train")["disgust"] == 5 and by["disgust"].add == 19
    assert by["contempt"].add == 18 and by["sad"].add == 2 and by["fear"].add == 2
    assert by["happy"].add == 0
    assert all(p.final == 24 for p in plan)


# --------------------------------------------------------------------------- manifest and layout
def test_manifest_matches_files_and_plan(rebalanced, data, plan, tiny_gan_run):
    out, summary = rebalanced
    with open(out / "manifest.csv", newline="") as fh:
        assert tuple(csv.DictReader(fh).fieldnames) == MANIFEST_FIELDS
    rows = read_manifest(out)
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == summary["files"]
    assert set(paths) == image_files(out)  # one row per file, no file without a row
    for r in rows:
        assert (out / r["path"]).is_file()
        split, label, _ = r["path"].split("/")
        assert (split, label) == (r["split"], r["label"])

    final = {p.name: p.final for p in plan}
    for split, want in (("train", final), ("val", data.counts("val")), ("test", data.counts("test"))):
        got = {c: sum(1 for r in rows if r["split"] == split and r["label"] == c) for c in data.classes}
        assert got == want, split

    synthetic = [r for r in rows if r["source"] == "synthetic"]
    assert len(synthetic) == sum(p.add for p in plan) == summary["synthetic_files"]
    for r in synthetic:
        # the file-name rule of augment.core.manifest: syn_<class>_<noise index>.png
        assert Path(r["path"]).name == f"syn_{r['label']}_{int(r['index']):06d}.png"
        assert Path(r["generator_run"]) == tiny_gan_run
        assert (r["checkpoint_step"], r["origin"]) == (str(STEPS), "")
        assert int(r["seed"]) == 3 * 1000 + data.classes.index(r["label"])  # --seed 3's sampling seed
    real = [r for r in rows if r["source"] == "real"]
    assert len(real) == len(data)
    for r in real:
        assert r["origin"] and Path(r["origin"]).is_file()
        assert (out / r["path"]).read_bytes() == Path(r["origin"]).read_bytes()  # linked or copied, unchanged
        assert (r["generator_run"], r["checkpoint_step"], r["seed"], r["index"]) == ("", "", "", "")
    assert {r["origin"] for r in real} == set(data.sources.tolist())

    assert summary["splits"] == {
        s: int((data.splits == s).sum()) + (len(synthetic) if s == "train" else 0) for s in ("train", "val", "test")
    }
    per_class = summary["synthesis"]["per_class"]
    assert {c: v["added"] for c, v in per_class.items()} == {p.name: p.add for p in plan if p.add}
    assert (out / "rebalance.json").is_file() and (out / STATE_FILE).is_file()


def test_no_synthetic_file_outside_train(rebalanced, data):
    out, _ = rebalanced
    rows = read_manifest(out)
    assert {r["split"] for r in rows if r["source"] == "synthetic"} == {"train"}
    for split in ("val", "test"):
        files = {p for p in image_files(out) if p.startswith(f"{split}/")}
        assert files and not any(Path(p).name.startswith("syn_") for p in files)
        # carried over unchanged: the same files (by name and bytes) as the input split
        src = {
            (data.classes[int(lab)], Path(s).name, digest(Path(s)))
            for lab, s in zip(data.labels[data.splits == split], data.sources[data.splits == split], strict=True)
        }
        got = {(Path(p).parent.name, Path(p).name, digest(out / p)) for p in files}
        assert got == src


def test_folder_output_reads_back(rebalanced, data, plan):
    out, _ = rebalanced
    back = load_dataset(out)
    assert back.counts("train") == {p.name: p.final for p in plan}
    assert back.counts("val") == data.counts("val")
    assert back.counts("test") == data.counts("test")
    assert (back.size, back.channels) == (data.size, data.channels)


def test_fer2013_csv_output_reads_back(data, tiny_gan_run, tmp_path):
    seven = data.with_classes([c for c in data.classes if c != "contempt"])  # FER2013 has no contempt
    plan = plan_rebalance(seven.counts("train"), "max")
    out = tmp_path / "csv"
    summary = run_rebalance(seven, tiny_gan_run, out, plan, None, OFF, seed=1, fmt="fer2013-csv", progress=False)
    assert (out / "fer2013.csv").is_file() and not list(out.rglob("*.png"))
    back = load_dataset(out / "fer2013.csv")
    assert back.counts("train") == {p.name: p.final for p in plan}
    assert back.counts("val") == seven.counts("val")
    assert back.counts("test") == seven.counts("test")
    rows = read_manifest(out)
    assert len(rows) == summary["files"] == len(back)
    assert [r["path"] for r in rows] == [f"fer2013.csv#row{i + 1}" for i in range(len(rows))]
    syn = [r for r in rows if r["source"] == "synthetic"]
    assert len(syn) == sum(p.add for p in plan) and {r["split"] for r in syn} == {"train"}
    assert all(r["seed"] == str(1000 + data.classes.index(r["label"])) for r in syn)
    assert all(r["checkpoint_step"] == str(STEPS) and r["index"] for r in syn)

    with pytest.raises(UserError, match="cannot hold contempt"):
        run_rebalance(
            data,
            tiny_gan_run,
            tmp_path / "csv8",
            plan_rebalance(data.counts("train")),
            None,
            OFF,
            fmt="fer2013-csv",
            progress=False,
        )
    with pytest.raises(UserError, match="--out-format"):
        run_rebalance(data, tiny_gan_run, tmp_path / "bad", plan, None, OFF, fmt="parquet", progress=False)


# --------------------------------------------------------------------------- OUT rules, overwrite, resume
def test_refuses_a_non_empty_out_unless_overwrite(data, plan, tiny_gan_run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for overwrite in (False, True):  # a user's file is neither mixed into the output nor deleted
        with pytest.raises(UserError, match=r"no manifest.csv lists \(notes.txt\)"):
            run_rebalance(data, tiny_gan_run, out, plan, None, OFF, overwrite=overwrite, progress=False)
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # nothing written
    assert (out / "notes.txt").read_text() == "mine"

    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        run_rebalance(data, tiny_gan_run, tmp_path / "file", plan, None, OFF, progress=False)


def test_overwrite_of_an_older_rebalance_leaves_nothing_stale(data, plan, tiny_gan_run, rebalanced, tmp_path):
    """Another seed and a smaller fraction over an earlier run: same files and bytes as a fresh run."""
    old, _ = rebalanced
    out = tmp_path / "out"
    run_rebalance(data, tiny_gan_run, out, plan, None, OFF, seed=3, progress=False)
    assert tree_bytes(out) == tree_bytes(old)

    half = plan_rebalance(data.counts("train"), "max", fraction=0.5)
    with pytest.raises(UserError, match="--seed was 3, now 4; the plan"):
        run_rebalance(data, tiny_gan_run, out, half, None, OFF, seed=4, progress=False)
    summary = run_rebalance(data, tiny_gan_run, out, half, None, OFF, seed=4, overwrite=True, progress=False)
    assert summary["resumed"] is False
    fresh = tmp_path / "fresh"
    run_rebalance(data, tiny_gan_run, fresh, half, None, OFF, seed=4, progress=False)
    assert tree_bytes(out) == tree_bytes(fresh)
    assert load_dataset(out).counts("train") == {p.name: p.final for p in half}


def test_rerun_after_interruption_finishes_without_duplicates(
    data, plan, tiny_gan_run, rebalanced, tmp_path, monkeypatch
):
    ref, _ = rebalanced
    out = tmp_path / "out"
    calls = {"n": 0}
    stop_after = len(data) + 7  # all real files and a few synthetic ones

    def interrupting(fn):
        def wrapped(*args, **kwargs):
            fn(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] >= stop_after:
                raise KeyboardInterrupt

        return wrapped

    monkeypatch.setattr(writer, "write_png", interrupting(writer.write_png))
    monkeypatch.setattr(writer, "_place_real", interrupting(writer._place_real))
    with pytest.raises(KeyboardInterrupt):
        run_rebalance(data, tiny_gan_run, out, plan, None, OFF, seed=3, progress=False)
    assert len(image_files(out)) == stop_after and not (out / "rebalance.json").exists()  # unfinished
    # the manifest, written first, lists what the folder will hold: every file on disk, and the rest missing
    problems = check_folder(out)
    assert len(problems) == len(read_manifest(out)) - stop_after
    assert all(p.endswith("in manifest.csv, not on disk") for p in problems)
    monkeypatch.undo()

    # a rerun with other options is refused: it would mix two datasets
    with pytest.raises(UserError, match="--seed was 3, now 5"):
        run_rebalance(data, tiny_gan_run, out, plan, None, OFF, seed=5, progress=False)
    summary = run_rebalance(data, tiny_gan_run, out, plan, None, OFF, seed=3, progress=False)
    assert summary["resumed"] is True
    rows = read_manifest(out)
    assert len(rows) == len({r["path"] for r in rows}) == len(image_files(out)) == summary["files"]
    assert tree_bytes(out) == tree_bytes(ref)  # same files, same bytes, no temp files left
    assert not [p for p in out.rglob(".*") if p.name != STATE_FILE]
    assert check_folder(out) == []


def test_a_caller_loads_the_generator_and_checks_out_once(data, plan, tiny_gan_run, tmp_path, monkeypatch):
    """A caller that has loaded the sampler and checked OUT hands both over: run_rebalance neither loads
    nor checks again, and writes what a run_rebalance that does both itself writes."""
    import gan.translate
    from augment import rebalance

    loads, checks = [], []
    real_load, real_check = gan.translate.read_generator, rebalance.check_output
    monkeypatch.setattr(gan.translate, "read_generator", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    monkeypatch.setattr(rebalance, "check_output", lambda *a, **k: checks.append(a) or real_check(*a, **k))
    disgust, out = only(plan, "disgust"), tmp_path / "out"
    sampler = gan.translate.load_sampler(tiny_gan_run, data.split("train"))
    rebalance.check_options("folders")
    step, checkpoint = sampler[1]["step"], sampler[1]["checkpoint"]
    claim = rebalance.check_rebalance_out(data, tiny_gan_run, step, out, disgust, OFF, 0, "folders", False, checkpoint)
    summary = run_rebalance(data, tiny_gan_run, out, disgust, None, OFF, progress=False, sampler=sampler, claim=claim)
    assert (len(loads), len(checks)) == (1, 1) and summary["synthetic_files"] == 19
    run_rebalance(data, tiny_gan_run, tmp_path / "alone", disgust, None, OFF, progress=False)
    assert (len(loads), len(checks)) == (2, 2)  # once each, by itself
    assert tree_bytes(out) == tree_bytes(tmp_path / "alone")


# --------------------------------------------------------------------------- CLI


def test_cli_dry_run_prints_the_plan_and_writes_nothing(demo_dir, tiny_gan_run, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "rebalance", demo_dir, "--generator", tiny_gan_run, "--out", out, "--dry-run")
    assert code == 0, err
    assert "rebalance plan" in stdout and "total" in stdout
    lines = plan_rows(stdout)
    assert lines["disgust"] == ["6", "+18", "24"] and lines["contempt"] == ["6", "+18", "24"]
    assert lines["happy"] == ["24", "0", "24"]
    assert not out.exists()
    assert not (tiny_gan_run / "judge").exists()  # no judge trained for a dry run

    code, stdout, err = run_cli(
        capsys,
        "rebalance",
        demo_dir,
        "--generator",
        tiny_gan_run,
        "--out",
        out,
        "--dry-run",
        "--target",
        "12",
        "--classes",
        "disgust",
        "--fraction",
        "0.5",
    )
    assert code == 0, err
    lines = plan_rows(stdout)
    assert lines["disgust"] == ["6", "+3", "9"] and lines["contempt"] == ["6", "0", "6"]
    assert not out.exists()


def test_cli_rebalance_writes_and_refuses(demo_dir, tiny_gan_run, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["rebalance", demo_dir, "--generator", tiny_gan_run, "--out", out, "--min-prob", "0"]
    code, stdout, err = run_cli(capsys, *base, "--classes", "disgust")
    assert code == 0, err
    assert "disgust: kept 18 of" in stdout and "manifest" in stdout
    assert load_dataset(out).counts("train")["disgust"] == 24
    code, _, err = run_cli(capsys, *base, "--classes", "disgust", "--seed", "9")
    assert_one_line_error(code, err, "--seed was 0, now 9")
    csv_args = ["rebalance", demo_dir, "--generator", tiny_gan_run, "--out", tmp_path / "csv", "--min-prob", "0"]
    code, _, err = run_cli(capsys, *csv_args, "--out-format", "fer2013-csv")
    assert code == 2 and "cannot hold contempt" in err
    code, _, err = run_cli(capsys, *base, "--target", "lots")
    assert code == 2 and "--target lots" in err


def test_cli_checkpoint_choice_is_checked(demo_dir, tiny_gan_run, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["rebalance", demo_dir, "--generator", tiny_gan_run, "--out", out, "--dry-run"]
    code, _, err = run_cli(capsys, *base, "--checkpoint", "latest")
    assert_one_line_error(code, err, "--checkpoint latest", "best or last")
    code, stdout, err = run_cli(capsys, *base)  # best by default: this run has none, so the last, with a note
    assert code == 0, err
    assert "no best.pt" in " ".join(stdout.split()) and not out.exists()
    code, _, err = run_cli(capsys, "compare", demo_dir, "--generator", tiny_gan_run, "--out", out, "--checkpoint", "x")
    assert_one_line_error(code, err, "--checkpoint x")
