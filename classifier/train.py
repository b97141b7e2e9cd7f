"""The classifier training loop: validation-only model selection, resume, DDP; then, with
``refit_head_epochs``, a second stage that re-fits the final layer on real faces (classifier/refit.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.markup import escape
from rich.progress import TextColumn
from torch.utils.data import DataLoader

from augment.core.atomic import append_jsonl, read_jsonl, remove_stale_temps, save_torch, write_json, write_text
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console, make_progress
from augment.core.resize import resize_dataset
from augment.core.rundir import (
    CHECKPOINT,
    RunFolder,
    RunInterrupted,
    load_checkpoint,
    open_run,
    record_run,
    save_checkpoint,
)
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
from augment.core.splits import carve_train_val
from classifier.config import TrainConfig
from classifier.data import AugmentedBatches, PlannedBatchSampler, train_transform
from classifier.inference import BEST, load_classifier, predict_proba
from classifier.losses import make_loss, sample_weights
from classifier.metrics import classification_metrics
from classifier.models import build_model, classifier_head, default_image_size
from classifier.plots import plot_curves
from classifier.refit import FrozenBody, real_part, refit_config

PER_BATCH_SCHEDULES = ("cosine", "onecycle")


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


def refuse_synthetic_eval(data: FaceDataset) -> None:
    """Validation and test must be real faces: one line naming the split, the count and a file."""
    for split in ("val", "test"):
        bad = np.flatnonzero((data.splits == split) & data.synthetic)
        if len(bad):
            raise UserError(
                f"{data.name}: {len(bad)} synthetic image(s) in the {split} split (e.g. {data.sources[bad[0]]}); "
                f"validation and test must be real faces: move synthetic files to train/ or leave them out"
            )


def prepare_splits(data: FaceDataset, cfg: TrainConfig) -> tuple[FaceDataset, FaceDataset]:
    """Train and validation sets; the test split is dropped here and never seen."""
    refuse_synthetic_eval(data)
    if cfg.classes:
        data = data.with_classes(cfg.classes)
    data = carve_train_val(data, cfg.val_fraction, keep_synthetic=True)
    val = data.split("val")
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
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, total_steps: int):
    """The learning-rate schedule; cosine and onecycle (peak ``--lr``) step per batch over ``total_steps``."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps)
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=2)
    return None  # "none"


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
    folder: RunFolder  # the run folder, checked; ``record_run`` writes its config.json
    kwargs: dict[str, Any]  # build_model's arguments; model.pt holds them
    data_size: int  # faces were loaded at this size, then resized
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: Any
    criterion: torch.nn.Module
    steps_per_epoch: int
    verbose: bool  # console messages: rank 0, progress on
    stage: str = "main"  # or "refit": the head re-fitted on real faces, epochs numbered on from refit_from
    refit_from: int = 0  # main-stage epochs done before the refit
    net: torch.nn.Module | None = None  # the model, in DDP when distributed
    autocast: Any = None
    batches: AugmentedBatches | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The run's config.json; every checkpoint holds it."""
        return self.folder.config

    @property
    def classes(self) -> list[str]:
        return list(self.train.classes)

    @property
    def use_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def total_steps(self) -> int:
        """Batches in this stage: what a per-batch schedule runs over."""
        return max(1, (self.cfg.epochs - self.refit_from) * self.steps_per_epoch)


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
    saved: tuple[int, int] | None = None  # (epoch, batch) of the last checkpoint: where a rerun resumes

    @property
    def where(self) -> str:
        """Where a rerun resumes, in words."""
        if self.saved is None:
            return "before the first checkpoint"
        epoch, batch = self.saved
        return f"after epoch {epoch}" if batch == 0 else f"in epoch {epoch + 1} after batch {batch}"

    refit_checkpoint: dict[str, Any] | None = None  # the main stage is over: the refit resumes from this


@dataclass
class StepStats:
    loss: float  # mean loss of the batch
    correct: int
    n: int


