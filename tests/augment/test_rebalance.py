"""``rebalance``: synthetic train images per plan, quality filter, manifest, output layouts, resume, CLI."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from augment import writer
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.manifest import MANIFEST_FIELDS, check_folder, read_manifest
from augment.core.readers import load_dataset
from augment.plan import ClassPlan, plan_rebalance
from augment.rebalance import STATE_FILE, QualityFilter, run_rebalance, synthesize
from tests.conftest import TINY_GAN_STEPS as STEPS
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")
OFF = QualityFilter(min_prob=0)  # a 10-step GAN's faces would not pass a real judge
VAL = {"sad": 2, "fear": 2, "disgust": 1}  # train images moved to val, so val exists and is carried over


@pytest.fixture(scope="module")
def data(demo_ds) -> FaceDataset:
    """The demo faces with a small val split (the first train images of a few classes)."""
    ds = demo_ds.subset(np.arange(len(demo_ds)))
    for c, n in VAL.items():
        idx = np.flatnonzero((ds.splits == "train") & (ds.labels == ds.classes.index(c)))[:n]
        ds.splits[idx] = "val"
    return ds


@pytest.fixture(scope="module")
def plan(data) -> list[ClassPlan]:
    return plan_rebalance(data.counts("train"), "max")


@pytest.fixture(scope="module")
def rebalanced(data, plan, tiny_gan_run, tmp_path_factory) -> tuple[Path, dict]:
    """One uninterrupted folders rebalance, shared by the read-only tests and as a reference."""
    out = tmp_path_factory.mktemp("rb") / "out"
    summary = run_rebalance(data, tiny_gan_run, out, plan, None, OFF, seed=3, progress=False)
    return out, summary


def image_files(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*.png")}


def tree_bytes(out: Path) -> dict[str, bytes]:
    """Every file (hidden ones too) but rebalance.json, which names OUT and says whether it resumed."""
    return {
        str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != "rebalance.json"
    }


def digest(path: Path) -> str:
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


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
    with pytest.raises(UserError, match="--format"):
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


# --------------------------------------------------------------------------- the quality filter
class StubJudge(torch.nn.Module):
    """Says ``yes`` (probability ~1) for every ``every``-th candidate of a call and ``no`` for the rest."""

    def __init__(self, classes: list[str], yes: str, no: str, every: int):
        super().__init__()
        self.k, self.yes, self.no, self.every = len(classes), classes.index(yes), classes.index(no), every
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        logits = torch.zeros(len(x), self.k)
        hit = torch.arange(len(x)) % self.every == 0
        logits[hit, self.yes] = 30.0
        logits[~hit, self.no] = 30.0
        return logits


def stub_judge(data: FaceDataset, yes: str = "disgust", no: str = "happy", every: int = 16):
    classes = list(reversed(data.classes))  # its own class order: the filter must look the class up
    return StubJudge(classes, yes, no, every), {"classes": classes, "size": data.size, "channels": data.channels}


def only(plan: list[ClassPlan], name: str) -> list[ClassPlan]:
    return [ClassPlan(p.name, p.real, p.target, p.add if p.name == name else 0) for p in plan]


def test_judge_filter_drops_and_keeps_generating(data, plan, tiny_gan_run):
    from gan.sample import generate_images, load_generator

    train = data.split("train")
    judge = stub_judge(data)
    quality = QualityFilter(min_prob=0.5, drop_near_copies=False)
    syn, report = synthesize(only(plan, "disgust"), tiny_gan_run, train, judge, quality, seed=2, progress=False)
    r = report["per_class"]["disgust"]
    # 64 candidates per round, 4 of them accepted: 5 rounds for 19 images
    assert (r["added"], r["generated"], r["dropped_by_judge"], r["dropped_near_copies"]) == (19, 320, 300, 0)
    assert judge[0].calls == 5 and report["min_prob"] == 0.5
    assert len(syn) == 19 and syn.synthetic.all() and set(syn.splits.tolist()) == {"train"}
    assert set(syn.labels.tolist()) == {data.classes.index("disgust")}
    # the kept images are candidates 0, 16, 32, ... of the fixed candidate order
    g, meta = load_generator(tiny_gan_run)
    cand = generate_images(
        g, np.full(320, meta["classes"].index("disgust")), seed=2 * 1000 + meta["classes"].index("disgust")
    )
    assert np.array_equal(syn.images, cand[::16][:19])


def test_impossible_filter_raises_instead_of_looping(data, plan, tiny_gan_run):
    train = data.split("train")
    judge = stub_judge(data, yes="disgust", no="happy")  # never says contempt
    quality = QualityFilter(min_prob=0.5, drop_near_copies=False, max_tries=5)
    with pytest.raises(UserError, match=r"contempt: only 0 of 18 samples passed the quality filter"):
        synthesize(only(plan, "contempt"), tiny_gan_run, train, judge, quality, progress=False)
    assert judge[0].calls == 2  # 5 tries × 18 = 90 candidates: two rounds of 64, then it stops

    with pytest.raises(UserError, match="needs a judge"):
        synthesize(plan, tiny_gan_run, train, None, QualityFilter(min_prob=0.5), progress=False)
    model, meta = stub_judge(data.with_classes(["happy", "disgust"]))
    with pytest.raises(UserError, match="judge classifier cannot score contempt"):
        synthesize(only(plan, "contempt"), tiny_gan_run, train, (model, meta), quality, progress=False)


def test_a_hopeless_pass_rate_stops_early_with_its_rate(data, plan, tiny_gan_run):
    """1 in 256 candidates passes: after one round of 1,024 (EARLY_TRIES) not even twice that rate could
    fill 700 faces within 30 tries per wanted image, so it stops there, not after 21,000 tries."""
    train = data.split("train")
    judge = stub_judge(data, every=256)
    big = [ClassPlan(p.name, p.real, p.real + 700, 700 if p.name == "disgust" else 0) for p in plan]
    with pytest.raises(UserError, match=r"disgust: only 4 of 700 samples .* 1024 tries \(0\.4%.*lower --min-prob or"):
        synthesize(big, tiny_gan_run, train, judge, QualityFilter(min_prob=0.5, drop_near_copies=False))


def test_the_min_prob_hint_names_a_threshold_that_would_fill():
    from augment.rebalance import _min_prob_hint

    probs = np.linspace(0, 0.3, 600, endpoint=False)  # a sixth of them at 0.25 or more
    assert _min_prob_hint(probs, QualityFilter(min_prob=0.3)) == "--min-prob 0.25 would pass 17% of them"
    assert _min_prob_hint(probs, QualityFilter(min_prob=0.3, max_tries=5)) == "--min-prob 0.15 would pass 50% of them"
    assert _min_prob_hint(np.zeros(600), QualityFilter(min_prob=0.3)) == ""
    assert _min_prob_hint(probs, QualityFilter(min_prob=0.0, drop_near_copies=True)) == ""


def test_near_copies_of_training_faces_are_dropped(data, plan, tiny_gan_run, monkeypatch):
    """With every training face planted as a 'generated' one, the near-copy filter must catch them."""
    import gan.sample

    train = data.split("train")
    real_disgust = train.images[train.labels == data.classes.index("disgust")]
    real_generate = gan.sample.generate_images

    def copies_first(g, labels, seed, device="cpu", batch=256, offset=0):
        out = real_generate(g, labels, seed, device, batch, offset)
        if offset == 0:
            out[: len(real_disgust)] = real_disgust  # the first candidates copy training faces
        return out

    monkeypatch.setattr(gan.sample, "generate_images", copies_first)
    syn, report = synthesize(
        only(plan, "disgust"), tiny_gan_run, train, None, QualityFilter(min_prob=0), progress=False
    )
    r = report["per_class"]["disgust"]
    assert r["dropped_near_copies"] >= len(real_disgust) and r["added"] == 19
    assert report["near_copy_threshold"] > 0
    kept = {im.tobytes() for im in syn.images}
    assert not kept & {im.tobytes() for im in real_disgust}


def test_manifest_row_reproduces_its_file_bit_exactly(data, plan, tiny_gan_run, tmp_path):
    """(run, step, seed, index) of a synthetic row give its file back through gan.sample, also when the
    filter skipped candidates: the index (and the file name) is the noise index, not the accepted count."""
    from PIL import Image

    from gan.sample import generate_images, load_generator

    out = tmp_path / "out"
    quality = QualityFilter(min_prob=0.5, drop_near_copies=False)
    judge = stub_judge(data, every=5)  # accepts positions 0, 5, 10, ... of each 64-candidate round
    run_rebalance(data, tiny_gan_run, out, only(plan, "disgust"), judge, quality, seed=4, progress=False)
    syn = [r for r in read_manifest(out) if r["source"] == "synthetic"]
    assert [int(r["index"]) for r in syn] == [start + k for start in (0, 64) for k in range(0, 64, 5)][:19]
    g, meta = load_generator(tiny_gan_run)
    for r in syn:
        assert Path(r["generator_run"]) == tiny_gan_run.resolve() and int(r["checkpoint_step"]) == meta["step"]
        label = np.array([meta["classes"].index(r["label"])])
        face = generate_images(g, label, seed=int(r["seed"]), offset=int(r["index"]))[0]
        with Image.open(out / r["path"]) as im:
            assert np.array_equal(np.asarray(im), face[0]), r["path"]


@pytest.fixture(scope="module")
def tiny_judge(tiny_judge_run):
    from classifier.inference import load_classifier

    return load_classifier(tiny_judge_run, device="cpu")


def test_a_real_judge_with_a_low_threshold(data, plan, tiny_gan_run, tiny_judge, tmp_path):
    quality = QualityFilter(min_prob=1e-6)
    summary = run_rebalance(
        data, tiny_gan_run, tmp_path / "out", only(plan, "disgust"), tiny_judge, quality, progress=False
    )
    r = summary["synthesis"]["per_class"]["disgust"]
    assert r["added"] == 19 and r["dropped_by_judge"] == 0 and summary["synthesis"]["min_prob"] == 1e-6
    assert summary["synthetic_files"] == 19


# --------------------------------------------------------------------------- CLI
def plan_rows(stdout: str) -> dict[str, list[str]]:
    """The plan table's rows by class: [real, synthetic, final] (box-drawing characters dropped)."""
    rows = {}
    for line in stdout.splitlines():
        tokens = re.findall(r"[\w+,]+", line)
        if len(tokens) == 4 and tokens[0].isalpha():
            rows[tokens[0]] = tokens[1:]
    return rows


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
    code, _, err = run_cli(capsys, *csv_args, "--format", "fer2013-csv")
    assert code == 2 and "cannot hold contempt" in err
    code, _, err = run_cli(capsys, *base, "--target", "lots")
    assert code == 2 and "--target lots" in err


