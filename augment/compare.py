"""``augment compare``: model × condition × seed, trained the same way, tested on real images only.

Conditions:
  baseline      real images only
  gan           real + GAN samples filling the shortfall to the target (per --fraction)
  gan25/gan50   the same with 25% / 50% of the shortfall (the synthetic-amount sweep)
  oversample    real + random duplicates of real minority images to the same targets
  weighted      real images, class-weighted cross-entropy
  gan+weighted  GAN-rebalanced and class-weighted
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset, concat
from augment.core.errors import UserError
from augment.core.progress import console
from augment.core.splits import ensure_val_split
from augment.plan import plan_rebalance, share
from augment.rebalance import QualityFilter

CONDITIONS = ("baseline", "gan", "oversample", "weighted", "gan+weighted", "gan25", "gan50")
DEFAULT_CONDITIONS = ("baseline", "gan", "oversample", "weighted")
GAN_FRACTIONS = {"gan": 1.0, "gan+weighted": 1.0, "gan25": 0.25, "gan50": 0.5}


@dataclass
class Budget:
    """Per-run training settings of a budget. cpu-small shrinks epochs and models to fit a 2-core CPU."""

    name: str
    epochs: int
    epoch_samples: int  # 0 = full epochs
    patience: int
    widths: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    batch_size: int = 64
    lr: float = 1e-3
    max_minutes: float = 0.0  # > 0: a wall-clock cap per run (keeps a whole grid inside a time slot)
    workers: int = 0  # DataLoader workers for augmentation (GPU machines have cores to spare)
    samples: dict[str, int] = field(default_factory=dict)  # per-model epoch_samples overrides

    def epoch_samples_for(self, model: str) -> int:
        return self.samples.get(model, self.epoch_samples)


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
    ),
    # The embedded demo faces (about 2,400 training images): about 20 s per run.
    "demo": Budget("demo", epochs=4, epoch_samples=1024, patience=0),
    # The real experiment, for a GPU: full models and full epochs with early stopping on validation.
    "full": Budget("full", epochs=40, epoch_samples=0, patience=8, batch_size=128, workers=6),
    # scripts/gpu_experiment.sh: 2 models × 3 conditions × 2 seeds inside about 3 minutes of one H100.
    "gpu-small": Budget(
        "gpu-small",
        epochs=12,
        epoch_samples=0,
        patience=0,
        batch_size=256,
        lr=2e-3,
        max_minutes=0.25,
        widths={"resemotenet": 0.5},
        workers=6,
    ),
}


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
    real = data.subset(~data.synthetic)
    hashes = real.pixel_hashes()
    train_hashes = set(hashes[real.splits != "test"].tolist())
    test_mask = real.splits == "test"
    dup = np.isin(hashes, list(train_hashes)) & test_mask
    return real.subset(test_mask & ~dup), int(dup.sum())


def oversample(train: FaceDataset, targets: dict[str, int], seed: int) -> FaceDataset:
    """Random duplicates of real images up to the same per-class targets the GAN fills."""
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


def run_compare(
    data: FaceDataset, generator_run: str | Path, report_dir: str | Path, spec: CompareSpec, progress: bool = True
) -> dict[str, Any]:
    from augment.core.runtime import pick_device
    from augment.rebalance import QualityFilter, synthesize
    from augment.report import write_report
    from classifier.models import MODEL_NAMES
    from gan.evaluate import get_judge

    report_dir = Path(report_dir)
    for m in spec.models:
        if m not in MODEL_NAMES:
            raise UserError(f"--models {m}: use some of {', '.join(MODEL_NAMES)}")
    for c in spec.conditions:
        if c not in CONDITIONS:
            raise UserError(f"--conditions {c}: use some of {', '.join(CONDITIONS)}")
    if spec.budget not in BUDGETS:
        raise UserError(f"--budget {spec.budget}: use {' or '.join(BUDGETS)}")
    if spec.seeds < 1:
        raise UserError("--seeds must be at least 1")
    budget = BUDGETS[spec.budget]
    device = pick_device(spec.device)
    report_dir.mkdir(parents=True, exist_ok=True)
    _check_report_dir(report_dir, data, generator_run, spec)

    # ---- data: real val carved from train before anything synthetic exists; test cleaned once
    real = data.subset(~data.synthetic)
    test, n_dup = clean_test(real)
    trainval = ensure_val_split(real.subset(real.splits != "test"), 0.1, seed=0)
    train, val = trainval.split("train"), trainval.split("val")
    plan_full = plan_rebalance(train.counts(), spec.target, spec.classes, 1.0)
    wanted = {p.name: p.add for p in plan_full}

    # ---- the synthetic pool (filtered once, reused by every GAN condition and seed)
    pool_path = report_dir / "synthetic.npz"
    needs_gan = any(c in GAN_FRACTIONS for c in spec.conditions)
    synth_report: dict[str, Any] = {}
    if needs_gan and pool_path.exists() and (report_dir / "synthetic.json").exists():
        pool = FaceDataset.load(pool_path)
        synth_report = json.loads((report_dir / "synthetic.json").read_text())
    elif needs_gan:
        judge = get_judge(trainval, Path(generator_run), spec.judge, device, progress) if spec.min_prob > 0 else None
        quality = QualityFilter(min_prob=spec.min_prob, drop_near_copies=spec.drop_near_copies)
        pool, synth_report = synthesize(
            plan_full, generator_run, train, judge, quality, seed=0, device=device, progress=progress
        )
        pool.save(pool_path)
        write_json(report_dir / "synthetic.json", synth_report)
    else:
        pool = None

    def condition_data(cond: str, seed: int) -> tuple[FaceDataset, bool]:
        weighted = cond in ("weighted", "gan+weighted")
        if cond in GAN_FRACTIONS:
            frac = GAN_FRACTIONS[cond]
            amount = {c: share(frac, n) for c, n in wanted.items()}
            part = concat([train, take_synthetic(pool, amount)], name=data.name)  # type: ignore[arg-type]
        elif cond == "oversample":
            part = oversample(train, wanted, seed=_seed_of("oversample", seed))
        else:
            part = train
        return concat([part, val], name=data.name), weighted

    runs = [(m, c, s) for m in spec.models for c in spec.conditions for s in range(spec.seeds)]
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    todo = []
    for key in runs:
        result_file = report_dir / "runs" / key[0] / key[1] / f"seed{key[2]}" / "result.json"
        if result_file.exists():  # finished runs are kept, never trained again
            done[key] = json.loads(result_file.read_text())
        else:
            todo.append(key)
    if spec.gpus and spec.nproc > 1:
        raise UserError("use either --gpus (independent runs side by side) or --nproc (each run on N processes)")

    def one(key: tuple[str, str, int], slot: int | None) -> dict[str, Any]:
        model, cond, seed = key
        run_dir = report_dir / "runs" / model / cond / f"seed{seed}"
        part, weighted = condition_data(cond, seed)
        cfg = _train_config(model, budget, seed, weighted, device)
        eval_device = device
        if slot is not None or spec.nproc > 1:
            _train_subprocess(part, run_dir, cfg, spec, slot)
            eval_device = f"cuda:{slot}" if slot is not None else device
        else:
            from classifier.train import train_classifier

            train_classifier(part, run_dir, cfg, progress=progress)
        result = _evaluate(run_dir, test, model, cond, seed, eval_device, part)
        write_json(run_dir / "result.json", result)
        return result

    if progress and done:
        console.print(f"{len(done)} of {len(runs)} runs already finished; keeping them")
    if spec.gpus:
        import queue
        from concurrent.futures import ThreadPoolExecutor

        free: queue.Queue[int] = queue.Queue()
        for gpu in spec.gpus:
            free.put(gpu)

        def on_gpu(key: tuple[str, str, int]) -> tuple[tuple[str, str, int], dict[str, Any]]:
            gpu = free.get()
            try:
                if progress:
                    console.print(f"GPU {gpu}: {key[0]} · {key[1]} · seed {key[2]}")
                return key, one(key, gpu)
            finally:
                free.put(gpu)

        with ThreadPoolExecutor(len(spec.gpus)) as pool_exec:
            for key, result in pool_exec.map(on_gpu, todo):
                done[key] = result
    else:
        for key in todo:
            if progress:
                console.print(f"[bold]run {len(done) + 1}/{len(runs)}[/bold]: {key[0]} · {key[1]} · seed {key[2]}")
            done[key] = one(key, None)
    results = [done[k] for k in runs]

    summary = {
        "data": data.name,
        "generator_run": str(generator_run),
        "spec": spec.__dict__,
        "budget": budget.__dict__,
        "test_images": len(test),
        "test_duplicates_removed": n_dup,
        "train_counts": train.counts(),
        "val_counts": val.counts(),
        "test_counts": test.counts(),
        "synthetic_plan": wanted,
        "synthesis": synth_report,
        "runs": results,
    }
    write_json(report_dir / "results.json", summary)
    write_report(report_dir, summary, pool)
    return summary


def _check_report_dir(report_dir: Path, data: FaceDataset, generator_run: str | Path, spec: CompareSpec) -> None:
    """A report folder belongs to one data/generator/budget; runs of other settings would mix."""
    ident = {
        "data": data.name,
        "generator_run": str(Path(generator_run).resolve()),
        "budget": spec.budget,
        "target": spec.target,
        "classes": spec.classes,
        "min_prob": spec.min_prob,
        "drop_near_copies": spec.drop_near_copies,
    }
    path = report_dir / "compare.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != ident:
            diff = ", ".join(k for k in ident if old.get(k) != ident[k])
            raise UserError(f"{report_dir} holds a comparison with other settings ({diff}); use a new --out")
    elif any(p for p in report_dir.iterdir() if not p.name.startswith(".")):
        raise UserError(f"{report_dir} is not empty and holds no comparison; choose a new --out folder")
    write_json(path, ident)


def _train_config(model: str, budget: Budget, seed: int, weighted: bool, device: str):
    from classifier.config import TrainConfig

    return TrainConfig(
        model=model,
        epochs=budget.epochs,
        epoch_samples=budget.epoch_samples_for(model),
        patience=budget.patience,
        width=budget.widths.get(model, 1.0),
        size=budget.sizes.get(model, 0),
        batch_size=budget.batch_size,
        lr=budget.lr,
        class_weighted=weighted,
        seed=seed,
        device=device,
        val_fraction=0.0,
        max_minutes=budget.max_minutes,
        workers=budget.workers if device.startswith("cuda") else 0,
    )


def _evaluate(
    run_dir: Path, test: FaceDataset, model: str, cond: str, seed: int, device: str, train_part: FaceDataset
) -> dict[str, Any]:
    from classifier.evaluate import evaluate_run

    m = evaluate_run(run_dir, test, split="test", device=device)
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


def _train_subprocess(part: FaceDataset, run_dir: Path, cfg: Any, spec: CompareSpec, gpu: int | None) -> None:
    """Hand one run to its own process: one GPU of --gpus, or torchrun over --nproc processes."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cache = run_dir.parent / f".{run_dir.name}.data.npz"
    part.save(cache)
    env = dict(os.environ)
    args = [
        "augment",
        "train",
        str(cache),
        "--out",
        str(run_dir),
        "--model",
        cfg.model,
        "--epochs",
        str(cfg.epochs),
        "--epoch-samples",
        str(cfg.epoch_samples),
        "--patience",
        str(cfg.patience),
        "--width",
        str(cfg.width),
        "--size",
        str(cfg.size),
        "--batch-size",
        str(cfg.batch_size),
        "--lr",
        str(cfg.lr),
        "--seed",
        str(cfg.seed),
        "--val-fraction",
        "0",
        "--max-minutes",
        str(cfg.max_minutes),
        "--workers",
        str(cfg.workers),
    ]
    if cfg.class_weighted:
        args.append("--class-weighted")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = child_visible_gpu(gpu, os.environ.get("CUDA_VISIBLE_DEVICES"))
        args += ["--device", "cuda"]
    else:
        # "cuda", not this process's "cuda:0": under torchrun each rank takes its LOCAL_RANK's GPU
        args += ["--device", "cuda" if cfg.device.startswith("cuda") else cfg.device]
    if spec.nproc > 1:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={spec.nproc}",
            "-m",
        ] + args
    else:
        cmd = [sys.executable, "-m"] + args
    proc = subprocess.run(cmd, env=env)
    cache.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise UserError(f"training run {run_dir} failed (exit {proc.returncode}); rerun compare to resume")
