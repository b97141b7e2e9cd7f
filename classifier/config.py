"""Classifier training settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from augment.core.checks import Rule, at_least, below_one, check_class_names, check_rules, one_of, positive
from augment.core.errors import UserError

MIN_SIZE, MAX_SIZE = 16, 512  # input sizes every model trains at (the simple CNNs pool 4 times)
MAX_WIDTH = 4.0  # ResEmoteNet at width 1 already has 80M parameters
# The compact FER CNN's recipe (compare's cpu budget, a transfer generator's guide): half width, one-cycle
# AdamW peaking at 3e-3, weight decay 5e-4.
FER_CNN_RECIPE: dict[str, Any] = {"width": 0.5, "lr": 3e-3, "weight_decay": 5e-4, "schedule": "onecycle"}
DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."
CLASSES_HELP = "Limit classes ('happy,sad') or map folder names ('joyful=happy,other=')."


@dataclass
class TrainConfig:
    """The settings of a classifier run. A field with ``help`` metadata is a ``train`` option
    (``augment.cli.options``); every field can be given in ``train --config``'s JSON file."""

    model: str = field(
        default="simple-cnn",
        metadata={"help": "resemotenet, resnet18, simple-deep-cnn, simple-cnn or fer-cnn (the CPU budget's)."},
    )
    epochs: int = field(default=30, metadata={"help": "Maximum epochs."})
    batch_size: int = field(default=64, metadata={"help": "Global batch size."})
    optimizer: str = field(default="adamw", metadata={"help": "adamw or sgd."})
    lr: float = field(default=1e-3, metadata={"help": "Learning rate."})
    weight_decay: float = field(default=1e-4, metadata={"help": "Weight decay."})
    momentum: float = 0.9
    # cosine and onecycle are stepped per batch
    schedule: str = field(default="cosine", metadata={"help": "cosine, onecycle (peaks at --lr), plateau or none."})
    size: int = field(default=0, metadata={"help": "Input size; 0 = the model's default (64 ResEmoteNet, else 48)."})
    width: float = field(default=1.0, metadata={"help": "Width multiplier (ResEmoteNet at 1.0 has 80M parameters)."})
    head_width: float = field(
        default=0.0, metadata={"help": "ResEmoteNet: width multiplier of the MLP head alone (0 = as --width)."}
    )
    small_stem: bool = field(default=False, metadata={"help": "ResNet18: 3×3 stem without max-pool for small faces."})
    pretrained: str = field(default="", metadata={"help": "ResNet18: local ImageNet weights file.", "kind": "path"})
    gray_stem: str = "repeat"
    class_weighted: bool = field(default=False, metadata={"help": "Class-weighted cross-entropy (inverse frequency)."})
    balanced_sampler: bool = field(default=False, metadata={"help": "Draw each class equally often."})
    focal_gamma: float = field(default=0.0, metadata={"help": "Focal loss with this gamma (0 = cross-entropy)."})
    label_smoothing: float = 0.0
    synthetic_weight: float = field(
        default=1.0,
        metadata={"help": "Multiply each synthetic face's loss by this (1 = like a real face, 0 = ignore)."},
    )
    refit_head_epochs: int = field(
        default=0,
        metadata={
            "help": "Then re-fit the final layer for N epochs on class-balanced real faces, the body frozen (0 = off).",
            "option": "--refit-epochs",
        },
    )
    flip: bool = True
    affine: bool = True
    erasing: bool = field(default=False, metadata={"help": "Random erasing augmentation."})
    noise: float = field(
        default=0.0,
        metadata={"help": "Gaussian noise of this standard deviation on each training face, on the [-1, 1] scale."},
    )
    patience: int = field(
        default=8, metadata={"help": "Early stop after N epochs without a better val score (0 = off)."}
    )
    select_metric: str = field(
        default="macro_f1", metadata={"help": "Validation metric for model selection: macro_f1 or accuracy."}
    )
    val_fraction: float = field(default=0.1, metadata={"help": "Share of train held out when DATA has no val split."})
    epoch_samples: int = field(
        default=0, metadata={"help": "Images per epoch (0 = all); shorter epochs for CPU budgets."}
    )
    seed: int = field(default=0, metadata={"help": "Random seed."})
    classes: list[str] = field(default_factory=list, metadata={"help": CLASSES_HELP, "kind": "classes"})
    device: str = field(default="auto", metadata={"help": DEVICE_HELP})
    amp: bool = field(default=True, metadata={"help": "bf16 autocast on CUDA."})
    workers: int = field(default=0, metadata={"help": "DataLoader worker processes for augmentation."})
    checkpoint_every: int = 200  # batches
    max_minutes: float = field(
        default=0.0, metadata={"help": "Stop (and checkpoint) after this many minutes; 0 = no limit."}
    )

    # What a resume may change: how many epochs, how often to checkpoint, where and how fast to run, and
    # the data's path (its fingerprint must stay). Every other setting is the run's: the learning rate too,
    # since the optimizer and schedule state bring back the old one.
    # A finished run may also be given a head refit later (--refit-epochs).
    RESUMABLE = ("epochs", "checkpoint_every", "max_minutes", "device", "amp", "workers", "data", "refit_head_epochs")

    def validate(self) -> None:
        """Refuse, in one line naming the option, a setting training cannot run with; ``train`` and
        ``train_classifier`` call it before anything is read or written."""
        from classifier.models import GRAY_STEMS, MODEL_NAMES

        if self.model not in MODEL_NAMES:
            raise UserError(f"--model {self.model}: use one of {', '.join(MODEL_NAMES)}")
        if self.gray_stem not in GRAY_STEMS:
            raise UserError(f"--gray-stem {self.gray_stem}: use {' or '.join(GRAY_STEMS)}")
        check_rules(self, _RULES)
        check_class_names(self.classes)
        if self.model == "resnet18" and self.width != 1.0:
            raise UserError(f"--width {self.width:g}: resnet18 has no width multiplier; leave it at 1")
        if self.head_width and self.model != "resemotenet":
            raise UserError(
                f"--head-width {self.head_width:g}: only resemotenet has an MLP head to widen; leave it at 0"
            )
        if self.refit_head_epochs < 0:  # the option is --refit-epochs, not the field's name
            raise UserError(f"--refit-epochs {self.refit_head_epochs}: use 0 (no refit) or more epochs")
        if self.pretrained:
            check_pretrained(self.model, Path(self.pretrained))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _size_ok(v: int) -> bool:
    return v == 0 or MIN_SIZE <= v <= MAX_SIZE


