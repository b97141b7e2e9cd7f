"""The judges: classifiers trained on real images only, which score generated faces.

Two kinds, each trained on demand into the generator's run folder and kept for reuse:

* the **grading** judge (``judge-grading/``) is trained without class weights or balanced sampling, so
  it does not lean toward the small classes; ``gan-eval`` and best-checkpoint selection grade with it.
* the **filter** judge (``judge/``) is class-weighted, so rare classes get recall; ``rebalance``'s
  quality filter uses it. Measured: the grading judge recalls none of FER2013's real disgust test faces
  (nor the demo's disgust and contempt), so it could pass no sample of those classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console
from classifier.config import FER_CNN_RECIPE, TrainConfig
from classifier.inference import load_classifier, predict_proba, prepare_images

JUDGE_DIR = "judge"  # the filter judge (class-weighted)
GRADING_JUDGE_DIR = "judge-grading"  # the grading judge (no class weights, no balanced sampling)
GUIDE_DIR = "judge-guide"  # a transfer generator's guide (another architecture than the judges)
Judge = tuple[torch.nn.Module, dict[str, Any]]


def default_judge_config(n_train: int) -> TrainConfig:
    """A quick real-only classifier: ResNet18 learns fastest per CPU-minute here (it reached 54% on the
    demo faces in 6 epochs where ResEmoteNet-0.25 and the plain CNNs stayed near 30%); class-weighted
    so rare classes get recall. 8 epochs of at most 8,192 images: minutes on FER2013."""
    return TrainConfig(model="resnet18", epochs=8, class_weighted=True, patience=0, epoch_samples=min(n_train, 8192))


def grading_judge_config(n_train: int) -> TrainConfig:
    """The filter judge's recipe without class weights or balanced sampling: a class-weighted judge leans
    toward the small classes (garbage samples get called disgust more readily), which inflates their
    assignment."""
    return replace(default_judge_config(n_train), class_weighted=False, balanced_sampler=False)


def guide_config(n_train: int) -> TrainConfig:
    """A transfer generator's guide: fer-cnn at half width by the cpu budget's recipe (one-cycle AdamW peaking
    at 3e-3, weight decay 5e-4, batch 128), 10 epochs of at most 16,384 images, no class weights. G learns
    its expressions against it, so it is another architecture than the ResNet18 judges that grade and filter
    G's faces: a pattern that fools the guide is less likely to fool them too. It trains under Gaussian
    input noise and G sees it under the same noise: a smoothed classifier, whose gradients follow a face's
    shapes rather than the class stamps an unsmoothed guide taught G."""
    return TrainConfig(
        model="fer-cnn",
        **FER_CNN_RECIPE,
        epochs=10,
        batch_size=128,
        patience=0,
        epoch_samples=min(n_train, 16384),
        balanced_sampler=False,
        noise=0.25,
    )


JUDGE_KINDS: dict[str, tuple[str, Callable[[int], TrainConfig]]] = {
    "filter": (JUDGE_DIR, lambda n: default_judge_config(n)),
    "grading": (GRADING_JUDGE_DIR, lambda n: grading_judge_config(n)),
    "guide": (GUIDE_DIR, lambda n: guide_config(n)),
}


def get_judge(
    data: FaceDataset,
    run_dir: Path,
    judge_dir: Path | None,
    device: str,
    progress: bool = True,
    kind: str = "filter",
) -> Judge:
    """The user's classifier run, or a judge of ``kind`` (filter or grading) trained here on the real
    training images into the run folder (kept for reuse)."""
    from classifier.train import train_classifier

    if judge_dir is None:
        folder, make_config = JUDGE_KINDS[kind]
        judge_dir = run_dir / folder
        if not (judge_dir / "summary.json").exists():  # missing or interrupted: train or resume it
            if progress:
                console.print(f"training a {kind} judge classifier on the real training images into {judge_dir}")
            real = data.subset(~data.synthetic)
            cfg = make_config(int((real.splits == "train").sum()))
            train_classifier(real, judge_dir, cfg, progress=progress)
    return load_classifier(judge_dir, device=device)


def judge_dir_of(run_dir: Path, judge_dir: Path | None, kind: str) -> Path:
    """Where ``get_judge`` finds (or puts) the judge of ``kind``."""
    return Path(judge_dir) if judge_dir else Path(run_dir) / JUDGE_KINDS[kind][0]


def describe_judge(judge_dir: Path) -> dict[str, Any]:
    """What a figure must say about the judge it comes from: its run, model, and whether it was trained
    with class weights or balanced sampling (read from the run's config.json)."""
    from augment.core.rundir import read_config

    cfg = read_config(Path(judge_dir)) or {}
    weighted = bool(cfg.get("class_weighted")) or bool(cfg.get("balanced_sampler"))
    return {
        "run": str(judge_dir),
        "model": cfg.get("model"),
        "class_weighted": cfg.get("class_weighted"),
        "balanced_sampler": cfg.get("balanced_sampler"),
        "leans_to_small_classes": weighted,
    }


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