def _check_world(cfg: TrainConfig, dist_info: Dist) -> None:
    if cfg.batch_size % dist_info.world:
        raise UserError(f"--batch-size {cfg.batch_size} must divide evenly over {dist_info.world} processes")


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
    """Check the options, split the data, check the run folder (writing nothing), build model and optimiser."""
    cfg.validate()
    device = pick_device(cfg.device)
    dist_info = init_distributed(device)
    _check_world(cfg, dist_info)
    train, val = prepare_splits(data, cfg)
    classes = list(train.classes)
    val = val.remap_to(classes) if val.classes != classes else val
    run_config = _run_config(data, cfg, train, val)
    folder = open_run(run_dir, run_config, "classifier", TrainConfig.RESUMABLE, defaults=TrainConfig().to_dict())
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
    sched = _scheduler(cfg, opt, max(1, cfg.epochs * steps_per_epoch))
    return TrainSetup(
        cfg=cfg,
        run_dir=run_dir,
        device=device,
        dist=dist_info,
        train=train,
        val=val,
        folder=folder,
        kwargs=kwargs,
        data_size=data.size,
        model=model,
        opt=opt,
        sched=sched,
        criterion=criterion,
        steps_per_epoch=steps_per_epoch,
        verbose=verbose,
    )


def _restore_schedule(s: TrainSetup, ckpt: dict[str, Any]) -> None:
    if s.sched is None or ckpt.get("sched") is None:
        return
    s.sched.load_state_dict(ckpt["sched"])
    if s.cfg.schedule == "cosine":
        _stretch_cosine(s.sched, s.total_steps)
    elif s.cfg.schedule == "onecycle" and s.sched.total_steps != s.total_steps:
        raise UserError(
            f"{s.run_dir}: a one-cycle schedule is fixed by its length ({s.sched.total_steps} batches); "
            "rerun with its old --epochs and --epoch-samples, or use a new --out folder"
        )


def resume(s: TrainSetup, ckpt: dict[str, Any] | None = None) -> RunState:
    """The run state from the checkpoint (a fresh one without); history lines past it are dropped.
    A refit checkpoint met by the main stage ends the main stage: the refit resumes from it."""
    state = RunState(epoch=s.refit_from)
    ckpt_path = s.run_dir / CHECKPOINT
    if ckpt is None and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
    if ckpt is not None and ckpt.get("stage", "main") != s.stage:
        state.epoch, state.stopped, state.refit_checkpoint = int(ckpt["refit_from"]), True, ckpt
        return state
    if ckpt is not None:
        s.model.load_state_dict(ckpt["model"])
        s.opt.load_state_dict(ckpt["opt"])
        _restore_schedule(s, ckpt)
        state.epoch, state.start_batch = int(ckpt["epoch"]), int(ckpt["batch"])
        state.best, state.bad_epochs = float(ckpt["best"]), int(ckpt["bad_epochs"])
        state.stopped = bool(ckpt.get("stopped"))
        state.saved = (state.epoch, state.start_batch)
        if ckpt.get("epoch_stats") is not None and state.start_batch > 0:
            loss_sum0, correct0, seen0 = ckpt["epoch_stats"]
            state.loss_sum, state.correct, state.seen = float(loss_sum0), int(correct0), int(seen0)
        repair_best(s, state)
    state.done_batches = state.start_batch
    return state


