"""compare's statistics and verdict: intervals that hold with few seeds, each run's kept predictions, runs of
older reports, and the words of the verdict."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from augment import compare
from augment.compare import run_compare
from tests.augment.compare.helpers import SEEDS, TINY, spec

pytestmark = pytest.mark.usefixtures("quiet")


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


# --------------------------------------------------------------------------- statistics that hold with few seeds
def _intervals(stats: dict):
    """Every (kind, entry) of results.json's statistics: figures ("figure") and paired differences ("diff")."""
    for conds in stats["models"].values():
        for entry in conds.values():
            for f in ("accuracy", "macro_f1", "balanced_accuracy"):
                yield "figure", entry[f]
            yield from (("figure", e) for e in entry["recall"].values())
            for diffs in entry["vs"].values():
                yield from (("diff", diffs[f]) for f in ("accuracy", "macro_f1", "balanced_accuracy"))
                yield from (("diff", e) for e in diffs["recall"].values())


def test_no_interval_leaves_0_1_and_two_seeds_claim_nothing(compared):
    report, summary, _ = compared
    saved = json.loads((report / "results.json").read_text())
    assert saved["stats"] == summary["stats"] and saved["stats"]["resamples"] == 2000
    entries = list(_intervals(saved["stats"]))
    assert len(entries) == 4 * 11 + 4 * 3 * 11  # 4 conditions × (3 figures + 8 recalls), each against 3 others
    for kind, e in entries:
        if kind == "figure":
            assert 0 <= e["lo"] <= e["mean"] <= e["hi"] <= 1, e
        else:
            assert -1 <= e["lo"] <= e["diff"] <= e["hi"] <= 1, e
            assert e["significant"] is False and e["untested"] == "2 seeds" and e["seeds"] == SEEDS, e
    md = (report / "REPORT.md").read_text()
    results = md.split("## Results")[1].split("## Pictures")[0]
    shown = re.findall(r"([+-]?\d\.\d{3}) \[([+-]?\d\.\d{3}), ([+-]?\d\.\d{3})\]", results)
    # the means, the differences against baseline, and gan's against the best real-only fix
    assert len(shown) == 4 * 6 + 3 * 6 + 1 * 6
    for mean, lo, hi in shown:
        low = -1 if mean.startswith(("+", "-")) or lo.startswith(("+", "-")) else 0
        assert low <= float(lo) <= float(mean) <= float(hi) <= 1
    assert "**✓**" not in md and "**✗**" not in md
    assert results.count("untested: 2 seeds") == 4 * 6
    assert "With 2 seed(s) no difference is tested" in md


def test_each_run_keeps_its_predictions_of_the_test_images(compared):
    from classifier.metrics import classification_metrics

    report, summary, seen = compared
    test = seen["test"][0]
    for r in summary["runs"]:
        with np.load(report / "runs" / r["model"] / r["condition"] / f"seed{r['seed']}" / compare.PREDICTIONS) as f:
            pred, labels = f["pred"], f["labels"]
            assert f["classes"].tolist() == r["classes"] == test.classes
        assert pred.dtype == np.uint8 and len(pred) == summary["test_images"]
        assert np.array_equal(labels, test.labels)
        m = classification_metrics(labels, pred, r["classes"])
        assert (m["accuracy"], m["macro_f1"]) == (r["accuracy"], r["macro_f1"])
        assert m["confusion_matrix"] == r["confusion_matrix"]
        stats = summary["stats"]["models"][r["model"]][r["condition"]]
        assert stats["seeds"] == SEEDS
    base = [r for r in summary["runs"] if r["condition"] == "baseline"]
    assert summary["stats"]["models"]["simple-cnn"]["baseline"]["accuracy"]["mean"] == pytest.approx(
        np.mean([r["accuracy"] for r in base])
    )


def test_each_run_records_the_images_it_saw_and_how_fast(compared):
    """images seen = epochs × the budget's images per epoch; train seconds and images/s beside them."""
    _, summary, _ = compared
    for r in summary["runs"]:
        assert r["images_seen"] == TINY.epochs * TINY.epoch_samples
        assert r["train_seconds"] > 0
        assert r["images_per_s"] == pytest.approx(r["images_seen"] / r["train_seconds"], rel=0.05, abs=1)