# --------------------------------------------------------------------------- gating by usefulness (--min-cas)
BRIGHTNESS = {"happy": 0.35, "sad": 0.7, "surprise": 1.0}  # each class at its own brightness
CODED_COUNTS = {"happy": 30, "sad": 20, "surprise": 20}  # train faces; test gets a fifth of that
CODED_VAL = 0.3  # the generator's validation share: a few faces per class for CAS to test on


@pytest.fixture(scope="module")
def coded_dir(tmp_path_factory) -> Path:
    """Demo faces of three classes, each class scaled to its own brightness so that the small CAS classifier
    tells them apart from a few dozen faces in seconds: ``train|test/<class>/*.png``."""
    from augment.demo_faces import DEMO_CLASSES, make_demo_arrays
    from tests.conftest import write_image

    root = tmp_path_factory.mktemp("coded") / "faces"
    for split, seed, share in (("train", 0, 1.0), ("test", 1, 0.2)):
        counts = {c: int(n * share) for c, n in CODED_COUNTS.items()}
        images, labels = make_demo_arrays(counts, seed=seed)
        for i, (im, lab) in enumerate(zip(images, labels, strict=True)):
            name = DEMO_CLASSES[lab]
            write_image(root / split / name / f"{i:04d}.png", (im[0] * BRIGHTNESS[name]).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def coded(coded_dir) -> FaceDataset:
    return load_dataset(coded_dir)


@pytest.fixture(scope="module")
def coded_run(coded, tmp_path_factory) -> Path:
    """A (two-step) generator run on the coded faces; its samples come from ``broken_sampler`` below."""
    from gan.train import train_gan
    from tests.conftest import tiny_gan_config

    run = tmp_path_factory.mktemp("coded_gan") / "run"
    train_gan(coded, run, tiny_gan_config(coded, 2, val_fraction=CODED_VAL), progress=False)
    return run


def broken_sampler(coded: FaceDataset, broken: str):
    """Stands in for ``generate_images``: a perfect generator (each sample a real training face of its class,
    drawn by the seed) whose samples of ``broken`` are replaced by noise."""
    from gan.validation import real_splits

    train, _ = real_splits(coded, CODED_VAL)
    pools = [train.images[train.labels == k] for k in range(train.num_classes)]
    bad = coded.classes.index(broken)

    def sample(g, labels, seed, device="cpu", batch=256, offset=0):
        rng = np.random.default_rng(seed)
        out = np.stack([pools[k][rng.integers(len(pools[k]))] for k in labels])
        noise = rng.integers(0, 256, out.shape, dtype=np.uint8)
        out[labels == bad] = noise[labels == bad]
        return out

    return sample


@pytest.fixture(scope="module")
def coded_eval(coded, coded_run, tiny_judge_run, tmp_path_factory) -> tuple[Path, dict]:
    """gan-eval of the broken generator (32 samples per class): RUN/eval/metrics.json with its CAS."""
    import gan.evaluate

    run = tmp_path_factory.mktemp("coded_eval") / "run"
    shutil.copytree(coded_run, run)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gan.evaluate, "generate_images", broken_sampler(coded, "sad"))
        mp.setattr(torch.hub, "get_dir", lambda: str(run / "no-hub"))
        report = gan.evaluate.evaluate_gan(run, coded, judge_dir=tiny_judge_run, per_class=32, progress=False)
    return run, report


