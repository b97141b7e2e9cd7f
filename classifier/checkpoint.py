"""A classifier run's checkpoint and model.pt: saved, resumed from, repaired; the run folder made ready."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.markup import escape

from augment.core.atomic import read_jsonl, remove_stale_temps, save_torch, write_text
from augment.core.errors import UserError
from augment.core.progress import console
from augment.core.rundir import CHECKPOINT, load_checkpoint, record_run, save_checkpoint
from augment.core.runtime import barrier
from classifier.inference import BEST, load_classifier
from classifier.state import RunState, TrainSetup


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


def truncate_history(path: Path, done_epochs: int) -> None:
    """Drop records the checkpoint does not cover (a kill between the history line and the
    checkpoint) and a torn last line, so a resumed run appends each epoch once."""
    if not path.exists():
        return
    keep = [r for r in read_jsonl(path) if int(r.get("epoch", 0)) <= done_epochs]
    text = "".join(json.dumps(r) + "\n" for r in keep)
    if text != path.read_text(encoding="utf-8"):
        write_text(path, text)


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


def best_model_meta(path: Path) -> tuple[dict[str, Any] | None, str | None]:
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
    problem = best_model_meta(path)[1]
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
            truncate_history(s.run_dir / "history.jsonl", state.epoch)
            if s.verbose and s.folder.resuming:
                console.print(
                    f"resuming {s.run_dir} at epoch {state.epoch + 1}, batch {state.start_batch}", soft_wrap=True
                )
    barrier(s.dist)


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
                "train_noise": s.cfg.noise,  # the input noise it learned under (a transfer guide is used with it)
                "epoch": epoch,
                "val": {k: val_metrics[k] for k in ("accuracy", "macro_f1", "loss")},
                "select_metric": s.cfg.select_metric,
                "stage": s.stage,
            },
        )