def _best_model_meta(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """model.pt's metadata when a model loads from it, else (None, why not)."""
    try:
        return load_classifier(path.parent)[1], None
    except (UserError, RuntimeError, KeyError) as e:
        return None, str(e).splitlines()[0]


def repair_best(s: TrainSetup, state: RunState) -> None:
    """A resumed run whose model.pt does not load (truncated, deleted): rebuild it from the checkpoint
    when the checkpoint holds the best epoch's weights, else select the best again from the next epoch
    on; a run with no epoch left to train is refused, with what to do."""
    path = s.run_dir / BEST
    if state.best == -math.inf:  # no epoch validated yet: no model.pt to expect
        return
    problem = _best_model_meta(path)[1]
    if problem is None:
        return
    last = [r for r in read_jsonl(s.run_dir / "history.jsonl") if r.get("epoch") == state.epoch]
    if state.start_batch == 0 and last and last[-1].get("improved"):
        r = last[-1]
        save_best(s, state.epoch, {"accuracy": r["val_acc"], "macro_f1": r["val_macro_f1"], "loss": r["val_loss"]})
        _warn(s, f"{problem}; rebuilt {path} from the checkpoint (epoch {state.epoch}, the best)")
        return
    if state.stopped or state.epoch >= s.cfg.epochs:
        raise UserError(
            f"{problem}; the checkpoint is not the best epoch's, so it cannot be rebuilt: rerun with --epochs "
            f"above {state.epoch} to select a new best model, or train into a new --out"
        )
    _warn(s, f"{problem}; the best model is selected again from epoch {state.epoch + 1} on")
    if s.dist.main:
        path.unlink(missing_ok=True)
    state.best, state.bad_epochs = -math.inf, 0


def _warn(s: TrainSetup, message: str) -> None:
    if s.dist.main:
        console.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def begin(s: TrainSetup, state: RunState) -> None:
    """Rank 0, once the run is set up: remove temp files a kill left; if there is an epoch to train,
    record the run (config.json, run.json) and drop history lines the checkpoint does not cover."""
    barrier(s.dist)  # every rank has read the run folder before rank 0 writes to it
    if s.dist.main:
        remove_stale_temps(s.run_dir)
        if state.epoch < s.cfg.epochs and not state.stopped:
            record_run(s.folder)
            _truncate_history(s.run_dir / "history.jsonl", state.epoch)
            if s.verbose and s.folder.resuming:
                console.print(
                    f"resuming {s.run_dir} at epoch {state.epoch + 1}, batch {state.start_batch}", soft_wrap=True
                )
    barrier(s.dist)


def prepare_training(s: TrainSetup) -> None:
    """After the resume: DDP around the model, autocast, the augmented batch source."""
    s.net = FrozenBody(s.model) if s.stage == "refit" else s.model
    if s.dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        s.net = DDP(s.net, device_ids=[torch.device(s.device).index] if s.use_cuda else None)
    s.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=s.use_cuda and s.cfg.amp)
    transform = train_transform(s.cfg.flip, s.cfg.affine, s.cfg.erasing)
    s.batches = AugmentedBatches(s.train.images, s.train.labels, transform, s.train.synthetic)


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
    weight: torch.Tensor | None = None,
) -> StepStats:
    """One optimiser step on one batch already on the device; ``sched`` (cosine, onecycle) steps per batch;
    ``weight``: each sample's loss weight (None: all 1)."""
    with autocast if autocast is not None else contextlib.nullcontext():
        logits = net(x)
    loss = criterion(logits.float(), y) if weight is None else criterion(logits.float(), y, weight)
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
    batch = state.done_batches
    state.saved = (state.epoch, batch)
    if s.dist.main:
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
                "stage": s.stage,
                "refit_from": s.refit_from,
            },
        )


def run_batches(s: TrainSetup, state: RunState, prog: Any, deadline: float) -> None:
    """Train on the rest of the epoch's batches, checkpointing every ``checkpoint_every``; stop early
    (``state.out_of_time``) when the time budget runs out."""
    s.net.train()
    batch_sched = s.sched if s.cfg.schedule in PER_BATCH_SCHEDULES else None
    for b, (x, y, synthetic) in enumerate(epoch_batches(s, state), start=state.start_batch):
        x, y = _to_device(s, x, y)
        weight = sample_weights(synthetic, s.cfg.synthetic_weight)
        weight = weight.to(s.device) if weight is not None else None
        _count(s, state, b, train_step(s.net, s.criterion, s.opt, x, y, batch_sched, s.autocast, weight))
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
                "stage": s.stage,
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
        "stage": s.stage,
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
                label = f"{'refit ' if s.stage == 'refit' else ''}epoch {state.epoch + 1}/{cfg.epochs}"
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
    except KeyboardInterrupt as e:
        if not state.finishing:  # mid-epoch; otherwise the last checkpoint replays this epoch exactly
            save_state(s, state)
        raise RunInterrupted(f"interrupted {state.where}; rerun the same command to resume") from e


def best_record(s: TrainSetup) -> dict[str, Any]:
    """The history record of the epoch model.pt holds, checked by loading model.pt into a model: the
    summary reports the model that is on disk, not the one that should be."""
    meta, problem = _best_model_meta(s.run_dir / BEST)
    if meta is None:
        raise UserError(f"{problem}; rerun the same command to repair it", exit_code=1)
    epoch = int(meta["epoch"])
    found = [r for r in read_jsonl(s.run_dir / "history.jsonl") if r.get("epoch") == epoch]
    if found:
        return found[-1]
    val = meta["val"]
    return {"epoch": epoch, "val_loss": val["loss"], "val_acc": val["accuracy"], "val_macro_f1": val["macro_f1"]}


def _refit_setup(s: TrainSetup, refit_from: int) -> TrainSetup:
    """The refit stage: real training faces in class-balanced batches, plain cross-entropy, an optimiser
    and a cosine schedule of the head's own; the same model, run folder and config.json."""
    cfg = refit_config(s.cfg, refit_from)
    train = real_part(s.train)
    steps = PlannedBatchSampler(train.labels, cfg.batch_size, cfg.seed, 0, True, cfg.epoch_samples).num_batches()
    if steps == 0:
        raise UserError(
            f"--refit-head: fewer real training faces than one batch ({cfg.batch_size}); lower --batch-size"
        )
    criterion = make_loss(train.labels, len(s.classes), False, 0.0, cfg.label_smoothing).to(s.device)
    opt = _optimizer(cfg, classifier_head(s.model).parameters())
    refit = dataclasses.replace(s, cfg=cfg, train=train, opt=opt, criterion=criterion, steps_per_epoch=steps)
    refit.stage, refit.refit_from, refit.net, refit.batches = "refit", refit_from, None, None
    refit.sched = _scheduler(cfg, opt, refit.total_steps)
    return refit