def test_the_broken_class_has_a_low_cas_ratio(coded_eval):
    _, report = coded_eval
    cas = report["cas"]["per_class"]
    assert report["cas"]["val_counts"] == {"happy": 9, "sad": 6, "surprise": 6}
    assert cas["sad"]["real_recall"] > 0.5 and cas["sad"]["synthetic_recall"] == 0 and cas["sad"]["ratio"] == 0
    for c in ("happy", "surprise"):
        assert cas[c]["ratio"] >= 0.8, (c, cas[c])


def test_rebalance_gives_no_faces_to_a_class_below_min_cas(coded_dir, coded_eval, tmp_path, capsys):
    run, report = coded_eval
    out = tmp_path / "out"
    args = ["rebalance", coded_dir, "--generator", run, "--out", out, "--min-prob", 0, "--device", "cpu"]
    code, stdout, err = run_cli(capsys, *args, "--min-cas", 0.5)
    assert code == 0, err
    assert plan_rows(stdout)["sad"] == ["20", "+10", "30"]  # the plan wanted 10 sad faces...
    line = next(line for line in stdout.splitlines() if "below --min-cas" in line)
    assert line.startswith("sad: no synthetic faces") and "CAS ratio (0.00)" in line  # ...and says why not
    assert "surprise: kept 10 of" in stdout
    rows = read_manifest(out)
    synthetic = {c: sum(r["source"] == "synthetic" and r["label"] == c for r in rows) for c in CODED_COUNTS}
    assert synthetic == {"happy": 0, "sad": 0, "surprise": 10}
    summary = json.loads((out / "rebalance.json").read_text())
    gate = summary["synthesis"]["cas_gate"]
    assert gate["source"] == str(run / "eval" / "metrics.json")  # read from gan-eval's output, not measured
    assert gate["ratios"] == {c: v["ratio"] for c, v in report["cas"]["per_class"].items()}
    assert set(gate["skipped"]) == {"sad"} and summary["synthesis"]["per_class"]["sad"]["added"] == 0
    assert {p["class"]: p["synthetic"] for p in summary["plan"]} == synthetic


