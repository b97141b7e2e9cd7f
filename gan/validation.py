"""The validation split the generator never sees, and the cheap score that picks the best checkpoint.

``real_splits`` is the one place that splits a dataset for the GAN: the test split is dropped before
anything else, and a validation split is carved from train (``augment.core.splits.carve_train_val``:
subject- and duplicate-aware, deterministic) when the data has none. ``gan-train`` trains on what is
left of train; CAS, best-checkpoint selection and rebalance gating test on the validation split.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.runtime import data_fingerprint
from augment.core.splits import carve_train_val
from classifier.inference import prepare_images
from classifier.judge import Judge, judge_probabilities
from gan.metrics import classifier_features, judge_assignment, precision_recall
from gan.sample import generate_images


def real_splits(
    data: FaceDataset, val_fraction: float, classes: list[str] | None = None
) -> tuple[FaceDataset, FaceDataset]:
    """(train minus validation, validation) of the real images of ``data``; test is never read.

    The split is carved on all classes before ``classes`` are picked, so a generator of a few classes and
    the judge (``classifier.state.prepare_splits`` carves the same way) hold out the same faces.
    """
    real = carve_train_val(data, val_fraction)
    if classes:
        real = real.with_classes(list(classes))
    train, val = real.split("train"), real.split("val")
    if len(train) == 0:
        raise UserError(f"{data.name}: no real training images to train the GAN on")
    return train, val


def val_fingerprint(val: FaceDataset) -> str:
    """Names the validation faces a figure was measured on, so a stored figure is reused only for them."""
    return data_fingerprint(val.images, val.labels)


def judge_features(judge: Judge, images: np.ndarray, device: str) -> np.ndarray:
    """The judge's penultimate features of uint8 faces of any size (resized as the judge expects)."""
    return classifier_features(judge[0], prepare_images(images, judge[1]), device)


def per_class_precision_recall(
    real_feats: np.ndarray, real_labels: np.ndarray, fake_feats: np.ndarray, fake_labels: np.ndarray, classes: list[str]
) -> dict[str, dict[str, float] | None]:
    """Kynkäänniemi precision and recall of each class's samples against that class's real faces."""
    return {
        c: precision_recall(real_feats[real_labels == k], fake_feats[fake_labels == k]) for k, c in enumerate(classes)
    }


def selection_score(per_class: dict[str, dict[str, Any]]) -> float:
    """One number to rank checkpoints: the mean over classes of (assignment + recall) / 2; a class whose
    recall cannot be measured (too few validation faces) counts by its assignment alone. Assignment
    alone would reward collapse (one prototype face per class); recall catches it."""
    parts = []
    for v in per_class.values():
        parts.append(v["assignment"] if v["recall"] is None else (v["assignment"] + v["recall"]) / 2)
    return float(np.mean(parts)) if parts else 0.0


def selection_samples(
    g: torch.nn.Module, val: FaceDataset, labels: np.ndarray, classes: list[str], seed: int, device: str
) -> np.ndarray:
    """The faces selection scores: a noise generator's draw with ``seed``; a transfer generator's translations
    of validation faces of the other classes (spread as ``gan.translate`` spreads sources). Selection only
    scores them: no validation face reaches a dataset."""
    from gan.transfer_models import TransferGenerator

    if not isinstance(g, TransferGenerator):
        return generate_images(g, labels, seed=seed, device=device)
    from gan.translate import TransferSampler

    sampler = TransferSampler(g, classes, val, seed, device, splits=("val",))
    return np.concatenate([sampler.draw(c, int((labels == k).sum()), 0).images for k, c in enumerate(classes)])


@torch.no_grad()
def score_generator(
    g: torch.nn.Module, judge: Judge, val: FaceDataset, classes: list[str], per_class: int, seed: int, device: str
) -> dict[str, Any]:
    """Per-class judge assignment, precision and recall (in judge features, against the validation faces)
    of ``per_class`` samples per class drawn with ``seed``, and their ``selection_score``."""
    labels = np.repeat(np.arange(len(classes)), per_class)
    samples = selection_samples(g, val, labels, classes, seed, device)
    assignment = judge_assignment(judge_probabilities(judge, samples, classes, device), labels, classes)
    pr = per_class_precision_recall(
        judge_features(judge, val.images, device), val.labels, judge_features(judge, samples, device), labels, classes
    )
    per = {
        c: {
            "assignment": assignment[c],
            "precision": pr[c]["precision"] if pr[c] else None,
            "recall": pr[c]["recall"] if pr[c] else None,
        }
        for c in classes
    }
    return {"score": selection_score(per), "seed": seed, "samples_per_class": per_class, "per_class": per}
