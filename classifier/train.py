"""The classifier training loop: validation-only model selection, resume, DDP."""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import TextColumn
from torch.utils.data import DataLoader

from augment.core.atomic import append_jsonl, read_jsonl, save_torch, write_json, write_text
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console, make_progress
from augment.core.resize import resize_dataset
from augment.core.rundir import CHECKPOINT, load_checkpoint, save_checkpoint, start_or_resume
from augment.core.runtime import (
    Dist,
    any_rank,
    barrier,
    data_fingerprint,
    from_rank0,
    init_distributed,
    parameter_digest,
    pick_device,
    seed_everything,
    sync_buffers,
)
from augment.core.splits import ensure_val_split
from classifier.config import TrainConfig
from classifier.data import AugmentedBatches, PlannedBatchSampler, train_transform
from classifier.inference import BEST, predict_proba
from classifier.losses import make_loss
from classifier.metrics import classification_metrics
from classifier.models import build_model, default_image_size
from classifier.plots import plot_curves


def model_kwargs(cfg: TrainConfig, num_classes: int, channels: int, size: int) -> dict[str, Any]:
    return {
        "name": cfg.model,
        "num_classes": num_classes,
        "in_channels": channels,
        "image_size": size,
        "width": cfg.width,
        "small_stem": cfg.small_stem,
        "gray_stem": cfg.gray_stem,
    }


def prepare_splits(data: FaceDataset, cfg: TrainConfig) -> tuple[FaceDataset, FaceDataset]:
    """Train and validation sets; the test split is dropped here and never seen."""
    data = data.subset(data.splits != "test")
    if cfg.classes:
        data = data.with_classes(cfg.classes)
    data = ensure_val_split(data, cfg.val_fraction, seed=0)
    val = data.split("val")
    if val.synthetic.any():
        raise UserError(f"{data.name}: the validation split holds synthetic images; validation must be real")
    size = cfg.size or default_image_size(cfg.model)
    train = resize_dataset(data.split("train"), size, data.channels)
    val = resize_dataset(val, size, data.channels)
    if len(train) == 0:
        raise UserError(f"{data.name}: no training images")
    if len(val) == 0:
        raise UserError(f"{data.name}: no validation images; use a larger dataset or --val-fraction")
    return train, val


def _optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise UserError(f"--optimizer {cfg.optimizer}: use adamw or sgd")


def _scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, steps_per_epoch: int):
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch))
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=2)
    if cfg.schedule == "none":
        return None
    raise UserError(f"--schedule {cfg.schedule}: use cosine, plateau or none")


def _stretch_cosine(sched, t_max: int) -> None:
    """Resume a cosine schedule towards a new end when --epochs changed, instead of letting it
    climb back up (the cosine is periodic past its old T_max)."""
    if sched.T_max == t_max or sched.last_epoch >= t_max:
        return
    sched.T_max = t_max
    lrs = [
        sched.eta_min + (base - sched.eta_min) * (1 + math.cos(math.pi * sched.last_epoch / t_max)) / 2
        for base in sched.base_lrs
    ]
    for group, lr in zip(sched.optimizer.param_groups, lrs, strict=True):
        group["lr"] = lr
    sched._last_lr = lrs


def _truncate_history(path: Path, done_epochs: int) -> None:
    """Drop records the checkpoint does not cover (a kill between the history line and the
    checkpoint) and a torn last line, so a resumed run appends each epoch once."""
    if not path.exists():
        return
    keep = [r for r in read_jsonl(path) if int(r.get("epoch", 0)) <= done_epochs]
    text = "".join(json.dumps(r) + "\n" for r in keep)
    if text != path.read_text(encoding="utf-8"):
        write_text(path, text)


def evaluate_arrays(
    model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, classes: list[str], device: str
) -> dict[str, Any]:
    probs = predict_proba(model, images, device=device)
    metrics = classification_metrics(labels, probs.argmax(1), classes)
    eps = 1e-8
    metrics["loss"] = float(-np.log(probs[np.arange(len(labels)), labels] + eps).mean()) if len(labels) else 0.0
    return metrics