def test_rebalance_measures_the_cas_when_gan_eval_has_not_and_never_reads_test(
    coded, coded_run, coded_eval, tmp_path, monkeypatch
):
    """No gan-eval output: the gate measures the CAS itself (on the validation split; the test split is
    poisoned here and the figures do not move) and skips the same class."""
    from functools import partial

    import gan.evaluate
    from tests.gan.test_usefulness import poisoned_test

    _, report = coded_eval
    run = shutil.copytree(coded_run, tmp_path / "run")
    monkeypatch.setattr(gan.evaluate, "generate_images", broken_sampler(coded, "sad"))
    monkeypatch.setattr(gan.evaluate, "run_cas", partial(gan.evaluate.run_cas, per_class=32))
    plan = plan_rebalance(coded.counts("train"), "max")
    quality = QualityFilter(min_prob=0, min_cas=0.5)
    summary = run_rebalance(poisoned_test(coded), run, tmp_path / "out", plan, None, quality, progress=False)
    gate = summary["synthesis"]["cas_gate"]
    assert gate["source"].startswith("measured now")
    assert gate["ratios"] == {c: v["ratio"] for c, v in report["cas"]["per_class"].items()}  # gan-eval's figures
    assert set(gate["skipped"]) == {"sad"} and "sad: no synthetic faces" in gate["skipped"]["sad"]
    assert {p["class"]: p["synthetic"] for p in summary["plan"]} == {"happy": 0, "sad": 0, "surprise": 10}


