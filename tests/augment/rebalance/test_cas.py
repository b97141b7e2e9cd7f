"""``rebalance --min-cas``: no synthetic faces for a class whose samples teach a classifier too little."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from augment.core.dataset import FaceDataset
from augment.core.manifest import read_manifest
from augment.core.readers import load_dataset
from augment.plan import ClassPlan, plan_rebalance
from augment.rebalance import run_rebalance
from augment.synthesis import QualityFilter
from tests.augment.rebalance.helpers import OFF, only, plan_rows
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("quiet")


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


def broken_draw(coded: FaceDataset, broken: str):
    """Stands in for gan-eval's draw (``gan.translate.draw_per_class``) with :func:`broken_sampler`'s samples;
    rebalance's own synthesis still draws from the generator."""
    sample = broken_sampler(coded, broken)

    def draw(g, meta, pool, per_class, seed, device="cpu"):
        labels = np.repeat(np.arange(len(meta["classes"])), per_class)
        return sample(g, labels, seed), labels, None

    return draw


@pytest.fixture(scope="module")
def coded_eval(coded, coded_run, tiny_judge_run, tmp_path_factory) -> tuple[Path, dict]:
    """gan-eval of the broken generator (32 samples per class): RUN/eval/metrics.json with its CAS."""
    import gan.evaluate

    run = tmp_path_factory.mktemp("coded_eval") / "run"
    shutil.copytree(coded_run, run)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gan.evaluate, "draw_per_class", broken_draw(coded, "sad"))
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
    monkeypatch.setattr(gan.evaluate, "draw_per_class", broken_draw(coded, "sad"))
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
