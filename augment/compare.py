"""``augment compare``: model × condition × seed, trained the same way, scored on real images only.

Conditions (``recipe`` defines each; ``CONDITION_HELP`` says it in words):
  baseline        real images only
  gan             real + GAN samples filling the shortfall to the target
  gan25/gan50     the same with 25% / 50% of the shortfall (the synthetic-amount sweep)
  gan-cap         gan, at most --max-ratio × the class's real count of synthetic faces; gan-capR (gan-cap0.5)
                  names its ratio, so a sweep over R is one list of conditions
  gan-w           gan data, each synthetic face's loss × --synthetic-weight
  gan+oversample  the shortfall filled half by GAN samples (as gan50), the rest by duplicates of real images
  gan-refit       gan data, then the head re-fitted --refit-epochs epochs on class-balanced real faces
  oversample      real + random duplicates of real minority images to the same targets
  weighted        real images, class-weighted cross-entropy
  gan+weighted    GAN-rebalanced and class-weighted
  refit           real images, then the same head refit as gan-refit (is a gain the faces' or the refit's?)

``--eval-split val`` scores every run on the real validation split (screening) and never loads test.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import atomic_path, write_json
from augment.core.dataset import FaceDataset, concat
from augment.core.errors import UserError
from augment.core.progress import console
from augment.core.splits import carve_train_val
from augment.plan import ClassPlan, capped, plan_rebalance, share
from augment.rebalance import QualityFilter
from gan.config import DEFAULT_CHECKPOINT, GanConfig

DEFAULT_CONDITIONS = ("baseline", "gan", "oversample", "weighted")
DEFAULT_MODELS = ("resnet18", "resemotenet")  # compare's models when the budget names none
EVAL_SPLITS = {"test": "test", "val": "validation (screening)"}
PREDICTIONS = "predictions.npz"  # each run's predicted class of every test image, beside its result.json


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


# The compact FER CNN's recipe (issue 11), shared by the budgets that train it: half width, one-cycle
# AdamW peaking at 3e-3, weight decay 5e-4.
FER_CNN: dict[str, Any] = {
    "widths": {"fer-cnn": 0.5},
    "lr": 3e-3,
    "models": ("fer-cnn",),
    "train": {"weight_decay": 5e-4, "schedule": "onecycle"},
}

BUDGETS: dict[str, Budget] = {
    # 4 conditions × 2 models × 3 seeds on FER2013 in ≤ 45 min on 2 cores. All runs of a model see the same
    # number of images (6 subsampled epochs): 18k for ResNet18, 49k for ResEmoteNet at a quarter width on
    # 48 px faces (about 75 s each on this CPU).
    "cpu-small": Budget(
        "cpu-small",
        epochs=6,
        epoch_samples=3072,
        patience=0,
        widths={"resemotenet": 0.25, "simple-deep-cnn": 0.5},
        sizes={"resemotenet": 48},
        samples={"resemotenet": 8192, "simple-cnn": 8192},
        about="fits 45 min on 2 CPU cores: short epochs, narrower models",
    ),
    # A classifier trained far enough to matter (issue 11): fer-cnn at half width on 48 px grayscale faces,
    # AdamW (wd 5e-4), one-cycle peaking at 3e-3, batch 128, flips and small affine shifts; 10 full epochs of
    # the train split (258k images seen on FER2013). Measured on FER2013 (seed 0, 2026-11-28): accuracy
    # 0.614 and macro-F1 0.531 on the deduplicated test set (best epoch 9 on validation). One epoch took
    # 62 s (462 images/s, 2 threads, idle) where the PyTorch DCGAN example ran at 86 images/s: a run is
    # about 10 minutes there, about 9 where that example runs at 100 images/s.
    "cpu": Budget(
        "cpu",
        epochs=10,
        epoch_samples=0,
        patience=0,
        batch_size=128,
        about="a trained fer-cnn on a CPU: 10 full epochs, one-cycle",
        **FER_CNN,
    ),
    # The embedded demo faces (about 2,200 training images): fer-cnn at half width on 32 px faces, one-cycle.
    # Measured on 2 shared CPU cores: baseline test accuracy 0.870-0.886 over 3 seeds (scripts/check_demo_budget.py;
    # 10 epochs gave 0.789-0.870); a run takes about 0.65 of a former ResNet18 run (4 epochs of 1,024 images)
    # timed beside it, and the demo's compare stage (4 conditions × 3 seeds) took 342 s, against 473 s for
    # the former 4 × 2 ResNet18 runs.
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
    # ResNet18 and ResEmoteNet on one GPU: 12 epochs of 4,096 images
    # (49k images a run, the same on every GPU; it replaced a cap of 15 s a run).
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


def child_visible_gpu(gpu: int, visible: str | None) -> str:
    """CUDA_VISIBLE_DEVICES for a child run on ``--gpus`` entry ``gpu``, which counts this process's
    visible GPUs (the same numbering as its cuda:N), not the machine's."""
    if not visible or not visible.strip():
        return str(gpu)
    ids = [v.strip() for v in visible.split(",") if v.strip()]
    if not 0 <= gpu < len(ids):
        raise UserError(f"--gpus {gpu}: only {len(ids)} GPU(s) are visible here (CUDA_VISIBLE_DEVICES={visible})")
    return ids[gpu]


