"""The GAN training loop: it orders the named steps (gan.steps), logs, samples, checkpoints
(gan.checkpoint) and best-checkpoint selection (gan.selection)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress, TaskID, TextColumn

from augment.core.atomic import append_jsonl, read_jsonl
from augment.core.dataset import FaceDataset
from augment.core.progress import console, make_progress
from augment.core.rundir import RunInterrupted
from augment.core.runtime import any_rank, barrier, parameter_digest
from gan.checkpoint import prepare_training, save_state, setup
from gan.config import TRANSFER, GanConfig
from gan.plots import plot_losses
from gan.sample import save_sample_grid
from gan.selection import select_step, selection_due
from gan.state import GanState
from gan.steps import ada_step, d_step, ema_step, g_step


# --------------------------------------------------------------------------- samples and logs
def save_samples(st: GanState) -> None:
    """A sample grid of the (EMA) generator and the loss plot (rank 0 only)."""
    if st.dist.main and st.cfg.recipe == TRANSFER:
        from gan.transfer_train import save_transfer_grid

        save_transfer_grid(st)
    elif st.dist.main:
        save_sample_grid(
            st.g_ema if st.g_ema is not None else st.g,
            st.classes,
            st.run_dir / "samples" / f"step_{st.step:06d}.png",
            seed=st.cfg.seed,
            device=st.device,
        )
        plot_losses(read_jsonl(st.run_dir / "metrics.jsonl"), st.run_dir / "losses.png")


@dataclass
class RunLog:
    """Throughput window, last losses, time budget and progress bar of one invocation."""

    start_step: int
    t_start: float = field(default_factory=time.time)
    deadline: float = math.inf
    window_t: float = field(default_factory=time.time)
    window_images: int = 0
    rate: float = 0.0
    last: dict[str, float] = field(default_factory=dict)
    prog: Progress | None = None
    task: TaskID | None = None


def open_log(st: GanState, progress: bool) -> RunLog:
    log = RunLog(start_step=st.step)
    if st.cfg.max_minutes > 0:
        log.deadline = log.t_start + st.cfg.max_minutes * 60
    if progress and st.dist.main:
        log.prog = make_progress(TextColumn("{task.fields[info]}"))
        log.task = log.prog.add_task("gan-train", total=st.cfg.steps, completed=st.step, info="")
        log.prog.start()
    return log


def log_step(st: GanState, log: RunLog, losses: dict[str, torch.Tensor]) -> None:
    """Record a finished step: metrics.jsonl every ``log_every`` steps and at the end, the progress bar."""
    cfg = st.cfg
    log.window_images += cfg.batch_size * cfg.d_steps
    log.last = {k: float(v.detach()) for k, v in losses.items()}  # d_loss, g_loss, d_real, d_fake, d_sign, ...
    if cfg.ada_target > 0 or cfg.color_p < 1:
        log.last["color_p"] = st.color_p
    if st.step % cfg.log_every == 0 or st.step == cfg.steps:
        now = time.time()
        log.rate = log.window_images / max(now - log.window_t, 1e-9)
        log.window_t, log.window_images = now, 0
        if st.dist.main:
            record = {"step": st.step, **log.last, "images_per_s": log.rate, "elapsed_s": now - log.t_start}
            append_jsonl(st.run_dir / "metrics.jsonl", record)
    if log.prog:
        info = f"D {log.last['d_loss']:.3f}  G {log.last['g_loss']:.3f}  {log.rate:,.0f} img/s"
        log.prog.update(log.task, completed=st.step, info=info)


def out_of_time(st: GanState, log: RunLog, progress: bool) -> bool:
    """True on every rank once any rank passes ``--max-minutes``."""
    if not any_rank(st.dist, time.time() > log.deadline):
        return False
    if st.dist.main and progress:
        console.print(f"time budget of {st.cfg.max_minutes} min reached at step {st.step}")
    return True


# --------------------------------------------------------------------------- the loop
def train_loop(st: GanState, log: RunLog, progress: bool) -> None:
    """Order the steps: D step(s), G step, EMA; then logs, checkpoints, samples and the time budget."""
    cfg = st.cfg
    while st.step < cfg.steps:
        for k in range(cfg.d_steps):
            d_losses = d_step(st, st.step * cfg.d_steps + k)
        g_loss = g_step(st)
        ema_step(st)
        ada_step(st, d_losses["d_sign"])
        st.step += 1
        log_step(st, log, {**d_losses, "g_loss": g_loss})
        if bookkeeping(st, log, progress):
            break


def bookkeeping(st: GanState, log: RunLog, progress: bool) -> bool:
    """After a step, in both recipes' loops: checkpoint, samples, the time budget and best-checkpoint selection
    (a run stopped by --max-minutes is scored where it stopped); True when the loop must stop."""
    cfg = st.cfg
    if st.step % cfg.checkpoint_every == 0:
        save_state(st)
    if st.step % cfg.sample_every == 0:
        save_samples(st)
    stop = out_of_time(st, log, progress)
    if selection_due(cfg, st.step) or (stop and st.judge is not None):
        select_step(st)
    return stop


def finish(st: GanState, log: RunLog) -> dict[str, Any]:
    """The last checkpoint and samples, then the run's summary."""
    save_state(st)
    save_samples(st)
    barrier(st.dist)
    elapsed = time.time() - log.t_start
    steps_done = st.step - log.start_step
    return {
        "step": st.step,
        "steps_this_run": steps_done,
        "seconds": elapsed,
        "images_per_s": steps_done * st.cfg.batch_size * st.cfg.d_steps / max(elapsed, 1e-9),
        "run_dir": str(st.run_dir),
        "rank": st.dist.rank,
        "world": st.dist.world,
        "parameter_digest": parameter_digest(st.g, st.d),
    }


def train_gan(data: FaceDataset, run_dir: str | Path, cfg: GanConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a conditional GAN on the train split of ``data`` into ``run_dir``.

    Returns a summary with the final step and throughput. Only rank 0 writes files.
    """
    cfg.validate()
    st = setup(data, Path(run_dir), cfg, progress)
    if st.step >= cfg.steps:
        if st.dist.main and progress:
            console.print(f"{st.run_dir} already trained to step {st.step} (--steps {cfg.steps}); nothing to do")
        return {"step": st.step, "images_per_s": None, "run_dir": str(st.run_dir)}
    prepare_training(st)
    log = open_log(st, progress)
    loop = train_loop
    if cfg.recipe == TRANSFER:
        from gan.transfer_train import transfer_loop as loop
    try:
        loop(st, log, progress)
    except KeyboardInterrupt as e:
        save_state(st)
        raise RunInterrupted(f"interrupted at step {st.step}; rerun the same command to resume") from e
    finally:
        if log.prog:
            log.prog.stop()
    return finish(st, log)
