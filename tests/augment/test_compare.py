"""``compare``: model × condition × seed on real test images, REPORT.md, resume, report-folder rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from augment import compare
from augment.compare import Budget, CompareSpec, clean_test, oversample, run_compare, take_synthetic
from augment.core.dataset import FaceDataset, concat
from augment.core.errors import UserError

pytestmark = pytest.mark.usefixtures("quiet")
CONDITIONS = ["baseline", "gan", "oversample", "weighted"]
SEEDS = 2
TINY = Budget("tiny-test", epochs=1, epoch_samples=64, patience=0, widths={"simple-cnn": 0.25}, batch_size=32)


@pytest.fixture(autouse=True)
def _tiny_budget(monkeypatch):
    monkeypatch.setitem(compare.BUDGETS, TINY.name, TINY)


def spec(**kw) -> CompareSpec:
    args = dict(models=["simple-cnn"], conditions=CONDITIONS, seeds=SEEDS, budget=TINY.name, min_prob=0, device="cpu")
    return CompareSpec(**{**args, **kw})


@pytest.fixture(scope="module")
def planted(demo_ds) -> FaceDataset:
    """The demo faces plus one test image that is a copy of a training image."""
    dup = demo_ds.subset(np.flatnonzero(demo_ds.splits == "train")[:1])
    dup.splits[:] = "test"
    return concat([demo_ds, dup], name=demo_ds.name)


@pytest.fixture(scope="module")
def compared(planted, tiny_gan_run, tmp_path_factory):
    """One small comparison (1 model × 4 conditions × 2 seeds), with spies on what trains and what tests."""
    import classifier.train

    report = tmp_path_factory.mktemp("cmp") / "report"
    seen: dict[str, list] = {"train": [], "test": []}
    real_train, real_eval = classifier.train.train_classifier, compare._evaluate

    def spy_train(data, run_dir, cfg, progress=True):
        seen["train"].append((Path(run_dir), data, cfg))
        return real_train(data, run_dir, cfg, progress=progress)

    def spy_eval(run_dir, test, *args, **kwargs):
        seen["test"].append(test)
        return real_eval(run_dir, test, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(compare.BUDGETS, TINY.name, TINY)
        mp.setattr(classifier.train, "train_classifier", spy_train)
        mp.setattr(compare, "_evaluate", spy_eval)
        summary = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    return report, summary, seen


def hashes(ds: FaceDataset) -> set[str]:
    return set(ds.pixel_hashes().tolist())


# --------------------------------------------------------------------------- the report
def test_report_has_every_section_and_its_pictures(compared):
    report, summary, _ = compared
    md = (report / "REPORT.md").read_text()
    for heading in ("## Verdict", "## Setup", "## Results", "### simple-cnn", "## Pictures", "## Files"):
        assert heading in md, heading
    order = [md.index(h) for h in ("## Verdict", "## Setup", "## Results", "## Pictures", "## Files")]
    assert order == sorted(order)
    assert "Paired differences against baseline" in md and "| condition | Δ macro-F1 |" in md
    assert "Per-class recall (all classes, minority first):" in md
    classes = list(summary["train_counts"])
    recall_head = next(ln for ln in md.splitlines() if ln.startswith("| condition | disgust"))
    assert set(recall_head.strip("| ").split(" | ")[1:]) == set(classes)
    for cond in CONDITIONS:
        assert re.search(rf"^\| {re.escape(cond)} \| \d\.\d{{3}} ", md, re.M), cond  # a recall row per condition
    for cond in CONDITIONS[1:]:
        assert re.search(rf"^\| {re.escape(cond)} \| [+-]\d\.\d{{3}} ± ", md, re.M), cond  # a paired-difference row
    assert "judge filter off" in md and "None" not in md.split("## Results")[0]
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {"recall_by_condition.png", "confusion_simple-cnn.png", "train_distribution.png"} <= set(pictures)
    assert "synthetic_samples.png" in pictures
    for pic in pictures:
        assert (report / pic).is_file() and (report / pic).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", pic


def test_results_list_every_run(compared):
    report, summary, _ = compared
    saved = json.loads((report / "results.json").read_text())
    runs = saved["runs"]
    assert len(runs) == 8 == len(summary["runs"])
    assert {(r["model"], r["condition"], r["seed"]) for r in runs} == {
        ("simple-cnn", c, s) for c in CONDITIONS for s in range(SEEDS)
    }
    for r in runs:
        assert 0 <= r["macro_f1"] <= 1 and 0 <= r["accuracy"] <= 1
        assert set(r["recall"]) == set(summary["train_counts"])
        assert (report / "runs" / r["model"] / r["condition"] / f"seed{r['seed']}" / "result.json").is_file()
    base = saved["train_counts"]
    added = sum(saved["synthetic_plan"].values())
    assert added > 0
    by = {(r["condition"], r["seed"]): r for r in runs}
    for s in range(SEEDS):
        assert by[("baseline", s)]["train_images"] == sum(base.values()) == by[("weighted", s)]["train_images"]
        assert by[("gan", s)]["train_images"] == by[("oversample", s)]["train_images"] == sum(base.values()) + added
        assert by[("gan", s)]["synthetic_train_images"] == added
        for cond in ("baseline", "oversample", "weighted"):
            assert by[(cond, s)]["synthetic_train_images"] == 0


def test_test_duplicates_of_train_are_removed_and_counted(compared, demo_ds):
    report, summary, seen = compared
    assert summary["test_duplicates_removed"] == 1
    assert summary["test_images"] == int((demo_ds.splits == "test").sum())  # the planted copy is gone
    assert "after removing 1 that duplicate a training image" in (report / "REPORT.md").read_text()
    train_hashes = hashes(demo_ds.split("train"))
    assert len(seen["test"]) == 8
    for test in seen["test"]:
        assert not hashes(test) & train_hashes
        assert len(test) == summary["test_images"] and set(test.splits.tolist()) == {"test"}


def test_clean_test_by_hand(planted, demo_ds):
    test, n = clean_test(planted)
    assert n == 1 and len(test) == int((demo_ds.splits == "test").sum())
    with pytest.raises(UserError, match="test split"):
        clean_test(demo_ds.split("train"))


def test_no_synthetic_image_reaches_val_or_test(compared):
    _, _, seen = compared
    assert len(seen["train"]) == 8
    val_sets = set()
    for run_dir, part, cfg in seen["train"]:
        held_out = part.splits != "train"
        assert (part.splits == "val").any(), run_dir  # a real validation split is passed in
        assert not part.synthetic[held_out].any(), run_dir
        assert not (part.splits == "test").any(), run_dir
        assert cfg.val_fraction == 0.0 and cfg.width == 0.25 and cfg.epochs == 1
        assert cfg.class_weighted == (run_dir.parts[-2] == "weighted")
        assert part.synthetic.any() == (run_dir.parts[-2] == "gan")
        val_sets.add(frozenset(part.split("val").pixel_hashes().tolist()))
    assert len(val_sets) == 1  # the same real validation images for every condition and seed
    for test in seen["test"]:
        assert not test.synthetic.any()


def test_rerun_keeps_finished_runs(compared, planted, tiny_gan_run, monkeypatch):
    import augment.rebalance
    import classifier.train

    report, first, _ = compared
    results = sorted((report / "runs").rglob("result.json"))
    assert len(results) == 8
    stamps = {p: p.stat().st_mtime_ns for p in results}

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(classifier.train, "train_classifier", must_not_run)
    monkeypatch.setattr(augment.rebalance, "synthesize", must_not_run)  # the filtered pool is kept too
    again = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
    assert again["runs"] == first["runs"]
    assert (report / "REPORT.md").is_file()


def test_a_report_dir_with_other_settings_is_refused(compared, planted, tiny_gan_run, tmp_path):
    report, _, _ = compared
    before = (report / "compare.json").read_text()
    for other in (spec(min_prob=0.5), spec(target="median"), spec(budget="demo")):
        with pytest.raises(UserError, match="holds a comparison with other settings"):
            run_compare(planted, tiny_gan_run, report, other, progress=False)
    assert (report / "compare.json").read_text() == before

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no comparison"):
        run_compare(planted, tiny_gan_run, stranger, spec(), progress=False)
    assert sorted(p.name for p in stranger.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"models": ["vgg"]}, "--models vgg"),
        ({"conditions": ["baseline", "smote"]}, "--conditions smote"),
        ({"budget": "huge"}, "--budget huge"),
        ({"seeds": 0}, "--seeds"),
    ],
)
def test_bad_specs(planted, tiny_gan_run, tmp_path, kw, message):
    with pytest.raises(UserError, match=re.escape(message)):
        run_compare(planted, tiny_gan_run, tmp_path / "r", spec(**kw), progress=False)
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- the conditions' data
def test_synthetic_amounts_and_oversampling(demo_ds):
    train = demo_ds.split("train")
    pool = demo_ds.split("test").subset(np.arange(int((demo_ds.splits == "test").sum())))
    pool.synthetic[:] = True
    k = pool.classes.index("happy")
    small = take_synthetic(pool, {"happy": 2})
    large = take_synthetic(pool, {"happy": 4, "sad": 1})
    assert small.counts()["happy"] == 2 and large.counts()["happy"] == 4 and large.counts()["sad"] == 1
    happy_small = small.images[small.labels == k]
    happy_large = large.images[large.labels == k]
    assert np.array_equal(happy_small, happy_large[:2])  # a smaller amount is a prefix of a larger one

    more = oversample(train, {"disgust": 18, "contempt": 5}, seed=1)
    assert more.counts()["disgust"] == 24 and more.counts()["contempt"] == 11
    assert more.counts()["happy"] == train.counts()["happy"] and not more.synthetic.any()
    assert hashes(more) == hashes(train)  # duplicates of real training images only
    again = oversample(train, {"disgust": 18, "contempt": 5}, seed=1)
    assert np.array_equal(again.images, more.images)


def test_gpus_entries_count_the_visible_gpus_not_the_machines():
    from augment.compare import child_visible_gpu

    assert child_visible_gpu(1, None) == "1"
    assert child_visible_gpu(0, "4,5") == "4" and child_visible_gpu(1, " 4, 5 ") == "5"
    with pytest.raises(UserError, match="only 2 GPU"):
        child_visible_gpu(2, "4,5")


@pytest.mark.parametrize("gpu, visible", [(None, None), (1, "4,5")])
def test_runs_handed_to_other_processes_get_the_right_gpu(demo_ds, tmp_path, monkeypatch, gpu, visible):
    """torchrun ranks must get plain 'cuda' (each takes its LOCAL_RANK's GPU), never the parent's cuda:0."""
    from types import SimpleNamespace

    from augment import compare
    from classifier.config import TrainConfig

    seen = {}

    def fake_run(cmd, env):
        seen["cmd"], seen["env"] = cmd, env
        return SimpleNamespace(returncode=0)

    monkeypatch.setattr(compare.subprocess, "run", fake_run)
    if visible:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    cfg = TrainConfig(model="simple-cnn", device="cuda:0")
    spec = compare.CompareSpec(
        models=["simple-cnn"], conditions=["baseline"], seeds=1, nproc=1 if gpu is not None else 4
    )
    compare._train_subprocess(demo_ds.subset(np.arange(8)), tmp_path / "run", cfg, spec, gpu)
    cmd = seen["cmd"]
    assert cmd[cmd.index("--device") + 1] == "cuda"
    if gpu is None:
        assert "torch.distributed.run" in cmd and "--nproc_per_node=4" in cmd
    else:
        assert seen["env"]["CUDA_VISIBLE_DEVICES"] == "5"


def test_headline_classes_are_the_smallest_three_and_the_worst_recognised_other():
    from augment.report import focus_classes

    counts = {"happy": 700, "sad": 480, "fear": 400, "surprise": 310, "angry": 390, "disgust": 40}
    recall = {"happy": 0.8, "sad": 0.3, "fear": 0.05, "surprise": 0.5, "angry": 0.2, "disgust": 0.1}

    def agg() -> dict:
        return {"m": {"baseline": {"recall": {c: (r, 0.0, [r]) for c, r in recall.items()}}}}

    assert focus_classes({"train_counts": counts}, agg()) == ["disgust", "surprise", "angry", "fear"]
    recall["fear"] = 0.9  # the fourth is the worst recognised outside the three smallest
    assert focus_classes({"train_counts": counts}, agg()) == ["disgust", "surprise", "angry", "sad"]
    assert focus_classes({"train_counts": counts}, {}) == ["disgust", "surprise", "angry"]  # no baseline