def _seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=4).digest(), "little")


def clean_test(data: FaceDataset) -> tuple[FaceDataset, int]:
    """The real test split without images that duplicate a training image."""
    if not data.has_split("test"):
        raise UserError(f"{data.name}: compare needs a real test split (e.g. a test/ folder)")
    return clean_split(data, "test")


def clean_split(data: FaceDataset, split: str) -> tuple[FaceDataset, int]:
    """The real images of ``split`` without those that duplicate an image of another split, and how many."""
    real = data.subset(~data.synthetic)
    hashes = real.pixel_hashes()
    mask = real.splits == split
    dup = np.isin(hashes, list(set(hashes[~mask].tolist()))) & mask
    return real.subset(mask & ~dup), int(dup.sum())


def oversample(train: FaceDataset, targets: dict[str, int], seed: int) -> FaceDataset:
    """``targets[c]`` random duplicates of real images of each class c added to ``train``."""
    rng = np.random.default_rng(seed)
    extra = []
    for k, c in enumerate(train.classes):
        idx = np.flatnonzero(train.labels == k)
        need = targets.get(c, 0)
        if need > 0 and len(idx):
            extra.append(rng.choice(idx, size=need, replace=True))
    if not extra:
        return train
    return concat([train, train.subset(np.concatenate(extra))], name=train.name)


def take_synthetic(pool: FaceDataset, per_class: dict[str, int]) -> FaceDataset:
    """The first n accepted samples of each class: smaller amounts are subsets of larger ones."""
    keep = []
    for k, c in enumerate(pool.classes):
        idx = np.flatnonzero(pool.labels == k)[: per_class.get(c, 0)]
        keep.append(idx)
    return pool.subset(np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64))


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
    eval_split: str = field(
        default="test",
        metadata={
            "help": "Score on 'test' (the final grid) or 'val' (screening: the real validation split; test is never "
            "used, and the report folder is a screening one)."
        },
    )


@dataclass
class Recipe:
    """What one condition trains on and how, every number resolved from the CompareSpec."""

    synthetic: float = 0.0  # share of each class's shortfall filled with GAN samples
    max_ratio: float = 0.0  # > 0: at most this × the class's real count of GAN samples (augment.plan.capped)
    duplicates: float = 0.0  # share of the shortfall filled with duplicates of real images (after the GAN's part)
    train: dict[str, Any] = field(default_factory=dict)  # the TrainConfig settings the condition changes


CAP = "gan-cap"  # gan-cap (ratio --max-ratio) or gan-capR (ratio R, e.g. gan-cap0.5)
CONDITIONS = (
    "baseline",
    "gan",
    "oversample",
    "weighted",
    "gan+weighted",
    "gan25",
    "gan50",
    CAP,
    "gan-w",
    "gan+oversample",
    "gan-refit",
    "refit",
)


def recipe(cond: str, spec: CompareSpec) -> Recipe:
    """The recipe of a condition name (CONDITIONS, or gan-capR)."""
    cap = re.fullmatch(re.escape(CAP) + r"(\d+(?:\.\d+)?)?", cond)
    if cap:
        ratio = float(cap.group(1)) if cap.group(1) else spec.max_ratio
        if ratio <= 0:
            raise UserError(f"--conditions {cond}: the cap must be above 0 (e.g. gan-cap0.5, or --max-ratio 0.5)")
        return Recipe(synthetic=1.0, max_ratio=ratio)
    refit = {"refit_head_epochs": spec.refit_epochs}
    recipes = {
        "baseline": Recipe(),
        "gan": Recipe(synthetic=1.0),
        "gan25": Recipe(synthetic=0.25),
        "gan50": Recipe(synthetic=0.5),
        "oversample": Recipe(duplicates=1.0),
        "weighted": Recipe(train={"class_weighted": True}),
        "gan+weighted": Recipe(synthetic=1.0, train={"class_weighted": True}),
        "gan-w": Recipe(synthetic=1.0, train={"synthetic_weight": spec.synthetic_weight}),
        "gan+oversample": Recipe(synthetic=0.5, duplicates=0.5),
        "gan-refit": Recipe(synthetic=1.0, train=refit),
        "refit": Recipe(train=refit),
    }
    if cond not in recipes:
        raise UserError(f"--conditions {cond}: use some of {', '.join(CONDITIONS)} (or gan-capR, e.g. gan-cap0.5)")
    return recipes[cond]


