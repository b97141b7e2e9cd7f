"""The judge: a classifier trained on real images only, which scores generated faces
(``gan-eval``'s class assignment, ``rebalance``'s quality filter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console
from classifier.config import TrainConfig
from classifier.inference import load_classifier, predict_proba, prepare_images

JUDGE_DIR = "judge"
Judge = tuple[torch.nn.Module, dict[str, Any]]


def default_judge_config(n_train: int) -> TrainConfig:
    """A quick real-only classifier: ResNet18 learns fastest per CPU-minute here (it reached 54% on the
    demo faces in 6 epochs where ResEmoteNet-0.25 and the plain CNNs stayed near 30%); class-weighted
    so rare classes get recall. 8 epochs of at most 8,192 images: minutes on FER2013."""
    return TrainConfig(model="resnet18", epochs=8, class_weighted=True, patience=0, epoch_samples=min(n_train, 8192))


def get_judge(data: FaceDataset, run_dir: Path, judge_dir: Path | None, device: str, progress: bool = True) -> Judge:
    """The user's classifier run, or one trained here on the real training images (kept for reuse)."""
    from classifier.train import train_classifier

    if judge_dir is None:
        judge_dir = run_dir / JUDGE_DIR
        if not (judge_dir / "summary.json").exists():  # missing or interrupted: train or resume it
            if progress:
                console.print(f"training a judge classifier on the real training images into {judge_dir}")
            real = data.subset(~data.synthetic)
            cfg = default_judge_config(int((real.splits == "train").sum()))
            train_classifier(real, judge_dir, cfg, progress=progress)
    return load_classifier(judge_dir, device=device)


def judge_columns(
    meta: dict[str, Any], classes: list[str], fix: str = "pass --judge with a run trained on them"
) -> list[int]:
    """The judge's output column of each name in ``classes``; a UserError names the ones it lacks."""
    known = list(meta["classes"])
    missing = [c for c in classes if c not in known]
    if missing:
        raise UserError(f"the judge classifier cannot score {', '.join(missing)} (it knows {', '.join(known)}); {fix}")
    return [known.index(c) for c in classes]


def judge_probabilities(judge: Judge, images: np.ndarray, classes: list[str], device: str = "cpu") -> np.ndarray:
    """(N, len(classes)) judge probabilities of uint8 faces of any size and channels, one column
    per name in ``classes`` in that order (the judge's own class order may differ)."""
    model, meta = judge
    columns = judge_columns(meta, classes)
    return predict_proba(model, prepare_images(images, meta), device=device)[:, columns]
