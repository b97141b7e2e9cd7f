"""The paired bootstrap over seeds and test images: exact figures, intervals inside [0, 1], the rules that
keep few seeds from being called significant, coverage of a known effect, and speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from augment.stats import BootstrapConfig, bootstrap, compare_conditions, difference, figures
from classifier.metrics import classification_metrics

CLASSES = ["angry", "disgust", "fear", "happy"]
FAST = BootstrapConfig(resamples=400)


def noisy(labels: np.ndarray, right: float, rng: np.random.Generator, k: int = len(CLASSES)) -> np.ndarray:
    """Predictions that are right with probability ``right`` per image, otherwise another class."""
    wrong = (labels + rng.integers(1, k, size=labels.shape)) % k
    return np.where(rng.random(labels.shape) < right, labels, wrong)


def bounds(entry: dict) -> tuple[float, float]:
    return entry["lo"], entry["hi"]


def test_figures_match_the_classifier_metrics():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=300)
    labels[labels == 2] = 1  # class 2 has no test image: left out of the macro averages
    preds = np.stack([noisy(labels, 0.4, rng), noisy(labels, 0.8, rng)])[:, None]  # (C=2, S=1, N)
    per_seed, _ = bootstrap(labels, preds, 4, BootstrapConfig(resamples=10))
    for c in range(2):
        m = classification_metrics(labels, preds[c, 0], CLASSES)
        for f in ("accuracy", "macro_f1", "balanced_accuracy"):
            assert per_seed[f][0, c] == pytest.approx(m[f], rel=1e-12), f
        for q, cls in enumerate(CLASSES):
            expected = math.nan if cls == "fear" else m["per_class"][cls]["recall"]
            assert per_seed["recall"][0, c, q] == pytest.approx(expected, rel=1e-12, nan_ok=True), cls
    # the same function on tallies by hand: 3 of 4 'happy' right, one 'angry' said wrongly
    got = figures(np.array([0.0, 0, 0, 4]), np.array([[0.0, 0, 0, 3]]), np.array([[1.0, 0, 0, 3]]))
    assert got["accuracy"][0] == 0.75 and got["recall"][0, 3] == 0.75 and np.isnan(got["recall"][0, 0])
    assert got["macro_f1"][0] == pytest.approx(2 * 1 * 0.75 / 1.75)


def test_bootstrap_is_seeded_and_reproducible():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=200)
    preds = {c: np.stack([noisy(labels, r, rng) for _ in range(3)]) for c, r in (("baseline", 0.5), ("gan", 0.6))}
    one = compare_conditions(labels, preds, CLASSES, FAST)
    assert compare_conditions(labels, preds, CLASSES, FAST) == one
    other = compare_conditions(labels, preds, CLASSES, BootstrapConfig(resamples=400, seed=1))
    assert other["gan"]["accuracy"]["mean"] == one["gan"]["accuracy"]["mean"]  # the estimate is the seeds' mean
    assert bounds(other["gan"]["accuracy"]) != bounds(one["gan"]["accuracy"])  # the resamples differ


def test_two_seeds_stay_inside_0_1_where_a_t_interval_does_not():
    """The demo's case: a class with few test images, recall 0 for one seed and high for the other."""
    labels = np.repeat(np.arange(4), [40, 9, 30, 40])
    base = np.stack([labels.copy(), labels.copy()])
    base[0, labels == 1] = 0  # seed 0 never says disgust, seed 1 gets 6 of 9
    base[1, np.flatnonzero(labels == 1)[:3]] = 0
    gan = base.copy()
    gan[:, np.flatnonzero(labels == 2)[:9]] = 3  # both seeds lose 9 fear images: the same difference twice
    recalls = [6 / 9 * s for s in (0, 1)]
    t_half = 12.706204736174707 * np.std(recalls, ddof=1) / math.sqrt(2)  # today's 95% t-interval, 1 df
    assert np.mean(recalls) + t_half > 1 and np.mean(recalls) - t_half < 0

    out = compare_conditions(labels, {"baseline": base, "gan": gan}, CLASSES, BootstrapConfig())
    for cond in out.values():
        for entry in [cond[f] for f in ("accuracy", "macro_f1", "balanced_accuracy")] + list(cond["recall"].values()):
            assert 0 <= entry["lo"] <= entry["mean"] <= entry["hi"] <= 1
    assert out["baseline"]["recall"]["disgust"]["mean"] == pytest.approx(1 / 3)
    fear = out["gan"]["vs"]["baseline"]["recall"]["fear"]
    assert fear["diff"] == pytest.approx(-0.3) and -1 <= fear["lo"] <= fear["hi"] <= 0
    assert fear["p"] < 0.01  # a strong effect ...
    assert fear["significant"] is False and fear["untested"] == "2 seeds"  # ... still not claimed from 2 seeds
    assert out["gan"]["vs"]["baseline"]["accuracy"]["untested"] == "2 seeds"