def real_only(conditions: list[str]) -> list[str]:
    """The conditions that use no GAN faces (what compare can run without a generator)."""
    return [c for c in conditions if not recipe(c, CompareSpec(models=[], conditions=[], seeds=1)).synthetic]


def describe(r: Recipe) -> str:
    """A recipe in words (REPORT.md's setup section, results.json)."""
    parts = []
    if r.synthetic:
        cap = f", at most {r.max_ratio:g} × the class's real count" if r.max_ratio else ""
        parts.append(f"GAN samples fill {r.synthetic:.0%} of each class's shortfall to the target{cap}")
    if r.duplicates:
        parts.append(f"random duplicates of real images fill {'the rest' if r.synthetic else 'the shortfall'}")
    words = {
        "class_weighted": lambda v: "class-weighted cross-entropy",
        "synthetic_weight": lambda v: f"each synthetic face's loss × {v:g}",
        "refit_head_epochs": lambda v: (
            f"then the head re-fitted for {v} epochs on class-balanced real faces, body frozen"
        ),
    }
    parts += [words[k](v) for k, v in r.train.items()]
    return "; ".join(parts) if parts else "real images only"


def condition_table(spec: CompareSpec) -> dict[str, dict[str, Any]]:
    """Each condition of ``spec``: what it means in words and its recipe (results.json's "conditions")."""
    return {c: {"about": describe(recipe(c, spec)), **asdict(recipe(c, spec))} for c in spec.conditions}


CONDITION_HELP = (
    "baseline (real only), gan (fill the shortfall to --target), gan25/gan50 (a quarter/half of it), "
    "gan-cap (at most --max-ratio × real; gan-cap0.5 names its ratio), gan-w (synthetic loss × --synthetic-weight), "
    "gan+oversample (half the shortfall GAN samples, the rest duplicates of real images), gan-refit (gan, then "
    "--refit-epochs of head refit on class-balanced real faces), oversample (duplicates of real images), "
    "weighted (class-weighted loss), gan+weighted, refit (real only, then the head refit)."
)


@dataclass
class CompareData:
    """The real data every run shares: validation carved from train before anything synthetic exists,
    the scored split (``test``: the test split, or the validation split under ``--eval-split val``) cleaned
    of copies of training images, and the shortfall plan."""

    name: str
    train: FaceDataset
    val: FaceDataset
    test: FaceDataset
    test_duplicates: int
    plan: list[ClassPlan]
    trainval: FaceDataset  # train and val together (the default judge trains on it)
    test_duplicates_by_class: dict[str, int] = field(default_factory=dict)
    eval_split: str = "test"  # the split ``test`` holds

    @property
    def wanted(self) -> dict[str, int]:
        return {p.name: p.add for p in self.plan}


@dataclass
class Comparison:
    """What every run of the grid shares."""

    report_dir: Path
    spec: CompareSpec
    device: str
    data: CompareData
    pool: FaceDataset | None  # the filtered synthetic pool; None when no condition uses it
    progress: bool = True

    @property
    def budget(self) -> Budget:
        return BUDGETS[self.spec.budget]

    def run_dir(self, key: tuple[str, str, int]) -> Path:
        return self.report_dir / "runs" / key[0] / key[1] / f"seed{key[2]}"