def test_runs_of_an_older_report_without_predictions(compared, planted, tiny_gan_run, tmp_path, monkeypatch):
    """Predictions missing: tested again from the run's model; model gone too: rebuilt from the confusion matrix,
    with a note. Nothing is trained again."""
    import augment.rebalance
    import classifier.train

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(classifier.train, "train_classifier", must_not_run)
    monkeypatch.setattr(augment.rebalance, "synthesize", must_not_run)
    source, first, _ = compared
    report = tmp_path / "report"
    shutil.copytree(source, report)
    kept = sorted((report / "runs").rglob(compare.PREDICTIONS))
    assert len(kept) == 8
    for p in kept:
        p.unlink()
    again = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    assert again["stats"] == first["stats"] and again["runs"] == first["runs"]
    assert all(p.is_file() for p in kept)  # kept for the next time

    gone = report / "runs" / "simple-cnn" / "gan" / "seed1"
    (gone / compare.PREDICTIONS).unlink()
    (gone / "model.pt").unlink()
    third = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    [note] = third["stats"]["notes"]
    assert "simple-cnn/gan/seed1" in note and "confusion matri" in note
    assert note in (report / "REPORT.md").read_text()
    assert third["stats"]["models"]["simple-cnn"]["gan"]["accuracy"]["mean"] == pytest.approx(
        first["stats"]["models"]["simple-cnn"]["gan"]["accuracy"]["mean"]
    )
    for kind, e in _intervals(third["stats"]):
        assert (0 if kind == "figure" else -1) <= e["lo"] <= e["hi"] <= 1


def test_the_verdict_names_the_test_images_of_the_minority_classes(compared, planted):
    from augment.report import aggregate, focus_classes, minority_counts_line

    report, summary, _ = compared
    dups = summary["test_duplicates_by_class"]
    dup_class = planted.classes[planted.labels[-1]]  # the planted copy of a training image
    assert dups == {c: int(c == dup_class) for c in summary["train_counts"]}
    verdict = (report / "REPORT.md").read_text().split("## Setup")[0]
    for c in focus_classes(summary, aggregate(summary)):
        n = summary["test_counts"][c]
        assert f"{c}: {n} test image{'s' if n != 1 else ''}" in verdict, c
    fer = {"test_counts": {"disgust": 80, "fear": 1018}, "test_duplicates_by_class": {"disgust": 31, "fear": 0}}
    line = minority_counts_line(fer, ["disgust", "fear"])
    assert "disgust: 80 test images after removing 31 that duplicate a training face; fear: 1,018 test images." in line


def _summary_of(labels: np.ndarray, preds: dict[str, np.ndarray], classes: list[str]) -> dict:
    """A results.json as compare gathers it, from given predictions (3 seeds)."""
    from augment.stats import BootstrapConfig, compare_conditions
    from classifier.metrics import classification_metrics

    runs = []
    for cond, by_seed in preds.items():
        for seed, pred in enumerate(by_seed):
            m = classification_metrics(labels, pred, classes)
            recall = {c: v["recall"] for c, v in m["per_class"].items()}
            runs.append({"model": "m", "condition": cond, "seed": seed, "recall": recall, **m})
    stats = compare_conditions(labels, preds, classes, BootstrapConfig(resamples=500))
    cfg = BootstrapConfig(resamples=500).__dict__
    counts = {c: int((labels == k).sum()) for k, c in enumerate(classes)}
    return {
        "runs": runs,
        "stats": {**cfg, "notes": [], "models": {"m": stats}},
        "spec": {"conditions": list(preds), "seeds": 3},
        "train_counts": counts,
        "test_counts": counts,
        "test_duplicates_by_class": {},
    }