def refit_due(s: TrainSetup, state: RunState, deadline: float) -> bool:
    """The refit runs once the main stage is over (its last epoch or an early stop) with time left, or
    resumes when it had begun."""
    if state.refit_checkpoint is not None:
        return True
    if s.cfg.refit_head_epochs == 0 or state.out_of_time or not (state.stopped or state.epoch >= s.cfg.epochs):
        return False
    return not any_rank(s.dist, time.time() > deadline)


def start_refit(s: TrainSetup, main: RunState) -> tuple[TrainSetup, RunState]:
    """The refit stage, resumed from its checkpoint, or begun from model.pt (the main stage's best epoch on
    validation) and checkpointed at once, so that a kill from then on resumes in the refit."""
    ckpt = main.refit_checkpoint
    r = _refit_setup(s, main.epoch if ckpt is None else int(ckpt["refit_from"]))
    if ckpt is not None:
        state = resume(r, ckpt)
    else:
        barrier(s.dist)  # rank 0 wrote model.pt
        s.model.load_state_dict(load_checkpoint(s.run_dir / BEST)["model"])
        state = RunState(epoch=r.refit_from)
        save_state(r, state)
        if r.verbose:
            console.print(
                f"re-fitting the head for {s.cfg.refit_head_epochs} epochs on {len(r.train):,} real faces "
                f"(class-balanced), the body of epoch {r.refit_from}'s best model frozen"
            )
    if r.dist.main:  # a refit this invocation trains is recorded, and history past its checkpoint dropped
        record_run(r.folder)
        _truncate_history(r.run_dir / "history.jsonl", state.epoch)
    barrier(r.dist)
    state.images_seen = main.images_seen
    prepare_training(r)
    return r, state


def _best_record(s: TrainSetup, history: list[dict[str, Any]], stage: str) -> dict[str, Any] | None:
    key = "val_macro_f1" if s.cfg.select_metric == "macro_f1" else "val_acc"
    return max((r for r in history if r.get("stage", "main") == stage), key=lambda r: r[key], default=None)


def finish(s: TrainSetup, state: RunState, t0: float) -> dict[str, Any]:
    """summary.json (rank 0) after every rank is done; the best epoch is the one model.pt holds (the last
    stage's)."""
    barrier(s.dist)
    best_rec = best_record(s)
    history = read_jsonl(s.run_dir / "history.jsonl")
    invocation = time.time() - t0
    summary = {
        "run_dir": str(s.run_dir),
        "epochs_done": state.epoch,
        "best_epoch": best_rec["epoch"],
        "best_val": best_rec,
        "seconds": sum(r.get("seconds", 0.0) for r in history),  # every epoch's, over every invocation
        "invocation_seconds": invocation,  # this one (a resumed run's last part)
        "images_per_s": state.images_seen / max(invocation, 1e-9),  # this invocation's
        "early_stopped": state.stopped,
        "rank": s.dist.rank,
        "world": s.dist.world,
        "parameter_digest": parameter_digest(s.model),
        "stage": s.stage,
    }
    if s.stage == "refit":
        summary["refit"] = {
            "epochs": state.epoch - s.refit_from,
            "from_epoch": s.refit_from,
            "real_images": len(s.train),
            "main_best_val": _best_record(s, history, "main"),
        }
    if s.dist.main:
        write_json(s.run_dir / "summary.json", summary)
    return summary


def train_classifier(data: FaceDataset, run_dir: str | Path, cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a classifier into ``run_dir``; model.pt is the best on validation."""
    cfg.validate()
    s = setup(data, Path(run_dir), cfg, progress)
    state = resume(s)
    begin(s, state)
    prepare_training(s)
    t0 = time.time()
    deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes > 0 else math.inf
    prog = make_progress(TextColumn("{task.fields[info]}")) if s.verbose else None
    if prog:
        prog.start()
    try:
        train_loop(s, state, prog, deadline)
        if refit_due(s, state, deadline):
            s, state = start_refit(s, state)
            train_loop(s, state, prog, deadline)
    finally:
        if prog:
            prog.stop()
    return finish(s, state, t0)
