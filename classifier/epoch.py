"""One epoch's training: the batch source, the named train step, and the batches of an epoch in order."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import torch
from torch.utils.data import DataLoader

from augment.core.progress import console
from augment.core.runtime import any_rank
from classifier.checkpoint import save_state
from classifier.data import AugmentedBatches, PlannedBatchSampler, train_transform
from classifier.losses import sample_weights
from classifier.refit import FrozenBody
from classifier.state import PER_BATCH_SCHEDULES, RunState, StepStats, TrainSetup


def prepare_training(s: TrainSetup) -> None:
    """After the resume: DDP around the model, autocast, the augmented batch source."""
    s.net = FrozenBody(s.model) if s.stage == "refit" else s.model
    if s.dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        s.net = DDP(s.net, device_ids=[torch.device(s.device).index] if s.use_cuda else None)
    s.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=s.use_cuda and s.cfg.amp)
    transform = train_transform(s.cfg.flip, s.cfg.affine, s.cfg.erasing, s.cfg.noise)
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
