"""Scoring: each run's predictions of the scored images, its metrics, and results.json with the
statistics over seeds."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from augment.compare.conditions import GAN_POOL, TRANSFER_POOL, condition_table
from augment.compare.data import Comparison, seed_of
from augment.compare.spec import EVAL_SPLITS
from augment.core.atomic import atomic_path
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError

PREDICTIONS = "predictions.npz"  # each run's predicted class of every test image, beside its result.json


def score_run(
    run_dir: Path, test: FaceDataset, model: str, cond: str, seed: int, device: str, train_part: FaceDataset
) -> dict[str, Any]:
    """A trained run's metrics on the scored images (its predictions kept beside it)."""
    from classifier.metrics import classification_metrics

    pred = predict_test(run_dir, test, device)
    save_predictions(run_dir, test, pred)
    m = classification_metrics(test.labels, pred, test.classes)
    return {
        "model": model,
        "condition": cond,
        "seed": seed,
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "balanced_accuracy": m["balanced_accuracy"],
        "recall": {c: v["recall"] for c, v in m["per_class"].items()},
        "f1": {c: v["f1"] for c, v in m["per_class"].items()},
        "confusion_matrix": m["confusion_matrix"],
        "classes": m["classes"],
        "train_images": int((train_part.splits == "train").sum()),
        "synthetic_train_images": int(train_part.synthetic.sum()),
    }


def throughput(run_dir: Path, epoch_samples: int, train_part: FaceDataset) -> dict[str, Any]:
    """What a finished run trained through, from its summary.json: the images it drew (epochs done × the
    images of an epoch: ``epoch_samples``, or the whole train split), its training seconds over every
    invocation, and their ratio."""
    summary = json.loads((run_dir / "summary.json").read_text())
    per_epoch = epoch_samples or int((train_part.splits == "train").sum())
    seen = int(summary["epochs_done"]) * per_epoch
    seconds = float(summary["seconds"])
    return {"images_seen": seen, "train_seconds": round(seconds, 3), "images_per_s": round(seen / max(seconds, 1e-9))}


def gather_results(
    cmp: Comparison,
    runs: dict[str, str | Path | None],
    synth_reports: dict[str, dict[str, Any]],
    results: list[dict[str, Any]],
) -> dict[str, Any]:
    """results.json: the setup, the data's counts, each pool's synthesis report and every run's metrics
    (``runs`` and ``synth_reports`` by pool: conditions.GAN_POOL, TRANSFER_POOL)."""
    data = cmp.data

    def named(run: str | Path | None) -> str | None:
        return str(run) if run is not None else None

    return {
        "data": data.name,
        "generator_run": named(runs.get(GAN_POOL)),
        "transfer_run": named(runs.get(TRANSFER_POOL)),
        "spec": cmp.spec.__dict__,
        "budget": cmp.budget.__dict__,
        "eval_split": data.eval_split,
        "scored_on": EVAL_SPLITS[data.eval_split],
        "conditions": condition_table(cmp.spec),
        "test_images": len(data.test),
        "test_duplicates_removed": data.test_duplicates,
        "test_duplicates_by_class": data.test_duplicates_by_class,
        "train_counts": data.train.counts(),
        "val_counts": data.val.counts(),
        "test_counts": data.test.counts(),
        "synthetic_plan": data.wanted,
        "synthesis": synth_reports.get(GAN_POOL) or {},
        "transfer_synthesis": synth_reports.get(TRANSFER_POOL) or {},
        "stats": run_statistics(cmp, results),
        "runs": results,
    }