def test_no_significance_from_fewer_than_three_seeds_or_zero_variance():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=3000)
    for seeds in (1, 2):
        base = np.stack([noisy(labels, 0.3, rng) for _ in range(seeds)])
        good = np.stack([noisy(labels, 0.9, rng) for _ in range(seeds)])
        d = compare_conditions(labels, {"baseline": base, "gan": good}, CLASSES, FAST)["gan"]["vs"]["baseline"]
        assert d["accuracy"]["lo"] > 0.5 and d["accuracy"]["significant"] is False
        assert d["accuracy"]["untested"] == f"{seeds} seed{'s' if seeds > 1 else ''}"

    base = np.stack([noisy(labels, 0.5, rng) for _ in range(3)])
    same = compare_conditions(labels, {"baseline": base, "copy": base.copy()}, CLASSES, FAST)["copy"]["vs"]
    assert same["baseline"]["macro_f1"]["untested"] == "zero variance"
    assert same["baseline"]["macro_f1"]["significant"] is False
    # every seed gains exactly 150 right answers (other images each time): equal differences, no spread over seeds
    shifted = base.copy()
    for j in range(3):
        fix = rng.choice(np.flatnonzero(base[j] != labels), size=150, replace=False)
        shifted[j, fix] = labels[fix]
    d = compare_conditions(labels, {"baseline": base, "gan": shifted}, CLASSES, FAST)["gan"]["vs"]["baseline"]
    assert d["accuracy"]["diff"] == pytest.approx(0.05) and d["accuracy"]["lo"] > 0 and d["accuracy"]["p"] < 0.01
    assert d["accuracy"]["untested"] == "zero variance" and d["accuracy"]["significant"] is False


def test_three_seeds_and_a_real_effect_are_significant_both_ways():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=2000)
    base = np.stack([noisy(labels, 0.5, rng) for _ in range(3)])
    better = np.stack([noisy(labels, 0.65, rng) for _ in range(3)])
    out = compare_conditions(labels, {"baseline": base, "gan": better}, CLASSES, FAST)
    up, down = out["gan"]["vs"]["baseline"]["macro_f1"], out["baseline"]["vs"]["gan"]["macro_f1"]
    assert up["significant"] is True and up["untested"] is None and up["lo"] > 0 and up["p"] < 0.05
    assert down["significant"] is True and down["diff"] == pytest.approx(-up["diff"]) and down["hi"] < 0
    assert out["gan"]["seeds"] == 3 and up["seeds"] == 3
    # no effect at all: not significant
    null = compare_conditions(labels, {"baseline": base, "gan": base[[1, 2, 0]]}, CLASSES, FAST)
    assert null["gan"]["vs"]["baseline"]["accuracy"]["significant"] is False


def simulated_difference(n: int, seed: int, effect: float = 0.1) -> dict:
    """3 seeds × 2 conditions on n images, each right with probability 0.6 and 0.6 + effect."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    rates = {"baseline": 0.6, "gan": 0.6 + effect}
    preds = {c: np.stack([noisy(labels, r, rng) for _ in range(3)]) for c, r in rates.items()}
    return compare_conditions(labels, preds, CLASSES, FAST)["gan"]


def test_the_interval_covers_a_known_effect_and_shrinks_with_more_images():
    trials = [simulated_difference(400, seed) for seed in range(40)]
    covered = [t["vs"]["baseline"]["accuracy"]["lo"] <= 0.1 <= t["vs"]["baseline"]["accuracy"]["hi"] for t in trials]
    assert sum(covered) >= 34  # nominal 95%: at least 85% of 40 simulated experiments
    covered = [t["accuracy"]["lo"] <= 0.7 <= t["accuracy"]["hi"] for t in trials]  # the figure itself
    assert sum(covered) >= 34
    width = {}
    for n in (400, 6400):
        lo_hi = [bounds(simulated_difference(n, seed)["vs"]["baseline"]["accuracy"]) for seed in range(3)]
        width[n] = np.mean([hi - lo for lo, hi in lo_hi])
    assert width[6400] < width[400] / 2.5  # 16× the images: about a quarter of the width


def test_difference_p_and_interval_by_hand():
    reps = np.concatenate([np.full(90, 0.1), np.full(10, -0.1)])
    d = difference(np.array([0.1, 0.12, 0.08]), reps, BootstrapConfig())
    assert d["diff"] == pytest.approx(0.1) and d["seeds"] == 3
    assert d["p"] == pytest.approx(2 * 11 / 101) and d["significant"] is False  # 10 of 100 replicates ≤ 0
    assert d["lo"] == pytest.approx(-0.1) and d["hi"] == pytest.approx(0.1)
    d = difference(np.array([0.1, 0.12, 0.08]), np.full(100, 0.1) + np.linspace(0, 0.01, 100), BootstrapConfig())
    assert d["p"] == pytest.approx(2 / 101) and d["significant"] is True


def test_fast_on_a_fer2013_sized_grid():
    """7,000 test images × 3 seeds × 8 conditions, 2,000 resamples."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 7, size=7000)
    preds = {f"c{i}": np.stack([noisy(labels, 0.6, rng, k=7) for _ in range(3)]) for i in range(8)}
    start = time.perf_counter()
    out = compare_conditions(labels, preds, [f"k{i}" for i in range(7)], BootstrapConfig())
    assert time.perf_counter() - start < 30  # about 1.5 s on one core
    assert len(out) == 8 and len(out["c0"]["vs"]) == 7 and out["c0"]["recall"]["k6"]["hi"] <= 1
