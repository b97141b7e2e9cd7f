"""A GAN run's folder: set up (fresh or resumed from its checkpoint), checkpointed, made ready to train."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from augment.core.atomic import read_jsonl, remove_stale_temps, write_text
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.limits import apply_limit
from augment.core.progress import console
from augment.core.rundir import CHECKPOINT, load_checkpoint, open_run, record_run, save_checkpoint
from augment.core.runtime import barrier, data_fingerprint, init_distributed, pick_device
from gan.config import GanConfig
from gan.selection import prepare_guide, prepare_selection
from gan.state import GanState, generator_kwargs, new_state
from gan.validation import real_splits, val_fingerprint


def _trim_metrics(path: Path, step: int) -> None:
    """Drop what a killed run logged after its last checkpoint (steps that will be redone, a torn line)."""
    if path.exists():
        write_text(path, "".join(json.dumps(r) + "\n" for r in read_jsonl(path) if r.get("step", 0) <= step))


def save_state(st: GanState) -> None:
    """The checkpoint (rank 0 only): weights, optimizers, step, and what rebuilds the generator."""
    if not st.dist.main:
        return
    save_checkpoint(
        st.run_dir,
        {
            "step": st.step,
            "g": st.g.state_dict(),
            "d": st.d.state_dict(),
            "g_ema": st.g_ema.state_dict() if st.g_ema is not None else None,
            "opt_g": st.opt_g.state_dict(),
            "opt_d": st.opt_d.state_dict(),
            "classes": st.classes,
            "generator_kwargs": generator_kwargs(st.cfg, len(st.classes)),
            "config": st.config,
            "color_p": st.color_p,
            "ada_signs": st.ada_signs,
            "lecam_ema": st.lecam_ema,
        },
    )


def gan_splits(data: FaceDataset, cfg: GanConfig) -> tuple[FaceDataset, FaceDataset]:
    """The real training images minus the validation split (``gan.validation.real_splits``), and that
    split, of the chosen classes at the GAN's size and channels. Test is never read."""
    train, val = real_splits(data, cfg.val_fraction, cfg.classes)
    if train.size != cfg.size or train.channels != cfg.channels:
        from augment.core.resize import resize_dataset

        train, val = resize_dataset(train, cfg.size, cfg.channels), resize_dataset(val, cfg.size, cfg.channels)
    return train, val


def limited_data(data: FaceDataset, cfg: GanConfig) -> FaceDataset:
    """``data`` with ``--limit`` applied (validation carved first, then the limited classes' train faces cut;
    ``augment.core.limits``): what the generator, its selection judge and the run's fingerprint see."""
    outside = [c for c in cfg.limit if cfg.classes and c not in cfg.classes]
    if outside:
        raise UserError(f"--limit {outside[0]}: not one of --classes {','.join(cfg.classes)}")
    return apply_limit(data, cfg.limit, cfg.val_fraction)


def training_split(data: FaceDataset, cfg: GanConfig) -> FaceDataset:
    """What the generator trains on: real train minus validation (and ``--limit``), at the GAN's size and
    channels."""
    return gan_splits(limited_data(data, cfg), cfg)[0]


def resume(st: GanState, progress: bool) -> None:
    """Load the run folder's checkpoint into ``st`` (weights, optimizers, step)."""
    state = load_checkpoint(st.run_dir / CHECKPOINT)
    try:
        st.g.load_state_dict(state["g"])
        st.d.load_state_dict(state["d"])
    except RuntimeError as err:  # networks of another build (a transfer D whose class head had spectral norm)
        raise UserError(
            f"{st.run_dir}: its checkpoint holds networks of an older build that this version cannot resume; "
            "train into a new --out"
        ) from err
    if st.g_ema is not None:
        st.g_ema.load_state_dict(state["g_ema"])
    st.opt_g.load_state_dict(state["opt_g"])
    st.opt_d.load_state_dict(state["opt_d"])
    st.step = int(state["step"])
    st.color_p = float(state.get("color_p", st.cfg.color_p))
    st.ada_signs = list(state.get("ada_signs", []))
    st.lecam_ema = list(state.get("lecam_ema", [0.0, 0.0]))
    if st.dist.main and progress:
        console.print(f"resuming {st.run_dir} from step {st.step}")


def setup(data: FaceDataset, run_dir: Path, cfg: GanConfig, progress: bool) -> GanState:
    """Check the settings and the run folder (writing nothing), build the models and resume from the
    checkpoint when there is one; then, if there are steps to train, record the run."""
    cfg.validate()
    device = pick_device(cfg.device)
    dist = init_distributed(device)
    if cfg.batch_size % dist.world:
        raise UserError(f"--batch-size {cfg.batch_size} must divide evenly over {dist.world} processes")
    data = limited_data(data, cfg)
    train, val = gan_splits(data, cfg)
    config = {
        **cfg.to_dict(),
        "classes": list(train.classes),
        "data": data.name,
        "data_fingerprint": data_fingerprint(train.images, train.labels),
        "train_counts": train.counts(),
        "val_counts": val.counts(),
        "val_fingerprint": val_fingerprint(val),
    }
    folder = open_run(run_dir, config, "gan", GanConfig.RESUMABLE, defaults=GanConfig.before_options())
    st = new_state(cfg, train, dist, device, run_dir, folder.config)
    if folder.resuming:
        resume(st, progress)
    prepare_selection(st, data, val, progress)
    prepare_guide(st, data, progress)
    barrier(dist)  # every rank has read the run folder before rank 0 writes to it
    if dist.main:
        remove_stale_temps(run_dir)
        if st.step < cfg.steps:
            record_run(folder)
            _trim_metrics(run_dir / "metrics.jsonl", st.step)
    barrier(dist)
    return st


def prepare_training(st: GanState) -> None:
    """Data on the GPU, DDP wrappers in a torchrun job, minibatch-std groups that fit a rank's batch."""
    if st.device.startswith("cuda"):
        st.images = st.images.to(st.device)
    st.labels = st.labels.to(st.device)
    if st.dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [torch.device(st.device).index] if st.device.startswith("cuda") else None
        st.g_train = DDP(st.g, device_ids=ids)
        st.d_train = DDP(st.d, device_ids=ids)
    per_rank = st.cfg.batch_size // st.dist.world
    st.d.mbstd_group = math.gcd(4, per_rank)  # groups never straddle the real | fake boundary
    st.g.train()
    st.d.train()