def run_compare(
    data: FaceDataset,
    generator_run: str | Path | None,
    report_dir: str | Path,
    spec: CompareSpec,
    progress: bool = True,
) -> dict[str, Any]:
    """The whole comparison: every model × condition × seed trained (or kept from an earlier call), then
    results.json and REPORT.md. Rerunning with the same settings resumes. Without a generator only the
    real-only conditions run; a later call with one adds the GAN conditions to the same folder."""
    from augment.core.runtime import pick_device
    from augment.report import write_report

    validate_spec(spec, generator_run)
    device = pick_device(spec.device)
    report_dir = Path(report_dir)
    ident = identity(data, generator_run, spec)
    report_dir.mkdir(parents=True, exist_ok=True)
    _check_report_dir(report_dir, ident)
    prepared = prepare_data(data, spec)
    pool, synth_report = synthetic_pool(report_dir, prepared, generator_run, spec, device, progress)
    cmp = Comparison(report_dir, spec, device, prepared, pool, progress)
    runs = grid(spec)
    done, todo = finished_runs(cmp, runs)
    if progress and done:
        console.print(f"{len(done)} of {len(runs)} runs already finished; keeping them")
    clock = RunClock([r["seconds"] for r in done.values() if r.get("seconds")], len(todo), max(1, len(spec.gpus)))
    done.update(run_grid(cmp, todo, len(done), len(runs), clock))
    summary = gather_results(cmp, generator_run, synth_report, [done[k] for k in runs])
    write_json(report_dir / "results.json", summary)
    write_report(report_dir, summary, pool)
    return summary


def validate_spec(spec: CompareSpec, generator_run: str | Path | None = "") -> None:
    """One line naming the option for every setting compare cannot run."""
    from classifier.models import MODEL_NAMES

    for m in spec.models:
        if m not in MODEL_NAMES:
            raise UserError(f"--models {m}: use some of {', '.join(MODEL_NAMES)}")
    for c in spec.conditions:
        if recipe(c, spec).synthetic and generator_run is None:
            raise UserError(f"--conditions {c} uses GAN faces: pass --generator (a gan-train run folder)")
    if spec.synthetic_weight < 0:
        raise UserError(f"--synthetic-weight {spec.synthetic_weight}: use 0 or more (0.5 halves their loss)")
    refits = [c for c in spec.conditions if "refit_head_epochs" in recipe(c, spec).train]
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


def prepare_data(data: FaceDataset, spec: CompareSpec) -> CompareData:
    """Real images only: the cleaned scored split, real validation carved from train, the shortfall plan.
    Under ``--eval-split val`` the scored split is that validation split, and test is never touched."""
    real = data.subset(~data.synthetic)
    if spec.eval_split == "test":
        scored, n_dup = clean_test(real)
    # carved as gan-train carves its validation split (gan.validation.real_splits) at its default fraction
    trainval = carve_train_val(real, GanConfig.val_fraction)
    if spec.eval_split == "val":
        scored, n_dup = clean_split(trainval, "val")
    train, val = trainval.split("train"), trainval.split("val")
    plan = plan_rebalance(train.counts(), spec.target, spec.classes, 1.0)
    source = real if spec.eval_split == "test" else trainval
    dups = {c: n - scored.counts()[c] for c, n in source.counts(spec.eval_split).items()}
    return CompareData(data.name, train, val, scored, n_dup, plan, trainval, dups, spec.eval_split)


def synthetic_pool(
    report_dir: Path,
    data: CompareData,
    generator_run: str | Path | None,
    spec: CompareSpec,
    device: str,
    progress: bool,
) -> tuple[FaceDataset | None, dict[str, Any]]:
    """The filtered synthetic pool, made once and reused by every GAN condition and seed (and by reruns)."""
    from augment.rebalance import QualityFilter, synthesize
    from classifier.judge import get_judge

    if generator_run is None or not any(recipe(c, spec).synthetic for c in spec.conditions):
        return None, {}
    pool_path, report_path = report_dir / "synthetic.npz", report_dir / "synthetic.json"
    if pool_path.exists() and report_path.exists():
        return FaceDataset.load(pool_path), json.loads(report_path.read_text())
    judge = None
    if spec.min_prob > 0:
        judge = get_judge(data.trainval, Path(generator_run), spec.judge, device, progress)
    quality = QualityFilter(min_prob=spec.min_prob, drop_near_copies=spec.drop_near_copies)
    pool, synth_report = synthesize(
        data.plan, generator_run, data.train, judge, quality, 0, device, progress, spec.checkpoint
    )
    pool.save(pool_path)
    write_json(report_path, synth_report)
    return pool, synth_report


def condition_amounts(data: CompareData, r: Recipe) -> tuple[dict[str, int], dict[str, int]]:
    """Per class: the GAN samples and the duplicates of real images a recipe adds to train."""
    real = data.train.counts()
    synthetic = {c: capped(share(r.synthetic, n), real[c], r.max_ratio) for c, n in data.wanted.items()}
    duplicates = {c: min(share(r.duplicates, n), n - synthetic[c]) for c, n in data.wanted.items()}
    return synthetic, duplicates


