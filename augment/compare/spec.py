"""What a comparison is asked for (``CompareSpec``), and the one check of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from augment.compare.budgets import BUDGETS, DEFAULT_MODELS, budget_help
from augment.compare.conditions import condition_spec
from augment.core.errors import UserError
from augment.core.limits import LIMIT_HELP
from augment.synthesis import QualityFilter
from gan.config import DEFAULT_CHECKPOINT

EVAL_SPLITS = {"test": "test", "val": "validation (screening)"}


@dataclass
class CompareSpec:
    models: list[str] = field(
        metadata={
            "help": "Comma-separated: resemotenet, resnet18, simple-deep-cnn, simple-cnn, fer-cnn (default: the "
            f"budget's; cpu: fer-cnn; others: {','.join(DEFAULT_MODELS)})."
        }
    )
    conditions: list[str]
    seeds: int = field(metadata={"help": "Seeds per model and condition (paired across conditions)."})
    budget: str = field(default="cpu-small", metadata={"help": budget_help()})
    target: str = field(default="max", metadata={"help": "Rebalance target: max, median, N, or class=N,..."})
    classes: list[str] | None = field(
        default=None, metadata={"help": "Only these classes get synthetic images / duplicates."}
    )
    min_prob: float = field(
        default=QualityFilter().min_prob,
        metadata={"help": "Quality filter: judge probability for the class (0 = off)."},
    )
    drop_near_copies: bool = True
    device: str = "auto"
    gpus: list[int] = field(
        default_factory=list, metadata={"help": "Spread independent runs over these GPUs, e.g. '0,1,2,3'."}
    )
    nproc: int = field(default=1, metadata={"help": "Hand each run to torchrun with this many processes."})
    judge: Path | None = field(
        default=None,
        metadata={"help": "Classifier run for the quality filter (default: the generator's, or train one)."},
    )
    checkpoint: str = DEFAULT_CHECKPOINT  # the generator's best (on validation) or last checkpoint
    max_ratio: float = field(
        default=1.0, metadata={"help": "gan-cap: at most R × a class's real count of synthetic faces."}
    )
    synthetic_weight: float = field(
        default=0.5, metadata={"help": "gan-w: each synthetic face's loss is multiplied by W."}
    )
    refit_epochs: int = field(
        default=3, metadata={"help": "gan-refit, refit: epochs re-fitting the head on class-balanced real faces."}
    )
    limit: dict[str, int] = field(default_factory=dict, metadata={"help": LIMIT_HELP, "kind": "limit"})
    eval_split: str = field(
        default="test",
        metadata={
            "help": "Score on 'test' (the final grid) or 'val' (screening: the real validation split; test is never "
            "used, and the report folder is a screening one)."
        },
    )


def validate_spec(
    spec: CompareSpec, generator_run: str | Path | None = "", transfer_run: str | Path | None = ""
) -> None:
    """One line naming the option for every setting compare cannot run."""
    from augment.compare.conditions import TRANSFER_POOL, condition
    from classifier.models import MODEL_NAMES

    for m in spec.models:
        if m not in MODEL_NAMES:
            raise UserError(f"--models {m}: use some of {', '.join(MODEL_NAMES)}")
    for c in spec.conditions:
        if not condition_spec(c, spec).synthetic:
            continue
        if condition(c).pool == TRANSFER_POOL and transfer_run is None:
            raise UserError(
                f"--conditions {c} uses expression-transfer faces: pass --transfer (a gan-train --recipe transfer run)"
            )
        if condition(c).pool != TRANSFER_POOL and generator_run is None:
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
