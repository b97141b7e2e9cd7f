"""A classifier run's setup: the options checked, the splits carved, the model, optimiser and schedule built,
and the state a run carries (``TrainSetup``, fixed once set up; ``RunState``, where the run stands)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console
from augment.core.resize import resize_dataset
from augment.core.rundir import RunFolder, open_run
from augment.core.runtime import Dist, data_fingerprint, init_distributed, pick_device, seed_everything
from augment.core.splits import carve_train_val
from classifier.config import TrainConfig
from classifier.data import AugmentedBatches, PlannedBatchSampler
from classifier.losses import make_loss
from classifier.models import build_model, default_image_size

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
        "head_width": cfg.head_width,
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


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, total_steps: int):
    """The learning-rate schedule; cosine and onecycle (peak ``--lr``) step per batch over ``total_steps``."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps)
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=2)
    return None  # "none"


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
    opt = make_optimizer(cfg, model.parameters())
    steps_per_epoch = PlannedBatchSampler(
        train.labels, cfg.batch_size, cfg.seed, 0, cfg.balanced_sampler, cfg.epoch_samples
    ).num_batches()
    if steps_per_epoch == 0:
        raise UserError(f"{data.name}: fewer training images than one batch ({cfg.batch_size}); lower --batch-size")
    sched = make_scheduler(cfg, opt, max(1, cfg.epochs * steps_per_epoch))
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
