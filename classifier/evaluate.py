"""Evaluate a trained classifier on a split of a dataset (its own or another one), and predict image files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_json
from augment.core.dataset import SPLITS, FaceDataset
from augment.core.errors import UserError
from augment.core.progress import track
from augment.core.readers.decode import DECODE_ERRORS, crop_warning, decode_one, decode_reason
from classifier.inference import Predictor, load_classifier, predict_proba, prepare_images
from classifier.metrics import classification_metrics
from classifier.plots import plot_confusion

ALL = "all"  # --split all: every image of the data, whatever its split


def choose_split(data: FaceDataset, split: str | None) -> tuple[str, list[str]]:
    """The split to evaluate, and a note when it was chosen for the user.

    Without ``split``: ``test``, or ``all`` when the data has one split only (a class-folder tree
    without split folders is read as train).
    """
    if split is not None and split not in (*SPLITS, ALL):
        raise UserError(f"--split {split}: use {', '.join(SPLITS)} or {ALL}")
    present = sorted(set(data.splits.tolist()))
    if split is None and len(present) == 1:
        return ALL, [f"{data.name} has only a {present[0]} split: evaluating all of its images (--split all)"]
    split = split or "test"
    if split != ALL and not data.has_split(split):
        raise UserError(f"{data.name}: no '{split}' split to evaluate; it has {', '.join(present)}; try --split {ALL}")
    return split, []


def shared_classes(part: FaceDataset, classes: list[str]) -> tuple[FaceDataset, dict[str, Any]]:
    """``part`` on the model's classes: images of classes the model never saw are dropped and counted,
    classes the data lacks are named (macro-F1 leaves them out)."""
    counts = part.counts()
    dropped = {c: n for c, n in counts.items() if c not in classes and n > 0}
    if not any(counts.get(c, 0) for c in classes):
        raise UserError(f"{part.name}: no images of the model's classes ({', '.join(classes)}) to evaluate")
    absent = [c for c in classes if counts.get(c, 0) == 0]
    notes = []
    if dropped:
        listed = ", ".join(f"{c} ({n})" for c, n in dropped.items())
        notes.append(f"dropped {sum(dropped.values())} images of classes the model was not trained on: {listed}")
    if absent:
        notes.append(f"not in the data, so left out of macro-F1: {', '.join(absent)}")
    part = part.with_classes([c for c in part.classes if c in classes]).remap_to(classes)
    return part, {"dropped_classes": dropped, "absent_classes": absent, "notes": notes}


def evaluate_run(
    run_dir: str | Path,
    data: FaceDataset,
    split: str | None = None,
    out_dir: str | Path | None = None,
    device: str = "cpu",
    exclude_synthetic: bool = True,
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion-matrix PNG and JSON.

    ``data`` may be another dataset than the model's: it is scored on the classes both have
    (see :func:`shared_classes`); ``split`` defaults as :func:`choose_split` says.
    """
    model, meta = load_classifier(run_dir, device=device)
    split, split_notes = choose_split(data, split)
    part = data if split == ALL else data.split(split)
    if exclude_synthetic:
        part = part.subset(~part.synthetic)
    classes = list(meta["classes"])
    part, shared = shared_classes(part, classes)
    probs = predict_proba(model, prepare_images(part.images, meta), device=device)
    metrics = classification_metrics(part.labels, probs.argmax(1), classes)
    metrics.update({"split": split, "data": data.name, "run_dir": str(run_dir), "model_epoch": meta.get("epoch")})
    metrics.update(shared)
    metrics["notes"] = split_notes + shared["notes"]
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


def predict_files(
    run_dir: str | Path, paths: list[Path], device: str = "cpu", progress: bool = False
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Top class and class probabilities for each (cropped face) image file.

    Returns (one result per readable file, in order; [(path, reason)] for files that could not be read).
    A result has a ``warning`` when its image is far from a face crop (e.g. a 5000x1 strip).
    """
    predictor = Predictor(run_dir, device=device)
    images, read, failed = [], [], []
    for p in track(paths, "reading images") if progress else paths:
        try:
            images.append(decode_one(Path(p), predictor.load_size, predictor.channels))
            read.append((p, crop_warning(Path(p))))
        except DECODE_ERRORS as err:
            failed.append((str(p), decode_reason(err)))
    scores = predictor.scores(np.stack(images)) if images else []
    return [
        {"path": str(p), **s, **({"warning": note} if note else {})} for (p, note), s in zip(read, scores, strict=True)
    ], failed