def condition_data(data: CompareData, pool: FaceDataset | None, r: Recipe, seed: int) -> FaceDataset:
    """A condition's training images: the train part (real, duplicates of real, GAN samples) plus the shared
    real val. Smaller GAN amounts are prefixes of larger ones; the duplicates depend on the seed only."""
    synthetic, duplicates = condition_amounts(data, r)
    part = data.train
    if any(duplicates.values()):
        part = oversample(part, duplicates, seed=_seed_of("oversample", seed))
    if any(synthetic.values()):
        if pool is None:
            raise ValueError("a condition with GAN samples needs the synthetic pool")
        part = concat([part, take_synthetic(pool, synthetic)], name=data.name)
    return concat([part, data.val], name=data.name)


def grid(spec: CompareSpec) -> list[tuple[str, str, int]]:
    return [(m, c, s) for m in spec.models for c in spec.conditions for s in range(spec.seeds)]


def finished_runs(
    cmp: Comparison, runs: list[tuple[str, str, int]]
) -> tuple[dict[tuple[str, str, int], dict[str, Any]], list[tuple[str, str, int]]]:
    """Results of runs an earlier call finished (kept, never trained again), and the runs still to do."""
    done, todo = {}, []
    for key in runs:
        result_file = cmp.run_dir(key) / "result.json"
        if result_file.exists():
            done[key] = json.loads(result_file.read_text())
            _check_recipe(cmp, key, done[key])
            _check_config(cmp, key, done[key])
        else:
            todo.append(key)
    return done, todo


def _check_recipe(cmp: Comparison, key: tuple[str, str, int], result: dict[str, Any]) -> None:
    """A finished run is kept only if its condition still means what it meant (--max-ratio, --synthetic-weight
    and --refit-epochs change what gan-cap, gan-w and the refit conditions train)."""
    now = asdict(recipe(key[1], cmp.spec))
    if "recipe" in result and result["recipe"] != now:
        raise UserError(
            f"{cmp.run_dir(key)} was trained as {describe(Recipe(**result['recipe']))}, but {key[1]} now means "
            f"{describe(Recipe(**now))} (--max-ratio, --synthetic-weight or --refit-epochs changed); use a new --out"
        )


_WHERE_KEYS = ("device", "workers", "amp", "checkpoint_every")  # where and how fast a run trained, not what


def _check_config(cmp: Comparison, key: tuple[str, str, int], result: dict[str, Any]) -> None:
    """A finished run is kept only if it was trained as a run of this grid would be now (a budget whose
    images seen changed, for one, makes it another experiment)."""
    if "config" not in result:
        return
    now = budget_train_config(key[0], cmp.budget, key[2], recipe(key[1], cmp.spec), cmp.device, len(cmp.data.train))
    old = result["config"]
    diff = [k for k, v in now.to_dict().items() if k not in _WHERE_KEYS and k in old and old[k] != v]
    if diff:
        detail = ", ".join(f"{k} {old[k]!r}, now {now.to_dict()[k]!r}" for k in diff[:3])
        raise UserError(f"{cmp.run_dir(key)} was trained with other settings ({detail}); delete it or use a new --out")


@dataclass
class RunClock:
    """The seconds of finished runs (this call's, and those earlier calls recorded), and an estimate of the
    time the runs left will take: their mean duration × the runs left, over ``parallel`` GPUs."""

    seconds: list[float]
    left: int
    parallel: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finished(self, seconds: float) -> None:
        with self.lock:
            self.seconds.append(seconds)
            self.left -= 1

    def line(self) -> str | None:
        with self.lock:
            if not self.seconds or self.left <= 0:
                return None
            per_run = float(np.mean(self.seconds))
            left = per_run * self.left / self.parallel
            gpus = f" over {self.parallel} GPUs" if self.parallel > 1 else ""
            return f"time left: about {_duration(left)} ({self.left} run(s) × {per_run:.0f} s{gpus})"


def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60))
    if minutes < 1:
        return f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def one_run(cmp: Comparison, key: tuple[str, str, int], slot: int | None) -> dict[str, Any]:
    """Train one model × condition × seed (here, on GPU ``slot`` of --gpus, or under torchrun) and score it."""
    model, cond, seed = key
    t0 = time.time()
    run_dir = cmp.run_dir(key)
    r = recipe(cond, cmp.spec)
    part = condition_data(cmp.data, cmp.pool, r, seed)
    cfg = budget_train_config(model, cmp.budget, seed, r, cmp.device, len(cmp.data.train))
    eval_device = cmp.device
    if slot is not None or cmp.spec.nproc > 1:
        _train_subprocess(part, run_dir, cfg, cmp.spec, slot)
        eval_device = f"cuda:{slot}" if slot is not None else cmp.device
    else:
        from classifier.train import train_classifier

        train_classifier(part, run_dir, cfg, progress=cmp.progress)
    result = _evaluate(run_dir, cmp.data.test, model, cond, seed, eval_device, part)
    result.update(recipe=asdict(r), config=cfg.to_dict(), seconds=round(time.time() - t0, 1))
    write_json(run_dir / "result.json", result)
    return result