@dataclass
class TrainSetup:
    """What a run trains with, fixed once set up: data, model, optimiser, schedule, where it writes."""

    cfg: TrainConfig
    run_dir: Path
    device: str
    dist: Dist
    train: FaceDataset
    val: FaceDataset
    config: dict[str, Any]  # the run's config.json; every checkpoint holds it
    kwargs: dict[str, Any]  # build_model's arguments; model.pt holds them
    data_size: int  # faces were loaded at this size, then resized
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    criterion: torch.nn.Module
    steps_per_epoch: int
    verbose: bool  # console messages: rank 0, progress on
    net: torch.nn.Module | None = None  # the model, in DDP when distributed
    autocast: Any = None
    batches: AugmentedBatches | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.train.classes)

    @property
    def use_cuda(self) -> bool:
        return self.device.startswith("cuda")


@dataclass
class RunState:
    """Where the run stands: what a checkpoint restores, and this invocation's counters."""

    epoch: int = 0  # epochs done
    start_batch: int = 0  # the current epoch starts here (a mid-epoch resume)
    done_batches: int = 0  # batches of the current epoch done
    best: float = -math.inf  # best validation score so far
    bad_epochs: int = 0  # epochs since it last improved
    stopped: bool = False  # early-stopped
    loss_sum: float = 0.0  # the current epoch's training loss, correct predictions and images
    correct: int = 0
    seen: int = 0
    images_seen: int = 0  # this invocation, all ranks
    finishing: bool = False  # between the last batch of an epoch and its checkpoint
    out_of_time: bool = False
    epoch_started: float = 0.0
    task: Any = None  # the epoch's progress bar


@dataclass
class StepStats:
    loss: float  # mean loss of the batch
    correct: int
    n: int


def _check_options(cfg: TrainConfig, dist_info: Dist) -> None:
    if cfg.batch_size % dist_info.world:
        raise UserError(f"--batch-size {cfg.batch_size} must divide evenly over {dist_info.world} processes")
    if cfg.select_metric not in ("macro_f1", "accuracy"):
        raise UserError(f"--select-metric {cfg.select_metric}: use macro_f1 or accuracy")


def _run_config(data: FaceDataset, cfg: TrainConfig, train: FaceDataset, val: FaceDataset) -> dict[str, Any]:
    return {
        **cfg.to_dict(),
        "size": train.size,
        "classes": list(train.classes),
        "data": data.name,
        "data_fingerprint": data_fingerprint(train.images, train.labels),
        "train_counts": train.counts(),
        "val_counts": val.counts(),
        "synthetic_train_images": int(train.synthetic.sum()),
    }


def _build_model(cfg: TrainConfig, kwargs: dict[str, Any], device: str, verbose: bool) -> torch.nn.Module:
    model = build_model(**kwargs, pretrained=Path(cfg.pretrained) if cfg.pretrained else None)
    report = getattr(model, "pretrained_report", None)
    if verbose:
        if report is not None:
            console.print(f"loaded ImageNet weights from {cfg.pretrained}: {len(report.loaded)} tensors")
        elif cfg.model == "resnet18":
            console.print("resnet18: no --pretrained weights file given; training from scratch")
    model.to(device)
    if device.startswith("cuda"):
        model.to(memory_format=torch.channels_last)
    return model


def setup(data: FaceDataset, run_dir: Path, cfg: TrainConfig, progress: bool) -> TrainSetup:
    """Check the options, split the data, start (or check) the run folder, build model and optimiser."""
    device = pick_device(cfg.device)
    dist_info = init_distributed(device)
    _check_options(cfg, dist_info)
    train, val = prepare_splits(data, cfg)
    classes = list(train.classes)
    val = val.remap_to(classes) if val.classes != classes else val
    config = _run_config(data, cfg, train, val)
    if dist_info.main:
        start_or_resume(run_dir, config, list(TrainConfig.IDENTITY), kind="classifier")
    barrier(dist_info)

    seed_everything(cfg.seed)
    kwargs = model_kwargs(cfg, len(classes), train.channels, train.size)
    verbose = dist_info.main and progress
    model = _build_model(cfg, kwargs, device, verbose)
    criterion = make_loss(train.labels, len(classes), cfg.class_weighted, cfg.focal_gamma, cfg.label_smoothing).to(
        device
    )
    opt = _optimizer(cfg, model.parameters())
    steps_per_epoch = PlannedBatchSampler(
        train.labels, cfg.batch_size, cfg.seed, 0, cfg.balanced_sampler, cfg.epoch_samples
    ).num_batches()
    if steps_per_epoch == 0:
        raise UserError(f"{data.name}: fewer training images than one batch ({cfg.batch_size}); lower --batch-size")
    sched = _scheduler(cfg, opt, steps_per_epoch)
    return TrainSetup(
        cfg=cfg,
        run_dir=run_dir,
        device=device,
        dist=dist_info,
        train=train,
        val=val,
        config=config,
        kwargs=kwargs,
        data_size=data.size,
        model=model,
        opt=opt,
        sched=sched,
        criterion=criterion,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )


