"""The end of an epoch: validation, model selection and early stopping, the history line and curves."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from augment.core.atomic import append_jsonl, read_jsonl
from augment.core.errors import UserError
from augment.core.progress import console
from augment.core.runtime import from_rank0, sync_buffers
from classifier.checkpoint import best_model_meta, save_best, save_state
from classifier.inference import BEST, predict_proba
from classifier.metrics import classification_metrics
from classifier.plots import plot_curves
from classifier.state import RunState, TrainSetup


def evaluate_arrays(
    model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, classes: list[str], device: str
) -> dict[str, Any]:
    probs = predict_proba(model, images, device=device)
    metrics = classification_metrics(labels, probs.argmax(1), classes)
    eps = 1e-8
    metrics["loss"] = float(-np.log(probs[np.arange(len(labels)), labels] + eps).mean()) if len(labels) else 0.0
    return metrics


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


def best_record(s: TrainSetup) -> dict[str, Any]:
    """The history record of the epoch model.pt holds, checked by loading model.pt into a model: the
    summary reports the model that is on disk, not the one that should be."""
    meta, problem = best_model_meta(s.run_dir / BEST)
    if meta is None:
        raise UserError(f"{problem}; rerun the same command to repair it", exit_code=1)
    epoch = int(meta["epoch"])
    found = [r for r in read_jsonl(s.run_dir / "history.jsonl") if r.get("epoch") == epoch]
    if found:
        return found[-1]
    val = meta["val"]
    return {"epoch": epoch, "val_loss": val["loss"], "val_acc": val["accuracy"], "val_macro_f1": val["macro_f1"]}


def best_of_stage(s: TrainSetup, history: list[dict[str, Any]], stage: str) -> dict[str, Any] | None:
    key = "val_macro_f1" if s.cfg.select_metric == "macro_f1" else "val_acc"
    return max((r for r in history if r.get("stage", "main") == stage), key=lambda r: r[key], default=None)