def _guesses(seed: int):
    """1,500 labels of 4 classes, and ``right(p)``: 3 seeds of predictions, each right with probability p."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=1500)

    def right(p: float) -> np.ndarray:
        return np.stack([np.where(rng.random(len(labels)) < p, labels, (labels + 1) % 4) for _ in range(3)])

    return rng, labels, right


def test_three_seeds_mark_significance_and_zero_variance_in_the_report():
    from augment.report import aggregate, model_results, verdict

    rng, labels, right = _guesses(0)
    classes = ["angry", "disgust", "fear", "happy"]
    base = right(0.4)
    shifted = base.copy()
    for j in range(3):  # exactly 150 more right answers in every seed: the same difference three times
        fix = rng.choice(np.flatnonzero(base[j] != labels), size=150, replace=False)
        shifted[j, fix] = labels[fix]
    summary = _summary_of(labels, {"baseline": base, "gan": right(0.7), "oversample": shifted}, classes)
    agg = aggregate(summary)
    md = "\n".join(model_results(summary, agg, "m"))
    gan_row = next(ln for ln in md.splitlines() if ln.startswith("| gan | +"))
    assert gan_row.count("**✓**") >= 3 and "untested" not in gan_row  # macro-F1, accuracy and recalls
    over_row = next(ln for ln in md.splitlines() if ln.startswith("| oversample | +"))
    accuracy = over_row.split(" | ")[2]  # the same accuracy gain in every seed; the other figures vary
    assert accuracy.startswith("+0.100 [") and accuracy.endswith("untested: zero variance") and "✓" not in accuracy
    text = "\n".join(verdict(summary, agg))
    assert "GAN rebalancing beat baseline (+0." in text and "beat oversample" in text
    assert "no difference is tested" not in text
    assert "- **m**: gan beat the baseline and the best real-only fix, oversample (macro-F1 0." in text


def test_the_verdict_says_when_no_synthetic_strategy_beats_the_best_real_only_fix():
    from augment.report import aggregate, model_results, verdict

    _, labels, right = _guesses(1)
    classes = ["angry", "disgust", "fear", "happy"]
    preds = {"baseline": right(0.4), "oversample": right(0.7), "weighted": right(0.45), "gan+oversample": right(0.55)}
    summary = _summary_of(labels, preds, classes)
    agg = aggregate(summary)
    text = "\n".join(verdict(summary, agg))
    # every synthetic condition is set against the baseline and every real-only fix; the aim is judged once
    assert "`gan+oversample` beat baseline" in text and "was worse than oversample" in text and "weighted (" in text
    assert "no way of adding synthetic faces (gan+oversample) beat the baseline and the best real-only fix, " in text
    best = agg["m"]["oversample"]["macro_f1"][0]
    assert f"oversample (macro-F1 {best:.3f})" in text and "GAN rebalancing" not in text
    md = "\n".join(model_results(summary, agg, "m"))
    assert "against the best real-only fix, oversample:" in md
    row = md.split("best real-only fix, oversample:")[1].split("| gan+oversample | ")[1].splitlines()[0]
    assert row.startswith("-0.") and "**✗**" in row


def test_the_verdict_says_across_models_whether_a_synthetic_condition_won():
    """Per model, then across models: for every model, for some, or for none."""
    from augment.report import across_models_line, aggregate, verdict

    _, labels, right = _guesses(2)
    classes = ["angry", "disgust", "fear", "happy"]

    def two_models(gan_b: float) -> dict:
        a = _summary_of(labels, {"baseline": right(0.4), "oversample": right(0.5), "gan": right(0.7)}, classes)
        b = _summary_of(labels, {"baseline": right(0.4), "oversample": right(0.5), "gan": right(gan_b)}, classes)
        for r in b["runs"]:
            r["model"] = "b"
        a["runs"] += b["runs"]
        a["stats"]["models"]["b"] = b["stats"]["models"]["m"]
        return a

    some = two_models(0.3)
    text = "\n".join(verdict(some, aggregate(some)))
    assert "- **Across models**: a synthetic condition won for 1 of 2 models (m: gan); none for b." in text
    every = two_models(0.8)
    assert across_models_line(every, aggregate(every)) == (
        "- **Across models**: a synthetic condition won for every model (m: gan; b: gan)."
    )
    one = _summary_of(labels, {"baseline": right(0.4), "gan": right(0.7)}, classes)
    assert across_models_line(one, aggregate(one)) is None  # one model: the per-model line says it all


def test_the_setup_line_names_the_budgets_head_widths_only_when_it_has_some():
    from augment.compare.budgets import BUDGETS
    from augment.report import _budget_line

    cpu = _budget_line(BUDGETS["cpu"].__dict__)
    assert "head widths {'resemotenet': 1.0}" in cpu and "sizes {'resemotenet': 48, 'resnet18': 64}" in cpu
    assert "head widths" not in _budget_line(BUDGETS["demo"].__dict__)
