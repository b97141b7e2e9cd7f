"""``gan-eval``'s figures that only an expression-transfer run has, per target class:

- **identity kept**: how often a translated face's nearest real training face, in the grading judge's
  features, is its own source face (the person survived the translation; chance is 1 in the pool's size).
  The judge's features are made to see expressions, so a changed expression moves a face away from its
  source there; **identity kept (pixels)** asks the same of the nearest face in pixels, where a face that
  kept its person, pose and lighting stays nearest its source;
- **expression changed**: how much of the source class the judge still sees: its mean probability of the
  source class on the source faces and on their translations, and the share it still calls the source class.

And ``transfer.png``: source faces above their translations, two rows per target class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augment.core.dataset import FaceDataset
from classifier.judge import Judge, judge_probabilities
from gan.translate import Candidates
from gan.validation import judge_features

GRID_PAIRS = 10  # source -> translation pairs per target class in transfer.png


def transfer_figures(
    judge: Judge, cand: Candidates, labels: np.ndarray, pool: FaceDataset, classes: list[str], device: str
) -> dict[str, Any]:
    """Identity kept and expression changed per target class (``cand``: the translations and their sources,
    drawn from ``pool``; ``labels``: their target classes, indices into ``classes``)."""
    from gan.metrics import nearest_distances

    _, nearest = nearest_distances(
        judge_features(judge, cand.images, device), judge_features(judge, pool.images, device)
    )
    kept = nearest == cand.rows
    kept_pixels = nearest_distances(cand.images, pool.images)[1] == cand.rows
    source = np.array([classes.index(c) for c in cand.source_classes])
    after = judge_probabilities(judge, cand.images, classes, device)
    before = judge_probabilities(judge, cand.source_images, classes, device)
    rows = np.arange(len(source))
    still = after.argmax(1) == source
    per_class = {}
    for k, name in enumerate(classes):
        m = labels == k
        if not m.any():
            continue
        per_class[name] = {
            "identity_kept": float(kept[m].mean()),
            "identity_kept_pixels": float(kept_pixels[m].mean()),
            "source_prob_before": float(before[rows[m], source[m]].mean()),
            "source_prob_after": float(after[rows[m], source[m]].mean()),
            "still_source": float(still[m].mean()),
            "target_prob": float(after[m, k].mean()),
        }
    return {
        "identity": "the nearest real training face (grading judge's features) is the translated face's own source",
        "pool": len(pool),
        "chance_identity": 1 / max(len(pool), 1),
        "per_class": per_class,
        "mean_identity_kept": float(kept.mean()),
        "mean_identity_kept_pixels": float(kept_pixels.mean()),
        "mean_still_source": float(still.mean()),
    }


def save_transfer_pairs(cand: Candidates, labels: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Two rows per target class: the first ``GRID_PAIRS`` source faces, then their translations."""
    from augment.core.pictures import labelled_grid

    rows, names = [], []
    for k, name in enumerate(classes):
        idx = np.flatnonzero(labels == k)[:GRID_PAIRS]
        if len(idx):
            rows += [cand.source_images[idx], cand.images[idx]]
            names += ["source", f"-> {name}"]
    labelled_grid(rows, names, path, title=title)
