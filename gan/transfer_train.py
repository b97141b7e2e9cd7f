"""The expression-transfer training loop: it orders the named steps (gan.transfer_steps); the run folder,
resume, checkpoints, logs and the time budget are the noise recipe's (gan.checkpoint, gan.train)."""

from __future__ import annotations

import torch

from gan.sample import GRID_COLUMNS, _to_uint8
from gan.state import GanState
from gan.steps import _to_float, ada_step, ema_step
from gan.train import RunLog, bookkeeping, log_step
from gan.transfer_steps import transfer_d_step, transfer_g_step

GRID_KEY = -1  # the BatchPlan key of the grid's source faces (training keys are 0 and up)


@torch.no_grad()
def save_transfer_grid(st: GanState, columns: int = GRID_COLUMNS) -> None:
    """The (EMA) generator's grid: a row of fixed real source faces, then one row per target class."""
    from augment.core.pictures import labelled_grid

    g = st.g_ema if st.g_ema is not None else st.g
    idx = st.plan.indices(GRID_KEY)[:columns]
    x = _to_float(st.images[idx.to(st.images.device)]).to(st.device)
    was_training = g.training
    g.eval()
    rows = [_to_uint8(x)]
    for c in range(len(st.classes)):
        rows.append(_to_uint8(g(x, torch.full((len(x),), c, device=st.device))))
    g.train(was_training)
    path = st.run_dir / "samples" / f"step_{st.step:06d}.png"
    labelled_grid(rows, ["source", *st.classes], path, title=f"{path.stem.replace('_', ' ')}: source -> class")


def transfer_loop(st: GanState, log: RunLog, progress: bool) -> None:
    """Order the steps: D step(s), G step (on the last D step's sources), EMA, ADA; then logs, checkpoints,
    samples, the time budget and best-checkpoint selection (translations of validation faces, scored as the
    noise recipe's samples are: ``gan.validation.score_generator``)."""
    cfg = st.cfg
    while st.step < cfg.steps:
        for k in range(cfg.d_steps):
            key = st.step * cfg.d_steps + k
            d_losses = transfer_d_step(st, key)
        g_losses = transfer_g_step(st, key)
        ema_step(st)
        ada_step(st, d_losses["d_sign"])
        st.step += 1
        log_step(st, log, {**d_losses, **g_losses})
        if bookkeeping(st, log, progress):
            break