def run_statistics(cmp: Comparison, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Every model's figures with 95% intervals and its conditions' paired differences: a bootstrap over
    seeds and test images together (augment.stats), from each run's predictions of the test images."""
    from augment.stats import BootstrapConfig, compare_conditions

    cfg = BootstrapConfig()
    test = cmp.data.test
    preds: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    rebuilt = []
    for r in results:
        pred, from_confusion = run_predictions(cmp, r)
        preds.setdefault(r["model"], {}).setdefault(r["condition"], {})[r["seed"]] = pred
        if from_confusion:
            rebuilt.append(f"{r['model']}/{r['condition']}/seed{r['seed']}")
    models = {}
    for model, conds in preds.items():
        seeds = sorted(set.intersection(*(set(by_seed) for by_seed in conds.values())))
        if seeds:
            stacked = {c: np.stack([by_seed[s] for s in seeds]) for c, by_seed in conds.items()}
            models[model] = compare_conditions(test.labels, stacked, test.classes, cfg)
    notes = []
    if rebuilt:
        notes.append(
            f"{len(rebuilt)} run(s) kept no predictions and no model ({', '.join(rebuilt)}): their predictions were "
            "rebuilt from their confusion matrices, which loses the pairing of images, so their differences' "
            "intervals are wider than they need be"
        )
    return {"method": "paired bootstrap over seeds and test images", **cfg.__dict__, "notes": notes, "models": models}


def predict_test(run_dir: Path, test: FaceDataset, device: str) -> np.ndarray:
    """A trained run's predicted class of every test image (indices into the test's classes)."""
    from classifier.inference import load_classifier, predict_proba, prepare_images

    net, meta = load_classifier(run_dir, device=device)
    if list(meta["classes"]) != list(test.classes):
        raise ValueError(f"{run_dir}: trained on classes {meta['classes']}, tested on {test.classes}")
    return predict_proba(net, prepare_images(test.images, meta), device=device).argmax(1)


def save_predictions(run_dir: Path, test: FaceDataset, pred: np.ndarray) -> None:
    with atomic_path(run_dir / PREDICTIONS) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, pred=pred.astype(np.uint8), labels=test.labels.astype(np.uint8), classes=test.classes)


def _stored_predictions(path: Path, test: FaceDataset) -> np.ndarray | None:
    """The predictions a run kept, or None when there are none or they are of other test images."""
    try:
        with np.load(path) as f:
            pred, labels, classes = f["pred"].astype(np.int64), f["labels"], f["classes"].tolist()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return pred if classes == list(test.classes) and np.array_equal(labels, test.labels) else None


def run_predictions(cmp: Comparison, result: dict[str, Any]) -> tuple[np.ndarray, bool]:
    """A finished run's predictions of the test images, and whether they had to be rebuilt from its confusion
    matrix. A run of an older report that kept none is tested again from its model (and keeps them now)."""
    from classifier.inference import BEST

    key = (result["model"], result["condition"], result["seed"])
    run_dir, test = cmp.run_dir(key), cmp.data.test
    pred = _stored_predictions(run_dir / PREDICTIONS, test)
    if pred is not None:
        return pred, False
    if (run_dir / BEST).exists():
        pred = predict_test(run_dir, test, cmp.device)
        save_predictions(run_dir, test, pred)
        return pred, False
    return predictions_from_confusion(result, test, seed_of("rebuild", *key), run_dir), True


def predictions_from_confusion(result: dict[str, Any], test: FaceDataset, seed: int, run_dir: Path) -> np.ndarray:
    """Predictions with the run's confusion matrix, spread over each class's test images in a random order
    (which image got which answer is lost, so the pairing with other runs is too)."""
    cm = np.asarray(result["confusion_matrix"], dtype=np.int64)
    per_class = np.bincount(test.labels, minlength=len(test.classes))
    if list(result["classes"]) != list(test.classes) or not np.array_equal(cm.sum(1), per_class):
        raise UserError(f"{run_dir}: tested on other test images and its model is gone; delete it and rerun compare")
    rng = np.random.default_rng(seed)
    pred = np.empty(len(test), dtype=np.int64)
    for k, row in enumerate(cm):
        pred[test.labels == k] = rng.permutation(np.repeat(np.arange(len(row)), row))
    return pred
