"""The classifier training loop: validation-only model selection, resume, DDP."""

from __future__ import annotations

import json
import math
import time
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


def train_classifier(data: FaceDataset, run_dir: str | Path, cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a classifier into ``run_dir``; model.pt is the best on validation."""
    run_dir = Path(run_dir)
    device = pick_device(cfg.device)
    dist_info = init_distributed(device)
    if cfg.batch_size % dist_info.world:
        raise UserError(f"--batch-size {cfg.batch_size} must divide evenly over {dist_info.world} processes")
    if cfg.select_metric not in ("macro_f1", "accuracy"):
        raise UserError(f"--select-metric {cfg.select_metric}: use macro_f1 or accuracy")
    train, val = prepare_splits(data, cfg)
    classes = list(train.classes)
    val = val.remap_to(classes) if val.classes != classes else val
    size, channels = train.size, train.channels
    config = {
        **cfg.to_dict(),
        "size": size,
        "classes": classes,
        "data": data.name,
        "data_fingerprint": data_fingerprint(train.images, train.labels),
        "train_counts": train.counts(),
        "val_counts": val.counts(),
        "synthetic_train_images": int(train.synthetic.sum()),
    }
    if dist_info.main:
        start_or_resume(run_dir, config, list(TrainConfig.IDENTITY), kind="classifier")
    barrier(dist_info)

    seed_everything(cfg.seed)
    kwargs = model_kwargs(cfg, len(classes), channels, size)
    model = build_model(**kwargs, pretrained=Path(cfg.pretrained) if cfg.pretrained else None)
    report = getattr(model, "pretrained_report", None)
    if dist_info.main and progress:
        if report is not None:
            console.print(f"loaded ImageNet weights from {cfg.pretrained}: {len(report.loaded)} tensors")
        elif cfg.model == "resnet18":
            console.print("resnet18: no --pretrained weights file given; training from scratch")
    use_cuda = device.startswith("cuda")
    model.to(device)
    if use_cuda:
        model.to(memory_format=torch.channels_last)
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

    epoch, start_batch, best, bad_epochs, stopped = 0, 0, -math.inf, 0, False
    resumed_stats = (0.0, 0, 0)  # loss_sum, correct, seen of a partly done epoch
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if sched is not None and state.get("sched") is not None:
            sched.load_state_dict(state["sched"])
            if cfg.schedule == "cosine":
                _stretch_cosine(sched, max(1, cfg.epochs * steps_per_epoch))
        epoch, start_batch = int(state["epoch"]), int(state["batch"])
        best, bad_epochs = float(state["best"]), int(state["bad_epochs"])
        stopped = bool(state.get("stopped"))
        if state.get("epoch_stats") is not None and start_batch > 0:
            loss_sum0, correct0, seen0 = state["epoch_stats"]
            resumed_stats = (float(loss_sum0), int(correct0), int(seen0))
        if dist_info.main and progress:
            console.print(f"resuming {run_dir} at epoch {epoch + 1}, batch {start_batch}")
    if dist_info.main:
        _truncate_history(run_dir / "history.jsonl", epoch)

    net = model
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[torch.device(device).index] if use_cuda else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_cuda and cfg.amp)
    batches = AugmentedBatches(train.images, train.labels, train_transform(cfg.flip, cfg.affine, cfg.erasing))

    def save_state(done_epoch: int, batch: int, stopped_flag: bool = False, stats=None) -> None:
        if dist_info.main:
            save_checkpoint(
                run_dir,
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "sched": sched.state_dict() if sched is not None else None,
                    "epoch": done_epoch,
                    "batch": batch,
                    "best": best,
                    "bad_epochs": bad_epochs,
                    "stopped": stopped_flag,
                    "epoch_stats": list(stats) if stats is not None and batch > 0 else None,
                    "config": config,
                },
            )

    t0 = time.time()
    deadline = t0 + cfg.max_minutes * 60 if cfg.max_minutes > 0 else math.inf
    prog = make_progress(TextColumn("{task.fields[info]}")) if (progress and dist_info.main) else None
    if prog:
        prog.start()
    images_seen = 0
    done_batches = start_batch
    loss_sum, correct, seen = resumed_stats
    finishing = False  # between the last batch of an epoch and its checkpoint
    out_of_time = False
    try:
        while epoch < cfg.epochs and not stopped:
            sampler = PlannedBatchSampler(
                train.labels,
                cfg.batch_size,
                cfg.seed,
                epoch,
                cfg.balanced_sampler,
                cfg.epoch_samples,
                dist_info.rank,
                dist_info.world,
                start_batch,
            )
            loader = DataLoader(batches, sampler=sampler, batch_size=None, num_workers=cfg.workers, pin_memory=use_cuda)
            task = (
                prog.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=steps_per_epoch, completed=start_batch, info="")
                if prog
                else None
            )
            net.train()
            t_epoch = time.time()
            for b, (x, y) in enumerate(loader, start=start_batch):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if use_cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast:
                    logits = net(x)
                loss = criterion(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None and cfg.schedule == "cosine":
                    sched.step()
                done_batches = b + 1
                loss_sum += float(loss.detach()) * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                images_seen += len(y) * dist_info.world
                if prog:
                    rate = seen * dist_info.world / max(time.time() - t_epoch, 1e-9)
                    prog.update(
                        task,
                        completed=b + 1,
                        info=f"loss {loss_sum / seen:.3f}  acc {correct / seen:.3f}  {rate:,.0f} img/s",
                    )
                if (b + 1) % cfg.checkpoint_every == 0:
                    save_state(epoch, b + 1, stats=(loss_sum, correct, seen))
                if any_rank(dist_info, time.time() > deadline):
                    out_of_time = True
                    break
            if out_of_time and done_batches < steps_per_epoch:
                if best > -math.inf:  # a validated model.pt exists: stop here, resumable mid-epoch
                    save_state(epoch, done_batches, stats=(loss_sum, correct, seen))
                    if dist_info.main and progress:
                        console.print(f"time budget of {cfg.max_minutes} min reached in epoch {epoch + 1}")
                    break
                # Out of time before any validation: validate the partial epoch, so the run leaves a model.
                if dist_info.main and progress:
                    console.print(
                        f"time budget of {cfg.max_minutes} min reached in epoch {epoch + 1} before any validation; "
                        f"keeping the model after {done_batches} of {steps_per_epoch} batches"
                    )
            finishing = True
            start_batch = done_batches = 0
            sync_buffers(dist_info, model)  # every rank evaluates rank 0's BatchNorm statistics
            val_metrics = evaluate_arrays(model, val.images, val.labels, classes, device)
            score = from_rank0(dist_info, val_metrics[cfg.select_metric])
            improved = score > best
            if improved:
                best, bad_epochs = score, 0
                if dist_info.main:
                    save_torch(
                        run_dir / BEST,
                        {
                            "model": model.state_dict(),
                            "model_kwargs": kwargs,
                            "classes": classes,
                            "size": size,
                            "channels": channels,
                            "data_size": data.size,  # faces were loaded at this size, then resized
                            "epoch": epoch + 1,
                            "val": {k: val_metrics[k] for k in ("accuracy", "macro_f1", "loss")},
                            "select_metric": cfg.select_metric,
                        },
                    )
            else:
                bad_epochs += 1
            if sched is not None and cfg.schedule == "plateau":
                sched.step(score)
            record = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / max(seen, 1),
                "val_loss": val_metrics["loss"],
                "val_acc": val_metrics["accuracy"],
                "val_macro_f1": val_metrics["macro_f1"],
                "lr": opt.param_groups[0]["lr"],
                "improved": improved,
                "seconds": time.time() - t_epoch,
            }
            epoch += 1
            stopped = cfg.patience > 0 and bad_epochs >= cfg.patience
            if dist_info.main:
                append_jsonl(run_dir / "history.jsonl", record)
                plot_curves(read_jsonl(run_dir / "history.jsonl"), run_dir / "curves.png")
                if prog:
                    prog.update(
                        task,
                        info=(
                            f"loss {record['train_loss']:.3f}  acc {record['train_acc']:.3f}  "
                            f"val acc {record['val_acc']:.3f}  val F1 {record['val_macro_f1']:.3f}"
                            + ("  ★" if improved else "")
                        ),
                    )
            save_state(epoch, 0, stopped)
            finishing = False
            loss_sum, correct, seen = 0.0, 0, 0
            if stopped and dist_info.main and progress:
                console.print(f"early stop: no better validation {cfg.select_metric} for {cfg.patience} epochs")
            if any_rank(dist_info, time.time() > deadline):
                if dist_info.main and progress:
                    console.print(f"time budget of {cfg.max_minutes} min reached after epoch {epoch}")
                break
    except KeyboardInterrupt:
        if not finishing:  # mid-epoch; otherwise the last checkpoint replays this epoch exactly
            save_state(epoch, done_batches, stats=(loss_sum, correct, seen))
        raise
    finally:
        if prog:
            prog.stop()
    barrier(dist_info)
    history = read_jsonl(run_dir / "history.jsonl")
    best_rec = max(
        history,
        key=lambda r: r["val_macro_f1" if cfg.select_metric == "macro_f1" else "val_acc"],
        default=None,
    )
    summary = {
        "run_dir": str(run_dir),
        "epochs_done": epoch,
        "best_epoch": best_rec["epoch"] if best_rec else None,
        "best_val": best_rec,
        "seconds": time.time() - t0,
        "images_per_s": images_seen / max(time.time() - t0, 1e-9),
        "early_stopped": stopped,
        "rank": dist_info.rank,
        "world": dist_info.world,
        "parameter_digest": parameter_digest(model),
    }
    if dist_info.main:
        write_json(run_dir / "summary.json", summary)
    return summary