def resume(s: TrainSetup) -> RunState:
    """The run state from the checkpoint (a fresh one without); history lines past it are dropped."""
    state = RunState()
    ckpt_path = s.run_dir / CHECKPOINT
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        s.model.load_state_dict(ckpt["model"])
        s.opt.load_state_dict(ckpt["opt"])
        if s.sched is not None and ckpt.get("sched") is not None:
            s.sched.load_state_dict(ckpt["sched"])
            if s.cfg.schedule == "cosine":
                _stretch_cosine(s.sched, max(1, s.cfg.epochs * s.steps_per_epoch))
        state.epoch, state.start_batch = int(ckpt["epoch"]), int(ckpt["batch"])
        state.best, state.bad_epochs = float(ckpt["best"]), int(ckpt["bad_epochs"])
        state.stopped = bool(ckpt.get("stopped"))
        if ckpt.get("epoch_stats") is not None and state.start_batch > 0:
            loss_sum0, correct0, seen0 = ckpt["epoch_stats"]
            state.loss_sum, state.correct, state.seen = float(loss_sum0), int(correct0), int(seen0)
        if s.verbose:
            console.print(f"resuming {s.run_dir} at epoch {state.epoch + 1}, batch {state.start_batch}")
    if s.dist.main:
        _truncate_history(s.run_dir / "history.jsonl", state.epoch)
    state.done_batches = state.start_batch
    return state


def prepare_training(s: TrainSetup) -> None:
    """After the resume: DDP around the model, autocast, the augmented batch source."""
    s.net = s.model
    if s.dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        s.net = DDP(s.model, device_ids=[torch.device(s.device).index] if s.use_cuda else None)
    s.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=s.use_cuda and s.cfg.amp)
    transform = train_transform(s.cfg.flip, s.cfg.affine, s.cfg.erasing)
    s.batches = AugmentedBatches(s.train.images, s.train.labels, transform)


def epoch_batches(s: TrainSetup, state: RunState) -> DataLoader:
    """This rank's share of the epoch's planned batches, from ``state.start_batch`` on."""
    cfg = s.cfg
    sampler = PlannedBatchSampler(
        s.train.labels,
        cfg.batch_size,
        cfg.seed,
        state.epoch,
        cfg.balanced_sampler,
        cfg.epoch_samples,
        s.dist.rank,
        s.dist.world,
        state.start_batch,
    )
    return DataLoader(s.batches, sampler=sampler, batch_size=None, num_workers=cfg.workers, pin_memory=s.use_cuda)