def run_grid(
    cmp: Comparison, todo: list[tuple[str, str, int]], finished: int, total: int, clock: RunClock
) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The runs still to do: side by side over --gpus, or one after another; the time left printed as runs
    finish."""
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    if cmp.spec.gpus:
        free: queue.Queue[int] = queue.Queue()
        for gpu in cmp.spec.gpus:
            free.put(gpu)
        with ThreadPoolExecutor(len(cmp.spec.gpus)) as pool_exec:
            for key, result in pool_exec.map(partial(_on_free_gpu, cmp, free, clock), todo):
                results[key] = result
        return results
    for i, key in enumerate(todo):
        if cmp.progress:
            left = clock.line()
            console.print(
                f"[bold]run {finished + i + 1}/{total}[/bold]: {key[0]} · {key[1]} · seed {key[2]}"
                + (f" ({left})" if left else "")
            )
        results[key] = one_run(cmp, key, None)
        clock.finished(results[key]["seconds"])
    return results


def _on_free_gpu(
    cmp: Comparison, free: queue.Queue[int], clock: RunClock, key: tuple[str, str, int]
) -> tuple[tuple[str, str, int], dict[str, Any]]:
    gpu = free.get()
    try:
        if cmp.progress:
            console.print(f"GPU {gpu}: {key[0]} · {key[1]} · seed {key[2]}")
        result = one_run(cmp, key, gpu)
        clock.finished(result["seconds"])
        left = clock.line()
        if cmp.progress and left:
            console.print(f"GPU {gpu} finished {key[0]} · {key[1]} · seed {key[2]}; {left}")
        return key, result
    finally:
        free.put(gpu)


def gather_results(
    cmp: Comparison, generator_run: str | Path | None, synth_report: dict[str, Any], results: list[dict[str, Any]]
) -> dict[str, Any]:
    """results.json: the setup, the data's counts, the synthesis report and every run's metrics."""
    data = cmp.data
    return {
        "data": data.name,
        "generator_run": str(generator_run) if generator_run is not None else None,
        "spec": cmp.spec.__dict__,
        "budget": cmp.budget.__dict__,
        "eval_split": data.eval_split,
        "scored_on": EVAL_SPLITS[data.eval_split],
        "conditions": condition_table(cmp.spec),
        "test_images": len(data.test),
        "test_duplicates_removed": data.test_duplicates,
        "test_duplicates_by_class": data.test_duplicates_by_class,
        "train_counts": data.train.counts(),
        "val_counts": data.val.counts(),
        "test_counts": data.test.counts(),
        "synthetic_plan": data.wanted,
        "synthesis": synth_report,
        "stats": run_statistics(cmp, results),
        "runs": results,
    }


def run_statistics(cmp: Comparison, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Every model's figures with 95% intervals and its conditions' paired differences: a bootstrap over
    seeds and test images together (augment.stats), from each run's predictions of the test images."""
    from augment.stats import BootstrapConfig, compare_conditions

    cfg = BootstrapConfig()
    test = cmp.data.test
    preds: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    rebuilt = []
    for r in results:
        pred, from_confusion = run_predictions(cmp, r)
        preds.setdefault(r["model"], {}).setdefault(r["condition"], {})[r["seed"]] = pred
        if from_confusion:
            rebuilt.append(f"{r['model']}/{r['condition']}/seed{r['seed']}")
    models = {}
    for model, conds in preds.items():
        seeds = sorted(set.intersection(*(set(by_seed) for by_seed in conds.values())))
        if seeds:
            stacked = {c: np.stack([by_seed[s] for s in seeds]) for c, by_seed in conds.items()}
            models[model] = compare_conditions(test.labels, stacked, test.classes, cfg)
    notes = []
    if rebuilt:
        notes.append(
            f"{len(rebuilt)} run(s) kept no predictions and no model ({', '.join(rebuilt)}): their predictions were "
            "rebuilt from their confusion matrices, which loses the pairing of images, so their differences' "
            "intervals are wider than they need be"
        )
    return {"method": "paired bootstrap over seeds and test images", **cfg.__dict__, "notes": notes, "models": models}


