"""Training budgets: how far each run of a comparison trains, counted in images seen, never in minutes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from classifier.config import FER_CNN_RECIPE

if TYPE_CHECKING:
    from augment.compare.conditions import ConditionSpec
    from classifier.config import TrainConfig

DEFAULT_MODELS = ("resnet18", "resemotenet")  # compare's models when the budget names none


@dataclass
class Budget:
    """Per-run training settings of a budget, sized by images seen (``epochs`` × ``epoch_samples``, or full
    epochs of the train split), never by minutes: machines differ in speed by up to 10×."""

    name: str
    epochs: int
    epoch_samples: int  # 0 = full epochs
    patience: int
    widths: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    head_widths: dict[str, float] = field(default_factory=dict)  # ResEmoteNet's MLP head alone (none: as widths)
    batch_size: int = 64
    lr: float = 1e-3
    workers: int = 0  # DataLoader workers for augmentation (GPU machines have cores to spare)
    samples: dict[str, int] = field(default_factory=dict)  # per-model epoch_samples overrides
    about: str = ""  # what the budget is for, in a few words (the --budget help lists it)
    models: tuple[str, ...] = ()  # compare's default --models at this budget (none: DEFAULT_MODELS)
    train: dict[str, Any] = field(default_factory=dict)  # further TrainConfig settings of every run

    def epoch_samples_for(self, model: str) -> int:
        return self.samples.get(model, self.epoch_samples)

    def images_seen(self, model: str, train_images: int) -> int:
        """Training images one run of ``model`` sees on a train split of ``train_images``."""
        return self.epochs * (self.epoch_samples_for(model) or train_images)

    def default_models(self) -> list[str]:
        return list(self.models or DEFAULT_MODELS)


# The compact FER CNN's recipe (classifier.config.FER_CNN_RECIPE), shared by the budgets that train it.
FER_CNN: dict[str, Any] = {
    "widths": {"fer-cnn": FER_CNN_RECIPE["width"]},
    "lr": FER_CNN_RECIPE["lr"],
    "models": ("fer-cnn",),
    "train": {k: FER_CNN_RECIPE[k] for k in ("weight_decay", "schedule")},
}

BUDGETS: dict[str, Budget] = {
    # A small grid on a CPU: every run of a model sees the same number of images (6 subsampled epochs),
    # ResEmoteNet at a quarter width on 48 px faces.
    "cpu-small": Budget(
        "cpu-small",
        epochs=6,
        epoch_samples=3072,
        patience=0,
        widths={"resemotenet": 0.25, "simple-deep-cnn": 0.5},
        sizes={"resemotenet": 48},
        samples={"resemotenet": 8192, "simple-cnn": 8192},
        about="a small grid on 2 CPU cores: short epochs, narrower models",
    ),
    # Classifiers trained far enough to matter, on the images fer-cnn's 10 full epochs of the train split
    # see: AdamW, one-cycle, batch 128, flips and small affine shifts on 48 px grayscale faces. fer-cnn at
    # half width, ResNet18 as published (ImageNet stem) on faces upsized to 64 px (its first maps 16×16, not
    # 12×12), ResEmoteNet at a quarter width on 48 px faces (the published width, 1.0 on 64 px, stays the full
    # budget's and `train --width 1`'s).
    "cpu": Budget(
        "cpu",
        epochs=10,
        epoch_samples=0,
        patience=0,
        batch_size=128,
        about="trained classifiers on a CPU: 10 full epochs, one-cycle",
        **{
            **FER_CNN,
            "widths": {**FER_CNN["widths"], "resemotenet": 0.25},
            "sizes": {"resemotenet": 48, "resnet18": 64},
            "head_widths": {"resemotenet": 1.0},
        },
    ),
    # The embedded demo faces: fer-cnn at half width on 32 px faces, one-cycle (scripts/check_demo_budget.py
    # measures its baseline accuracy over seeds).
    "demo": Budget(
        "demo",
        epochs=12,
        epoch_samples=1024,
        patience=0,
        sizes={"fer-cnn": 32},
        about="the embedded demo faces: fer-cnn on 32 px faces, 12 epochs of 1,024 images",
        **FER_CNN,
    ),
    # The real experiment, for a GPU: full models and full epochs with early stopping on validation.
    "full": Budget(
        "full",
        epochs=40,
        epoch_samples=0,
        patience=8,
        batch_size=128,
        workers=6,
        about="the real experiment on a GPU: full models, 40 epochs, early stopping",
    ),
    # ResNet18 and ResEmoteNet on one GPU: 12 epochs of 4,096 images (49k images a run on any GPU).
    "gpu-small": Budget(
        "gpu-small",
        epochs=12,
        epoch_samples=4096,
        patience=0,
        batch_size=256,
        lr=2e-3,
        widths={"resemotenet": 0.5},
        workers=6,
        about="ResNet18 and ResEmoteNet on one GPU: 12 epochs of 4,096 images",
    ),
}


def budget_help() -> str:
    """The --budget help: every budget's name and what it is for."""
    return "Training budget of each run: " + "; ".join(f"{b.name} ({b.about})" for b in BUDGETS.values()) + "."


def budget_models(budget: str) -> list[str]:
    """compare's models when --models is not given: the budget's (an unknown budget is refused later)."""
    return BUDGETS[budget].default_models() if budget in BUDGETS else list(DEFAULT_MODELS)


def budget_train_config(
    model: str, budget: Budget, seed: int, cs: ConditionSpec, device: str, real_train: int = 0
) -> TrainConfig:
    """A run's TrainConfig: the budget's settings, then the condition's (class weights, synthetic weight,
    head refit). A budget of full epochs counts them in ``real_train`` images (the real train split) for a
    condition that adds images, so it sees as many as the baseline, not more: it may not win by training
    longer."""
    from classifier.config import TrainConfig

    adds_images = cs.synthetic > 0 or cs.duplicates > 0
    cfg = TrainConfig(
        model=model,
        epochs=budget.epochs,
        epoch_samples=budget.epoch_samples_for(model) or (real_train if adds_images else 0),
        patience=budget.patience,
        width=budget.widths.get(model, 1.0),
        size=budget.sizes.get(model, 0),
        head_width=budget.head_widths.get(model, 0.0),
        batch_size=budget.batch_size,
        lr=budget.lr,
        seed=seed,
        device=device,
        val_fraction=0.0,
        workers=budget.workers if device.startswith("cuda") else 0,
    )
    return replace(cfg, **{**budget.train, **cs.train})
