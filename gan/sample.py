"""Sampling from a trained generator: grids for people, uint8 faces for the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.errors import UserError
from augment.core.rundir import CHECKPOINT, load_checkpoint
from augment.core.runtime import step_generator
from gan.config import DEFAULT_CHECKPOINT, TRANSFER, check_checkpoint

GRID_COLUMNS = 10


def sampling_seed(seed: int, label: int) -> int:
    """The seed ``generate_images`` gets for the generator's class ``label`` in a run with ``--seed seed``
    (``generate`` and ``rebalance`` alike); the manifest records it as the file's ``seed``."""
    return seed * 1000 + label


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


@torch.no_grad()
def generate_images(
    g: torch.nn.Module,
    labels: np.ndarray,
    seed: int,
    device: str = "cpu",
    batch: int = 256,
    offset: int = 0,
) -> np.ndarray:
    """uint8 (N, C, H, W) faces for ``labels``; image i depends only on (seed, offset + i, label).

    Noise comes in fixed blocks keyed by position, so asking for more images later
    extends a set rather than changing it.
    """
    g.eval()
    out = []
    labels = np.asarray(labels, dtype=np.int64)
    z_dim = g.z_dim
    for start in range(0, len(labels), batch):
        pos = np.arange(start, min(start + batch, len(labels))) + offset
        z = torch.stack([torch.randn(z_dim, generator=step_generator(seed, int(p), 99)) for p in pos])
        y = torch.from_numpy(labels[start : start + len(pos)])
        out.append(_to_uint8(g(z.to(device), y.to(device))))
    if not out:
        return np.zeros((0, g.channels, g.size, g.size), dtype=np.uint8)
    return np.concatenate(out)


@torch.no_grad()
def save_sample_grid(
    g: torch.nn.Module, classes: list[str], path: Path, seed: int = 0, device: str = "cpu", columns: int = GRID_COLUMNS
) -> None:
    """One row per class from fixed noise, so grids of different steps compare directly."""
    from augment.core.pictures import labelled_grid

    was_training = g.training
    g.eval()
    gen = step_generator(seed, 0, 77)
    z = torch.randn(columns, g.z_dim, generator=gen).repeat(len(classes), 1).to(device)
    y = torch.arange(len(classes)).repeat_interleave(columns).to(device)
    x = _to_uint8(g(z, y))
    g.train(was_training)
    rows = [x[i * columns : (i + 1) * columns] for i in range(len(classes))]
    labelled_grid(rows, classes, Path(path), title=Path(path).stem.replace("_", " "))


BEST = "best.pt"  # the generator best-checkpoint selection kept, beside the last checkpoint


def checkpoint_file(run_dir: Path, checkpoint: str = DEFAULT_CHECKPOINT) -> tuple[Path, str, str]:
    """(file, what it is: best or last, a note when best was asked for but there is none)."""
    run_dir = Path(run_dir)
    check_checkpoint(checkpoint)
    if not (run_dir / CHECKPOINT).exists():
        raise UserError(f"{run_dir}: no GAN checkpoint ({CHECKPOINT}); run 'augment gan-train' first")
    if checkpoint == "best":
        if (run_dir / BEST).exists():
            return run_dir / BEST, "best", ""
        note = f"{run_dir} has no {BEST} (no best-checkpoint selection ran); using the last checkpoint"
        return run_dir / CHECKPOINT, "last", note
    return run_dir / CHECKPOINT, "last", ""


def read_generator(run_dir: Path, checkpoint: str = DEFAULT_CHECKPOINT) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checkpoint state of a gan-train run (its best on validation, ``best``, the default, falling back
    to the last with a note in ``meta["note"]`` when selection never ran; or its ``last``) and its meta:
    the step, classes, config, which checkpoint was loaded, and the ``recipe`` (full, classic or transfer)."""
    path, used, note = checkpoint_file(Path(run_dir), checkpoint)
    state = load_checkpoint(path)
    if "generator_kwargs" not in state:
        raise UserError(f"{path}: not a gan-train checkpoint")
    config = state["config"]
    meta = {
        "step": int(state["step"]),
        "classes": list(state["classes"]),
        "config": config,
        "checkpoint": used,
        "note": note,
        "recipe": state["generator_kwargs"].get("recipe") or config.get("recipe") or "full",
    }
    return state, meta


def generator_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The EMA generator's weights, or the raw generator's when the run kept no EMA."""
    return state["g_ema"] if state.get("g_ema") is not None else state["g"]


def load_generator(
    run_dir: Path, device: str = "cpu", checkpoint: str = DEFAULT_CHECKPOINT
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The EMA generator (or the raw one when EMA was off) of a noise (full or classic) gan-train run, and
    :func:`read_generator`'s meta; a transfer run is refused in one line (``gan.translate`` loads those)."""
    state, meta = read_generator(run_dir, checkpoint)
    if meta["recipe"] == TRANSFER:
        raise UserError(
            f"{run_dir}: a --recipe transfer run translates faces and has no noise sampler; "
            "this command needs a run of the full or classic recipe"
        )
    return noise_generator(state, device), meta


def noise_generator(state: dict[str, Any], device: str = "cpu") -> torch.nn.Module:
    """The noise generator of a checkpoint state, in eval mode on ``device``."""
    from gan.models import Generator

    g = Generator(**state["generator_kwargs"])
    g.load_state_dict(generator_weights(state))
    return g.to(device).eval()
