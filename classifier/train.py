"""The classifier training loop: validation-only model selection, resume, DDP; then, with
``refit_head_epochs``, a second stage that re-fits the final layer on real faces (classifier/refit.py).
The loop orders the epoch (classifier.epoch), its validation (classifier.validation) and checkpoints
(classifier.checkpoint) of a run set up by classifier.state."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

from rich.progress import TextColumn

from augment.core.atomic import read_jsonl, write_json
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console, make_progress
from augment.core.rundir import RunInterrupted, load_checkpoint, record_run
from augment.core.runtime import any_rank, barrier, parameter_digest
from classifier.checkpoint import begin, resume, save_state, truncate_history
from classifier.config import TrainConfig
from classifier.data import PlannedBatchSampler
from classifier.epoch import prepare_training, run_batches, stop_mid_epoch
from classifier.inference import BEST
from classifier.losses import make_loss
from classifier.models import classifier_head
from classifier.refit import real_part, refit_config
from classifier.state import RunState, TrainSetup, make_optimizer, make_scheduler, setup
from classifier.validation import best_of_stage, best_record, end_epoch


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


def _refit_setup(s: TrainSetup, refit_from: int) -> TrainSetup:
    """The refit stage: real training faces in class-balanced batches, plain cross-entropy, an optimiser
    and a cosine schedule of the head's own; the same model, run folder and config.json."""
    cfg = refit_config(s.cfg, refit_from)
    train = real_part(s.train)
    steps = PlannedBatchSampler(train.labels, cfg.batch_size, cfg.seed, 0, True, cfg.epoch_samples).num_batches()
    if steps == 0:
        raise UserError(
            f"--refit-epochs: fewer real training faces than one batch ({cfg.batch_size}); lower --batch-size"
        )
    criterion = make_loss(train.labels, len(s.classes), False, 0.0, cfg.label_smoothing).to(s.device)
    opt = make_optimizer(cfg, classifier_head(s.model).parameters())
    refit = dataclasses.replace(s, cfg=cfg, train=train, opt=opt, criterion=criterion, steps_per_epoch=steps)
    refit.stage, refit.refit_from, refit.net, refit.batches = "refit", refit_from, None, None
    refit.sched = make_scheduler(cfg, opt, refit.total_steps)
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
        truncate_history(r.run_dir / "history.jsonl", state.epoch)
    barrier(r.dist)
    state.images_seen = main.images_seen
    prepare_training(r)
    return r, state


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
            "main_best_val": best_of_stage(s, history, "main"),
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
