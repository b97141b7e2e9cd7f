"""What a comparison is asked for (``CompareSpec``), and the one check of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from augment.compare.budgets import BUDGETS
from augment.compare.conditions import condition_spec
from augment.core.errors import UserError
from augment.rebalance import QualityFilter
from gan.config import DEFAULT_CHECKPOINT

EVAL_SPLITS = {"test": "test", "val": "validation (screening)"}


@dataclass
class CompareSpec:
    models: list[str]
    conditions: list[str]
    seeds: int
    budget: str = "cpu-small"
    target: str = "max"
    classes: list[str] | None = None
    min_prob: float = QualityFilter().min_prob
    drop_near_copies: bool = True
    device: str = "auto"
    gpus: list[int] = field(default_factory=list)
    nproc: int = 1
    judge: Path | None = None  # a real-only classifier run for the quality filter (default: the generator's)
    checkpoint: str = DEFAULT_CHECKPOINT  # the generator's best (on validation) or last checkpoint
    max_ratio: float = 1.0  # gan-cap: at most this × a class's real count of synthetic faces
    synthetic_weight: float = 0.5  # gan-w: each synthetic face's loss × this
    refit_epochs: int = 3  # gan-refit, refit: epochs of the head refit on class-balanced real faces
    eval_split: str = "test"  # or "val": score on the real validation split (screening); test is never loaded


def validate_spec(spec: CompareSpec, generator_run: str | Path | None = "") -> None:
    """One line naming the option for every setting compare cannot run."""
    from classifier.models import MODEL_NAMES

    for m in spec.models:
        if m not in MODEL_NAMES:
            raise UserError(f"--models {m}: use some of {', '.join(MODEL_NAMES)}")
    for c in spec.conditions:
        if condition_spec(c, spec).synthetic and generator_run is None:
            raise UserError(f"--conditions {c} uses GAN faces: pass --generator (a gan-train run folder)")
    if spec.synthetic_weight < 0:
        raise UserError(f"--synthetic-weight {spec.synthetic_weight}: use 0 or more (0.5 halves their loss)")
    refits = [c for c in spec.conditions if "refit_head_epochs" in condition_spec(c, spec).train]
    if spec.refit_epochs < 1 and refits:
        raise UserError(f"--refit-epochs {spec.refit_epochs}: {refits[0]} needs at least 1 epoch of head refit")
    if spec.eval_split not in EVAL_SPLITS:
        raise UserError(f"--eval-split {spec.eval_split}: use test (the final grid) or val (screening)")
    if spec.budget not in BUDGETS:
        raise UserError(f"--budget {spec.budget}: use {' or '.join(BUDGETS)}")
    if spec.seeds < 1:
        raise UserError("--seeds must be at least 1")
    QualityFilter(min_prob=spec.min_prob, drop_near_copies=spec.drop_near_copies)  # refuses a bad --min-prob
    if spec.gpus and spec.nproc > 1:
        raise UserError("use either --gpus (independent runs side by side) or --nproc (each run on N processes)")
