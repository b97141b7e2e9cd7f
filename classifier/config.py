"""Classifier training settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from augment.core.errors import UserError
from augment.core.rundir import above, at_least, below_one, check_settings, one_of


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

    # What a resume may change: how many epochs, how often to checkpoint, where and how fast to run, and
    # the data's path (its fingerprint must stay). Every other setting is the run's: the learning rate too,
    # since the optimizer and schedule state bring back the old one.
    # A finished run may also be given a head refit later (--refit-head).
    RESUMABLE = ("epochs", "checkpoint_every", "max_minutes", "device", "amp", "workers", "data", "refit_head_epochs")

    def validate(self) -> None:
        """Refuse impossible settings with one line naming the option, before anything is written."""
        from classifier.models import GRAY_STEMS, MODEL_NAMES  # imports torch: not at the CLI's start

        check_settings(self, {"model": one_of(*MODEL_NAMES), "gray_stem": one_of(*GRAY_STEMS), **_CHECKS})
        if self.refit_head_epochs < 0:  # the option is --refit-head, not the field's name
            raise UserError(f"--refit-head {self.refit_head_epochs}: use 0 (no refit) or more epochs")
        if self.pretrained and not Path(self.pretrained).is_file():
            raise UserError(f"--pretrained {self.pretrained}: no such file; give a local weights file")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# What ``TrainConfig.validate`` checks besides the model's names (the option is named after the setting).
_CHECKS = {
    "epochs": at_least(1),
    "batch_size": at_least(1),
    "optimizer": one_of("adamw", "sgd"),
    "lr": above(0),
    "weight_decay": at_least(0),
    "momentum": below_one(),
    "schedule": one_of("cosine", "onecycle", "plateau", "none"),
    "size": (lambda v: v == 0 or 16 <= v <= 512, "0 (the model's default) or 16 to 512"),
    "width": above(0),
    "focal_gamma": at_least(0),
    "label_smoothing": below_one(),
    "synthetic_weight": at_least(0),
    "patience": at_least(0),
    "select_metric": one_of("macro_f1", "accuracy"),
    "val_fraction": below_one(),  # 0: DATA brings its own val split
    "epoch_samples": at_least(0),
    "workers": at_least(0),
    "checkpoint_every": at_least(1),
    "max_minutes": at_least(0),
}