def predict_test(run_dir: Path, test: FaceDataset, device: str) -> np.ndarray:
    """A trained run's predicted class of every test image (indices into the test's classes)."""
    from classifier.inference import load_classifier, predict_proba, prepare_images

    net, meta = load_classifier(run_dir, device=device)
    if list(meta["classes"]) != list(test.classes):
        raise ValueError(f"{run_dir}: trained on classes {meta['classes']}, tested on {test.classes}")
    return predict_proba(net, prepare_images(test.images, meta), device=device).argmax(1)


def save_predictions(run_dir: Path, test: FaceDataset, pred: np.ndarray) -> None:
    with atomic_path(run_dir / PREDICTIONS) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, pred=pred.astype(np.uint8), labels=test.labels.astype(np.uint8), classes=test.classes)


def _stored_predictions(path: Path, test: FaceDataset) -> np.ndarray | None:
    """The predictions a run kept, or None when there are none or they are of other test images."""
    try:
        with np.load(path) as f:
            pred, labels, classes = f["pred"].astype(np.int64), f["labels"], f["classes"].tolist()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return pred if classes == list(test.classes) and np.array_equal(labels, test.labels) else None


def run_predictions(cmp: Comparison, result: dict[str, Any]) -> tuple[np.ndarray, bool]:
    """A finished run's predictions of the test images, and whether they had to be rebuilt from its confusion
    matrix. A run of an older report that kept none is tested again from its model (and keeps them now)."""
    from classifier.inference import BEST

    key = (result["model"], result["condition"], result["seed"])
    run_dir, test = cmp.run_dir(key), cmp.data.test
    pred = _stored_predictions(run_dir / PREDICTIONS, test)
    if pred is not None:
        return pred, False
    if (run_dir / BEST).exists():
        pred = predict_test(run_dir, test, cmp.device)
        save_predictions(run_dir, test, pred)
        return pred, False
    return predictions_from_confusion(result, test, _seed_of("rebuild", *key), run_dir), True


def predictions_from_confusion(result: dict[str, Any], test: FaceDataset, seed: int, run_dir: Path) -> np.ndarray:
    """Predictions with the run's confusion matrix, spread over each class's test images in a random order
    (which image got which answer is lost, so the pairing with other runs is too)."""
    cm = np.asarray(result["confusion_matrix"], dtype=np.int64)
    per_class = np.bincount(test.labels, minlength=len(test.classes))
    if list(result["classes"]) != list(test.classes) or not np.array_equal(cm.sum(1), per_class):
        raise UserError(f"{run_dir}: tested on other test images and its model is gone; delete it and rerun compare")
    rng = np.random.default_rng(seed)
    pred = np.empty(len(test), dtype=np.int64)
    for k, row in enumerate(cm):
        pred[test.labels == k] = rng.permutation(np.repeat(np.arange(len(row)), row))
    return pred


# The identity keys only the synthetic pool depends on: None in a folder made without --generator, whose
# real-only runs stay valid when a later call brings a generator and adds the GAN conditions.
SYNTHETIC_KEYS = ("generator_run", "generator_checkpoint", "generator_step", "min_prob", "judge", "drop_near_copies")


def identity(data: FaceDataset, generator_run: str | Path | None, spec: CompareSpec) -> dict[str, Any]:
    """The settings the synthetic pool and the finished runs of a report folder depend on (compare.json)."""
    from gan.sample import load_generator

    ident: dict[str, Any] = {
        "data": data.name,
        "budget": spec.budget,
        "target": spec.target,
        "classes": spec.classes,
        "eval_split": spec.eval_split,
        **dict.fromkeys(SYNTHETIC_KEYS),
    }
    if generator_run is not None:
        _, meta = load_generator(Path(generator_run), checkpoint=spec.checkpoint)
        ident.update(
            generator_run=str(Path(generator_run).resolve()),
            generator_checkpoint=meta["checkpoint"],
            generator_step=meta["step"],
            min_prob=spec.min_prob,
            judge=str(Path(spec.judge).resolve()) if spec.judge and spec.min_prob > 0 else None,
            drop_near_copies=spec.drop_near_copies,
        )
    return ident


