"""Evaluate a trained classifier on a split of a dataset, and predict single images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.readers.decode import decode_one
from classifier.inference import load_classifier, predict_proba, prepare_images
from classifier.metrics import classification_metrics
from classifier.plots import plot_confusion


def evaluate_run(
    run_dir: str | Path,
    data: FaceDataset,
    split: str = "test",
    out_dir: str | Path | None = None,
    device: str = "cpu",
    exclude_synthetic: bool = True,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion-matrix PNG and JSON."""
    model, meta = load_classifier(run_dir, device=device)
    if not data.has_split(split):
        raise UserError(f"{data.name}: no '{split}' split to evaluate; it has {', '.join(sorted(set(data.splits)))}")
    part = data.split(split)
    if exclude_synthetic:
        part = part.subset(~part.synthetic)
    classes = list(meta["classes"])
    unknown = [c for c in part.classes if c not in classes and part.counts()[c] > 0]
    if unknown:
        raise UserError(f"{data.name}: classes {', '.join(unknown)} were not in training ({', '.join(classes)})")
    part = part.with_classes([c for c in part.classes if c in classes]).remap_to(classes)
    probs = predict_proba(model, prepare_images(part.images, meta), device=device)
    pred = probs.argmax(1)
    metrics = classification_metrics(part.labels, pred, classes)
    metrics.update({"split": split, "data": data.name, "run_dir": str(run_dir), "model_epoch": meta.get("epoch")})
    out = Path(out_dir) if out_dir else Path(run_dir) / f"eval_{split}"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", metrics)
    plot_confusion(
        np.array(metrics["confusion_matrix"]),
        classes,
        out / "confusion.png",
        title=f"{Path(str(run_dir)).name} on {split}: acc {metrics['accuracy']:.3f}, "
        f"macro-F1 {metrics['macro_f1']:.3f}",
    )
    return metrics


def predict_files(run_dir: str | Path, paths: list[Path], device: str = "cpu") -> list[dict[str, Any]]:
    """Top class and class probabilities for each (cropped face) image file."""
    model, meta = load_classifier(run_dir, device=device)
    channels = int(meta["channels"])
    # decode as the training data was loaded, then resize as training did (no train/predict skew)
    load_size = int(meta.get("data_size") or meta["size"])
    images = []
    for p in paths:
        if not Path(p).is_file():
            raise UserError(f"{p}: no such image file")
        try:
            images.append(decode_one(Path(p), load_size, channels))
        except Exception as err:  # noqa: BLE001 - PIL raises many kinds for bad files
            raise UserError(f"{p}: cannot read image ({type(err).__name__}); give a JPG/PNG face crop") from err
    probs = predict_proba(model, prepare_images(np.stack(images), meta), device=device) if images else np.zeros((0, 0))
    classes = list(meta["classes"])
    return [
        {
            "path": str(p),
            "top": classes[int(pr.argmax())],
            "probability": float(pr.max()),
            "probabilities": {c: float(v) for c, v in zip(classes, pr, strict=True)},
        }
        for p, pr in zip(paths, probs, strict=True)
    ]