def train_step(
    net: torch.nn.Module,
    criterion: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    sched: Any = None,
    autocast: Any = None,
) -> StepStats:
    """One optimiser step on one batch already on the device; ``sched`` (cosine) steps per batch."""
    with autocast if autocast is not None else contextlib.nullcontext():
        logits = net(x)
    loss = criterion(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()
    return StepStats(float(loss.detach()), int((logits.argmax(1) == y).sum()), len(y))


def _to_device(s: TrainSetup, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = x.to(s.device, non_blocking=True), y.to(s.device, non_blocking=True)
    if s.use_cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _count(s: TrainSetup, state: RunState, b: int, step: StepStats) -> None:
    state.done_batches = b + 1
    state.loss_sum += step.loss * step.n
    state.correct += step.correct
    state.seen += step.n
    state.images_seen += step.n * s.dist.world


def _show_batch(prog: Any, state: RunState, world: int) -> None:
    if prog:
        rate = state.seen * world / max(time.time() - state.epoch_started, 1e-9)
        prog.update(
            state.task,
            completed=state.done_batches,
            info=f"loss {state.loss_sum / state.seen:.3f}  acc {state.correct / state.seen:.3f}  {rate:,.0f} img/s",
        )


def save_state(s: TrainSetup, state: RunState, stopped: bool = False) -> None:
    """The checkpoint (rank 0): resumable at ``state.done_batches`` of epoch ``state.epoch``."""
    if s.dist.main:
        batch = state.done_batches
        save_checkpoint(
            s.run_dir,
            {
                "model": s.model.state_dict(),
                "opt": s.opt.state_dict(),
                "sched": s.sched.state_dict() if s.sched is not None else None,
                "epoch": state.epoch,
                "batch": batch,
                "best": state.best,
                "bad_epochs": state.bad_epochs,
                "stopped": stopped,
                "epoch_stats": [state.loss_sum, state.correct, state.seen] if batch > 0 else None,
                "config": s.config,
            },
        )


def run_batches(s: TrainSetup, state: RunState, prog: Any, deadline: float) -> None:
    """Train on the rest of the epoch's batches, checkpointing every ``checkpoint_every``; stop early
    (``state.out_of_time``) when the time budget runs out."""
    s.net.train()
    batch_sched = s.sched if s.cfg.schedule == "cosine" else None
    for b, (x, y) in enumerate(epoch_batches(s, state), start=state.start_batch):
        x, y = _to_device(s, x, y)
        _count(s, state, b, train_step(s.net, s.criterion, s.opt, x, y, batch_sched, s.autocast))
        _show_batch(prog, state, s.dist.world)
        if (b + 1) % s.cfg.checkpoint_every == 0:
            save_state(s, state)
        if any_rank(s.dist, time.time() > deadline):
            state.out_of_time = True
            break


def stop_mid_epoch(s: TrainSetup, state: RunState) -> bool:
    """Out of time before the epoch's end: True (checkpointed, resumable mid-epoch) when a validated
    model.pt exists; otherwise False, so the partial epoch is validated and the run leaves a model."""
    if not state.out_of_time or state.done_batches >= s.steps_per_epoch:
        return False
    if state.best > -math.inf:
        save_state(s, state)
        if s.verbose:
            console.print(f"time budget of {s.cfg.max_minutes} min reached in epoch {state.epoch + 1}")
        return True
    if s.verbose:
        console.print(
            f"time budget of {s.cfg.max_minutes} min reached in epoch {state.epoch + 1} before any validation; "
            f"keeping the model after {state.done_batches} of {s.steps_per_epoch} batches"
        )
    return False


def validate(s: TrainSetup) -> tuple[dict[str, Any], float]:
    """Validation metrics and the selection score, rank 0's on every rank."""
    sync_buffers(s.dist, s.model)  # every rank evaluates rank 0's BatchNorm statistics
    val_metrics = evaluate_arrays(s.model, s.val.images, s.val.labels, s.classes, s.device)
    return val_metrics, from_rank0(s.dist, val_metrics[s.cfg.select_metric])


def select(state: RunState, score: float, patience: int) -> bool:
    """Model selection and early stopping: True when ``score`` is strictly better than the best so far;
    the run stops after ``patience`` epochs without one (0: never)."""
    improved = score > state.best
    if improved:
        state.best, state.bad_epochs = score, 0
    else:
        state.bad_epochs += 1
    state.stopped = patience > 0 and state.bad_epochs >= patience
    return improved


def save_best(s: TrainSetup, epoch: int, val_metrics: dict[str, Any]) -> None:
    """model.pt (rank 0): the model of ``epoch``, the best on validation so far."""
    if s.dist.main:
        save_torch(
            s.run_dir / BEST,
            {
                "model": s.model.state_dict(),
                "model_kwargs": s.kwargs,
                "classes": s.classes,
                "size": s.train.size,
                "channels": s.train.channels,
                "data_size": s.data_size,
                "epoch": epoch,
                "val": {k: val_metrics[k] for k in ("accuracy", "macro_f1", "loss")},
                "select_metric": s.cfg.select_metric,
            },
        )


def _epoch_record(s: TrainSetup, state: RunState, val_metrics: dict[str, Any], improved: bool) -> dict[str, Any]:
    return {
        "epoch": state.epoch + 1,
        "train_loss": state.loss_sum / max(state.seen, 1),
        "train_acc": state.correct / max(state.seen, 1),
        "val_loss": val_metrics["loss"],
        "val_acc": val_metrics["accuracy"],
        "val_macro_f1": val_metrics["macro_f1"],
        "lr": s.opt.param_groups[0]["lr"],
        "improved": improved,
        "seconds": time.time() - state.epoch_started,
    }


def log_epoch(s: TrainSetup, state: RunState, record: dict[str, Any], prog: Any) -> None:
    """The epoch's history line and curves (rank 0), and its progress line."""
    if s.dist.main:
        append_jsonl(s.run_dir / "history.jsonl", record)
        plot_curves(read_jsonl(s.run_dir / "history.jsonl"), s.run_dir / "curves.png")
        if prog:
            prog.update(
                state.task,
                info=(
                    f"loss {record['train_loss']:.3f}  acc {record['train_acc']:.3f}  "
                    f"val acc {record['val_acc']:.3f}  val F1 {record['val_macro_f1']:.3f}"
                    + ("  ★" if record["improved"] else "")
                ),
            )


def end_epoch(s: TrainSetup, state: RunState, prog: Any) -> None:
    """Validate, select, step a plateau schedule, log the epoch, checkpoint at its end."""
    state.finishing = True
    state.start_batch = state.done_batches = 0
    val_metrics, score = validate(s)
    improved = select(state, score, s.cfg.patience)
    if improved:
        save_best(s, state.epoch + 1, val_metrics)
    if s.sched is not None and s.cfg.schedule == "plateau":
        s.sched.step(score)
    record = _epoch_record(s, state, val_metrics, improved)
    state.epoch += 1
    log_epoch(s, state, record, prog)
    save_state(s, state, state.stopped)
    state.finishing = False
    state.loss_sum, state.correct, state.seen = 0.0, 0, 0
    if state.stopped and s.verbose:
        console.print(f"early stop: no better validation {s.cfg.select_metric} for {s.cfg.patience} epochs")


def train_loop(s: TrainSetup, state: RunState, prog: Any, deadline: float) -> None:
    """Epochs until the last, an early stop or the time budget; Ctrl-C mid-epoch checkpoints first."""
    cfg = s.cfg
    try:
        while state.epoch < cfg.epochs and not state.stopped:
            if prog:
                label = f"epoch {state.epoch + 1}/{cfg.epochs}"
                state.task = prog.add_task(label, total=s.steps_per_epoch, completed=state.start_batch, info="")
            state.epoch_started = time.time()
            run_batches(s, state, prog, deadline)
            if stop_mid_epoch(s, state):
                break
            end_epoch(s, state, prog)
            if any_rank(s.dist, time.time() > deadline):
                if s.verbose:
                    console.print(f"time budget of {cfg.max_minutes} min reached after epoch {state.epoch}")
                break
    except KeyboardInterrupt:
        if not state.finishing:  # mid-epoch; otherwise the last checkpoint replays this epoch exactly
            save_state(s, state)
        raise


def finish(s: TrainSetup, state: RunState, t0: float) -> dict[str, Any]:
    """summary.json (rank 0) after every rank is done; the best epoch is read from the history."""
    barrier(s.dist)
    history = read_jsonl(s.run_dir / "history.jsonl")
    best_rec = max(
        history,
        key=lambda r: r["val_macro_f1" if s.cfg.select_metric == "macro_f1" else "val_acc"],
        default=None,
    )
    summary = {
        "run_dir": str(s.run_dir),
        "epochs_done": state.epoch,
        "best_epoch": best_rec["epoch"] if best_rec else None,
        "best_val": best_rec,
        "seconds": time.time() - t0,
        "images_per_s": state.images_seen / max(time.time() - t0, 1e-9),
        "early_stopped": state.stopped,
        "rank": s.dist.rank,
        "world": s.dist.world,
        "parameter_digest": parameter_digest(s.model),
    }
    if s.dist.main:
        write_json(s.run_dir / "summary.json", summary)
    return summary


def train_classifier(data: FaceDataset, run_dir: str | Path, cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a classifier into ``run_dir``; model.pt is the best on validation."""
    cfg.validate()
    s = setup(data, Path(run_dir), cfg, progress)
    state = resume(s)
    prepare_training(s)
    t0 = time.time()
    deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes > 0 else math.inf
    prog = make_progress(TextColumn("{task.fields[info]}")) if s.verbose else None
    if prog:
        prog.start()
    try:
        train_loop(s, state, prog, deadline)
    finally:
        if prog:
            prog.stop()
    return finish(s, state, t0)
