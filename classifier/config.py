"""Classifier training settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class TrainConfig:
    model: str = "simple-cnn"
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adamw"  # or "sgd"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "cosine"  # "cosine", "onecycle" (peak --lr; both stepped per batch), "plateau" or "none"
    size: int = 0  # 0: the model's default input size
    width: float = 1.0
    small_stem: bool = False
    pretrained: str = ""
    gray_stem: str = "repeat"
    class_weighted: bool = False
    balanced_sampler: bool = False
    focal_gamma: float = 0.0  # > 0: focal loss
    label_smoothing: float = 0.0
    synthetic_weight: float = 1.0  # each synthetic sample's loss is multiplied by this
    refit_head_epochs: int = 0  # > 0: then re-fit the final layer on class-balanced real faces, body frozen
    flip: bool = True
    affine: bool = True
    erasing: bool = False
    patience: int = 8  # epochs without a better validation score before stopping; 0 = never
    select_metric: str = "macro_f1"  # or "accuracy"
    val_fraction: float = 0.1
    epoch_samples: int = 0  # > 0: images per epoch (subsampled epochs for CPU budgets)
    seed: int = 0
    classes: list[str] = field(default_factory=list)
    device: str = "auto"
    amp: bool = True
    workers: int = 0
    checkpoint_every: int = 200  # batches
    max_minutes: float = 0.0

    IDENTITY = (
        "model",
        "size",
        "width",
        "small_stem",
        "gray_stem",
        "classes",
        "data_fingerprint",
        "batch_size",
        "optimizer",
        "schedule",
        "seed",
        "class_weighted",
        "balanced_sampler",
        "focal_gamma",
        "epoch_samples",
        "synthetic_weight",
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