_RULES: tuple[Rule, ...] = (
    ("epochs", at_least(1), "train at least 1 epoch"),
    ("batch_size", at_least(2), "use at least 2 images per batch (batch norm needs two)"),
    ("optimizer", one_of("adamw", "sgd"), "use adamw or sgd"),
    ("lr", positive, "use a learning rate above 0, e.g. 1e-3"),
    ("weight_decay", at_least(0), "use a weight decay of 0 or more"),
    ("momentum", below_one, "use a momentum from 0 up to (not including) 1"),
    ("schedule", one_of("cosine", "onecycle", "plateau", "none"), "use cosine, onecycle, plateau or none"),
    ("size", _size_ok, f"use 0 (the model's default) or {MIN_SIZE} to {MAX_SIZE} pixels"),
    ("width", lambda v: positive(v) and v <= MAX_WIDTH, f"use a multiplier above 0 and at most {MAX_WIDTH:g}"),
    ("head_width", lambda v: 0 <= v <= MAX_WIDTH, f"use 0 (as --width) or a multiplier up to {MAX_WIDTH:g}"),
    ("noise", lambda v: 0 <= v <= 2, "use 0 (no noise) or a standard deviation up to 2, e.g. 0.5"),
    ("focal_gamma", at_least(0), "use 0 (cross-entropy) or a positive gamma"),
    ("label_smoothing", below_one, "use a share from 0 up to (not including) 1"),
    ("synthetic_weight", at_least(0), "use a weight of 0 (ignore synthetic faces) or more, e.g. 0.5"),
    ("patience", at_least(0), "use a number of epochs, or 0 to never stop early"),
    ("select_metric", one_of("macro_f1", "accuracy"), "use macro_f1 or accuracy"),
    ("val_fraction", below_one, "use a share from 0 (DATA has a val split) up to (not including) 1, e.g. 0.1"),
    ("epoch_samples", at_least(0), "use a number of images, or 0 for all"),
    ("workers", at_least(0), "use 0 (load in the main process) or more worker processes"),
    ("checkpoint_every", at_least(1), "use a number of batches, at least 1"),
    ("max_minutes", at_least(0), "use a number of minutes, or 0 for no limit"),
)


def check_pretrained(model: str, path: Path) -> None:
    """``--pretrained`` names a readable ResNet-18 state dict (read here, before the run folder is touched)."""
    if not path.is_file():
        raise UserError(f"--pretrained {path}: no such file; give a local ImageNet ResNet-18 weights file")
    if model != "resnet18":
        raise UserError(f"--pretrained {path}: only resnet18 loads pretrained weights; add --model resnet18")
    from classifier.models import ResNet18, load_resnet18_pretrained

    try:
        load_resnet18_pretrained(ResNet18(num_classes=2), path)
    except ValueError as e:  # raised from torch.load's error when the file is no torch file at all
        what = "not a PyTorch weights file" if e.__cause__ is not None else "holds no ResNet-18 parameters"
        raise UserError(f"--pretrained {path}: {what}; give a local ImageNet ResNet-18 weights file (.pth)") from e


def read_train_config(path: Path) -> TrainConfig:
    """The TrainConfig of a JSON file (``augment train --config``; compare writes one per child run).
    Settings it leaves out take TrainConfig's defaults; an unknown setting or a value of the wrong type
    is refused by name."""
    import json

    try:
        given = json.loads(Path(path).read_text())
    except OSError as e:
        raise UserError(f"--config {path}: cannot read it ({e.strerror or e})") from e
    except ValueError as e:
        raise UserError(f"--config {path}: not a JSON file ({e})") from e
    if not isinstance(given, dict):
        raise UserError(f"--config {path}: give a JSON object of training settings")
    defaults = TrainConfig()
    unknown = sorted(set(given) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise UserError(f"--config {path}: unknown setting(s) {', '.join(unknown)}")
    for name, value in given.items():
        default = getattr(defaults, name)
        if not _same_kind(value, default):
            raise UserError(f"--config {path}: {name} must be {type(default).__name__}, not {value!r}")
    return TrainConfig.from_dict(given)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a JSON value can stand for a setting whose default is ``default`` (an int for a float)."""
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))