def _check_report_dir(report_dir: Path, ident: dict[str, Any]) -> None:
    """A report folder belongs to one identity; runs of other settings would mix. A folder made without a
    generator takes one later (its real-only runs do not depend on it); a call without one keeps the folder's."""
    path = report_dir / "compare.json"
    if path.exists():
        old = {"eval_split": "test", **dict.fromkeys(SYNTHETIC_KEYS), **json.loads(path.read_text())}
        either_lacks = ident["generator_run"] is None or old["generator_run"] is None
        diff = ", ".join(k for k in ident if old[k] != ident[k] and not (either_lacks and k in SYNTHETIC_KEYS))
        if diff:
            raise UserError(f"{report_dir} holds a comparison with other settings ({diff}); use a new --out")
        if ident["generator_run"] is None:
            return
    elif any(p for p in report_dir.iterdir() if not p.name.startswith(".")):
        raise UserError(f"{report_dir} is not empty and holds no comparison; choose a new --out folder")
    write_json(path, ident)


def budget_train_config(model: str, budget: Budget, seed: int, r: Recipe, device: str, real_train: int = 0):
    """A run's TrainConfig: the budget's settings, then the condition's (class weights, synthetic weight,
    head refit). A budget of full epochs counts them in ``real_train`` images (the real train split) for a
    condition that adds images, so it sees as many as the baseline, not more: it may not win by training
    longer."""
    from classifier.config import TrainConfig

    adds_images = r.synthetic > 0 or r.duplicates > 0
    cfg = TrainConfig(
        model=model,
        epochs=budget.epochs,
        epoch_samples=budget.epoch_samples_for(model) or (real_train if adds_images else 0),
        patience=budget.patience,
        width=budget.widths.get(model, 1.0),
        size=budget.sizes.get(model, 0),
        batch_size=budget.batch_size,
        lr=budget.lr,
        seed=seed,
        device=device,
        val_fraction=0.0,
        workers=budget.workers if device.startswith("cuda") else 0,
    )
    return replace(cfg, **{**budget.train, **r.train})


def _evaluate(
    run_dir: Path, test: FaceDataset, model: str, cond: str, seed: int, device: str, train_part: FaceDataset
) -> dict[str, Any]:
    from classifier.metrics import classification_metrics

    pred = predict_test(run_dir, test, device)
    save_predictions(run_dir, test, pred)
    m = classification_metrics(test.labels, pred, test.classes)
    return {
        "model": model,
        "condition": cond,
        "seed": seed,
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "balanced_accuracy": m["balanced_accuracy"],
        "recall": {c: v["recall"] for c, v in m["per_class"].items()},
        "f1": {c: v["f1"] for c, v in m["per_class"].items()},
        "confusion_matrix": m["confusion_matrix"],
        "classes": m["classes"],
        "train_images": int((train_part.splits == "train").sum()),
        "synthetic_train_images": int(train_part.synthetic.sum()),
    }


def child_config(cfg: Any, gpu: int | None) -> Any:
    """The TrainConfig a run handed to another process trains with: every field as given, but a CUDA device
    is plain "cuda", never this process's "cuda:0" (under torchrun each rank takes its LOCAL_RANK's GPU;
    on a --gpus entry the child sees only that GPU)."""
    cuda = gpu is not None or cfg.device.startswith("cuda")
    return replace(cfg, device="cuda" if cuda else cfg.device)


def read_train_config(path: Path) -> Any:
    """The TrainConfig of a JSON file (``augment train --config``; compare writes one per child run).
    Settings it leaves out take TrainConfig's defaults; an unknown setting or a value of the wrong type
    is refused by name."""
    from dataclasses import fields

    from classifier.config import TrainConfig

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
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _train_subprocess(part: FaceDataset, run_dir: Path, cfg: Any, spec: CompareSpec, gpu: int | None) -> None:
    """Hand one run to its own process: one GPU of --gpus, or torchrun over --nproc processes. The child
    reads its data and its whole TrainConfig from files (``augment train --config``)."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cache = run_dir.parent / f".{run_dir.name}.data.npz"
    config = run_dir.parent / f".{run_dir.name}.config.json"
    part.save(cache)
    write_json(config, child_config(cfg, gpu).to_dict())
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = child_visible_gpu(gpu, os.environ.get("CUDA_VISIBLE_DEVICES"))
    args = ["augment", "train", str(cache), "--out", str(run_dir), "--config", str(config)]
    if spec.nproc > 1:
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={spec.nproc}"]
        cmd = [sys.executable, *launcher, "-m", *args]
    else:
        cmd = [sys.executable, "-m", *args]
    proc = subprocess.run(cmd, env=env)
    cache.unlink(missing_ok=True)
    config.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise UserError(f"training run {run_dir} failed (exit {proc.returncode}); rerun compare to resume")
