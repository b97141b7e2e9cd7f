"""Classification accuracy score (Ravuri & Vinyals 2019), per class: are the samples fit to train a classifier?

A small classifier is trained on generated faces only (the same number per class) and tested on the
real validation faces; the same classifier trained on as many real training faces is its reference.
Per class, synthetic recall over real recall is the class's usefulness: near 1, the samples teach the
class as well as real faces do; near 0, they teach nothing (whatever a judge or a Fréchet distance says).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from augment.core.dataset import FaceDataset
from augment.core.runtime import step_generator
from classifier.data import to_input
from classifier.epoch import train_step
from classifier.inference import predict_proba
from classifier.metrics import classification_metrics
from classifier.models import build_model
from gan.config import CasConfig


def train_cas_classifier(
    images: np.ndarray, labels: np.ndarray, num_classes: int, cfg: CasConfig, device: str
) -> torch.nn.Module:
    """``cfg.model`` trained from scratch on uint8 faces with random horizontal flips (seeded: the same
    faces give the same classifier). Flips are done on whole batches, so the CAS costs seconds, not minutes."""
    torch.manual_seed(cfg.seed)
    n, channels, size = len(labels), images.shape[1], images.shape[2]
    model = build_model(cfg.model, num_classes, in_channels=channels, image_size=size, width=cfg.width).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    criterion = torch.nn.CrossEntropyLoss()
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(np.asarray(labels, dtype=np.int64))
    batch = max(2, min(cfg.batch_size, n))
    model.train()
    for epoch in range(cfg.epochs):
        gen = step_generator(cfg.seed, epoch, stream=41)
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - batch + 1, batch):  # the ragged last batch is dropped (BatchNorm needs > 1)
            idx = order[start : start + batch]
            x = to_input(x_all[idx])
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            train_step(model, criterion, opt, x.to(device), y_all[idx].to(device))
    return model.eval()


def cas_metrics(images: np.ndarray, labels: np.ndarray, val: FaceDataset, cfg: CasConfig, device: str) -> dict:
    """The classification metrics on the real ``val`` faces of the CAS classifier trained on ``images``."""
    model = train_cas_classifier(images, labels, len(val.classes), cfg, device)
    pred = predict_proba(model, val.images, device=device).argmax(1)
    return classification_metrics(val.labels, pred, list(val.classes))


def equal_real_draw(train: FaceDataset, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """``per_class`` real training faces of every class: a random draw, repeated to ``per_class`` when a
    class has fewer (each face as often as the others, give or take one). Also the distinct faces used."""
    rng = np.random.default_rng(seed)
    images, labels, distinct = [], [], {}
    for k, c in enumerate(train.classes):
        idx = np.flatnonzero(train.labels == k)
        distinct[c] = int(min(len(idx), per_class))
        if len(idx) == 0:
            continue
        pick = rng.permutation(idx)
        pick = np.resize(pick, per_class) if len(pick) < per_class else pick[:per_class]
        images.append(train.images[pick])
        labels.append(np.full(per_class, k))
    return np.concatenate(images), np.concatenate(labels), distinct


def _recall_ratio(syn: float, real: float) -> float | None:
    return syn / real if real > 0 else None


def classification_accuracy_score(
    samples: np.ndarray,
    sample_labels: np.ndarray,
    train: FaceDataset,
    val: FaceDataset,
    cfg: CasConfig,
    device: str = "cpu",
) -> dict[str, Any] | None:
    """Per-class CAS recall of a classifier trained on ``samples`` and of one trained on as many real
    ``train`` faces, both tested on the real ``val`` faces, and their ratio (synthetic over real; None
    when the real-trained classifier recalls none of the class). None without validation faces.

    ``train`` and ``val`` are in the generator's classes, at its size and channels.
    """
    if len(val) == 0:
        return None
    classes = list(train.classes)
    per_class = int(np.bincount(sample_labels, minlength=len(classes)).max())
    real_x, real_y, distinct = equal_real_draw(train, per_class, cfg.seed)
    syn = cas_metrics(samples, sample_labels, val, cfg, device)
    real = cas_metrics(real_x, real_y, val, cfg, device)
    return {
        "classifier": cfg.to_dict(),
        "train_per_class": per_class,
        "real_distinct_per_class": distinct,
        "val_counts": val.counts(),
        "synthetic_macro_f1": syn["macro_f1"],
        "real_macro_f1": real["macro_f1"],
        "per_class": {
            c: {
                "synthetic_recall": syn["per_class"][c]["recall"],
                "real_recall": real["per_class"][c]["recall"],
                "ratio": _recall_ratio(syn["per_class"][c]["recall"], real["per_class"][c]["recall"]),
            }
            for c in classes
        },
    }