def test_cas_gate_rules():
    from augment.rebalance import cas_gate

    plan = [ClassPlan("a", 5, 10, 5), ClassPlan("b", 5, 10, 5), ClassPlan("c", 5, 10, 5), ClassPlan("d", 10, 10, 0)]

    def v(syn, real):
        return {"synthetic_recall": syn, "real_recall": real, "ratio": syn / real if real else None}

    cas = {"per_class": {"a": v(0.5, 0.5), "b": v(0.1, 0.5), "c": v(0.0, 0.0), "d": v(0.0, 0.5)}}
    gated, why = cas_gate(plan, cas, 0.5)
    assert [p.add for p in gated] == [5, 0, 0, 0]
    assert set(why) == {"b", "c"}  # d wanted nothing: nothing to explain
    assert why["b"].startswith("b: no synthetic faces") and "(0.20)" in why["b"] and "0.10" in why["b"]
    assert "not measurable" in why["c"]
    # the real-trained classifier recalls none of the class but the samples teach some: kept
    cas["per_class"]["c"] = v(0.3, 0.0)
    assert [p.add for p in cas_gate(plan, cas, 0.5)[0]] == [5, 0, 5, 0]


def test_min_cas_off_measures_nothing(data, plan, tiny_gan_run, tmp_path, monkeypatch):
    import gan.evaluate

    def no_cas(*args, **kwargs):
        raise AssertionError("the CAS was measured with --min-cas 0")

    monkeypatch.setattr(gan.evaluate, "run_cas", no_cas)
    summary = run_rebalance(data, tiny_gan_run, tmp_path / "out", only(plan, "disgust"), None, OFF, progress=False)
    assert "cas_gate" not in summary["synthesis"] and summary["synthetic_files"] == 19
    assert summary["synthesis"]["checkpoint"] == "last"  # the tiny run has no best.pt


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
