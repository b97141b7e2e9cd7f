"""The GAN training loop: class-balanced batches, DiffAugment, hinge/BCE, EMA, resume, DDP."""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import TextColumn

from augment.core.atomic import append_jsonl, read_jsonl, write_text
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console, make_progress
from augment.core.rundir import CHECKPOINT, load_checkpoint, save_checkpoint, start_or_resume
from augment.core.runtime import (
    any_rank,
    barrier,
    data_fingerprint,
    init_distributed,
    parameter_digest,
    pick_device,
    seed_everything,
    step_generator,
)
from gan.config import GanConfig
from gan.diffaugment import diff_augment
from gan.models import Discriminator, Generator
from gan.plots import plot_losses
from gan.sample import save_sample_grid


def generator_kwargs(cfg: GanConfig, num_classes: int) -> dict[str, Any]:
    """What rebuilds the generator from a checkpoint (``gan.sample.load_generator``)."""
    return {
        "num_classes": num_classes,
        "size": cfg.size,
        "channels": cfg.channels,
        "z_dim": cfg.z_dim,
        "width": cfg.g_width,
        "cond_bn": cfg.cond_bn,
    }


def build_models(cfg: GanConfig, num_classes: int) -> tuple[Generator, Discriminator]:
    g = Generator(**generator_kwargs(cfg, num_classes))
    d = Discriminator(
        num_classes,
        size=cfg.size,
        channels=cfg.channels,
        width=cfg.d_width,
        conditioning=cfg.conditioning,
        spectral_norm=cfg.spectral_norm,
        aux_classifier=cfg.aux_weight > 0,
        head=cfg.d_head,
        minibatch_std=cfg.minibatch_std,
        batchnorm=cfg.d_batchnorm,
    )
    return g, d


class BatchPlan:
    """The real images and fake labels of every step, fixed by (seed, step).

    Every rank draws the same global batch and keeps its own slice, so a run gives the
    same batches on 1 or N processes and after a resume. Balanced mode picks a class
    uniformly, then an image of it, so a 436-image class is seen as often as a 7,000-image
    one.
    """

    def __init__(self, labels: np.ndarray, num_classes: int, batch: int, seed: int, balanced: bool) -> None:
        self.labels = torch.from_numpy(labels)
        self.num_classes = num_classes
        self.batch = batch
        self.seed = seed
        self.balanced = balanced
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=num_classes)
        self.order = torch.from_numpy(order)
        self.sizes = torch.from_numpy(counts)
        self.starts = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        self.present = torch.from_numpy(np.flatnonzero(counts > 0))

    def indices(self, step: int) -> torch.Tensor:
        g = step_generator(self.seed, step, stream=1)
        if not self.balanced:
            return torch.randint(len(self.labels), (self.batch,), generator=g)
        cls = self.present[torch.randint(len(self.present), (self.batch,), generator=g)]
        pos = (torch.rand(self.batch, generator=g) * self.sizes[cls]).long().clamp_max(self.sizes[cls] - 1)
        return self.order[self.starts[cls] + pos]

    def fake_labels(self, step: int) -> torch.Tensor:
        """Fake labels follow the same class mix as the real batch."""
        return self.labels[self.indices(step)][torch.randperm(self.batch, generator=step_generator(self.seed, step, 2))]


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(127.5).sub_(1.0)


def _flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    mask = (torch.rand(x.shape[0], generator=g) < 0.5).to(x.device).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(3), x)


def d_loss_real(kind: str, real: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 - real).mean() if kind == "hinge" else F.softplus(-real).mean()


def d_loss_fake(kind: str, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1.0 + fake).mean() if kind == "hinge" else F.softplus(fake).mean()


def aux_loss(class_logits: torch.Tensor | None, labels: torch.Tensor, weight: float) -> torch.Tensor | float:
    """The AC-GAN term: D's class head on real images (D step) or on fakes (G step)."""
    if class_logits is None or weight <= 0:
        return 0.0
    return weight * F.cross_entropy(class_logits.float(), labels)


def g_loss_fn(kind: str, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def _trim_metrics(path: Path, step: int) -> None:
    """Drop what a killed run logged after its last checkpoint (steps that will be redone, a torn line)."""
    if path.exists():
        write_text(path, "".join(json.dumps(r) + "\n" for r in read_jsonl(path) if r.get("step", 0) <= step))


def _unwrap(m: torch.nn.Module) -> torch.nn.Module:
    return m.module if hasattr(m, "module") else m


def train_gan(data: FaceDataset, run_dir: str | Path, cfg: GanConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) a conditional GAN on the train split of ``data`` into ``run_dir``.

    Returns a summary with the final step and throughput. Only rank 0 writes files.
    """
    run_dir = Path(run_dir)
    device = pick_device(cfg.device)
    dist_info = init_distributed(device)
    if cfg.batch_size % dist_info.world:
        raise UserError(f"--batch-size {cfg.batch_size} must divide evenly over {dist_info.world} processes")

    train = data.split("train") if data.has_split("train") else data
    train = train.subset(~train.synthetic)
    if cfg.classes:
        train = train.with_classes(cfg.classes)
    if len(train) == 0:
        raise UserError(f"{data.name}: no real training images to train the GAN on")
    if train.size != cfg.size or train.channels != cfg.channels:
        from augment.core.resize import resize_dataset

        train = resize_dataset(train, cfg.size, cfg.channels)
    classes = list(train.classes)
    config = {
        **cfg.to_dict(),
        "classes": classes,
        "data": data.name,
        "data_fingerprint": data_fingerprint(train.images, train.labels),
        "train_counts": train.counts(),
    }
    resuming = False
    if dist_info.main:
        resuming = start_or_resume(run_dir, config, list(GanConfig.IDENTITY), kind="gan")
    barrier(dist_info)
    resuming = (run_dir / CHECKPOINT).exists()

    seed_everything(cfg.seed)
    g, d = build_models(cfg, len(classes))
    g_ema = copy.deepcopy(g).eval() if cfg.ema > 0 else None
    use_cuda = device.startswith("cuda")
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    g.to(device, memory_format=memory_format)
    d.to(device, memory_format=memory_format)
    if g_ema is not None:
        g_ema.to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))

    step = 0
    if resuming:
        state = load_checkpoint(run_dir / CHECKPOINT)
        g.load_state_dict(state["g"])
        d.load_state_dict(state["d"])
        if g_ema is not None:
            # A run checkpointed with EMA off starts its EMA from the trained G, not from a fresh init.
            g_ema.load_state_dict(state["g_ema"] if state.get("g_ema") is not None else state["g"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = int(state["step"])
        if dist_info.main and progress:
            console.print(f"resuming {run_dir} from step {step}")
    if dist_info.main:
        _trim_metrics(run_dir / "metrics.jsonl", step)
    if step >= cfg.steps:
        if dist_info.main and progress:
            console.print(f"{run_dir} already trained to step {step} (--steps {cfg.steps}); nothing to do")
        return {"step": step, "images_per_s": None, "run_dir": str(run_dir)}

    g_train, d_train = g, d
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [torch.device(device).index] if use_cuda else None
        g_train = DDP(g, device_ids=ids)
        d_train = DDP(d, device_ids=ids)

    images = torch.from_numpy(train.images)
    if use_cuda:
        images = images.to(device)
    plan = BatchPlan(train.labels, len(classes), cfg.batch_size, cfg.seed, cfg.balanced)
    per_rank = cfg.batch_size // dist_info.world
    d.mbstd_group = math.gcd(4, per_rank)  # groups never straddle the real | fake boundary
    lo, hi = dist_info.rank * per_rank, (dist_info.rank + 1) * per_rank
    labels_all = torch.from_numpy(train.labels).to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_cuda and cfg.amp)
    policy = cfg.diffaugment

    def real_batch(s: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = plan.indices(s)[lo:hi]
        x = _to_float(images[idx.to(images.device)].to(device, non_blocking=True))
        if cfg.flip:
            x = _flip(x, step_generator(cfg.seed, s, 3))
        return x.contiguous(memory_format=memory_format), labels_all[idx.to(device)]

    def noise(s: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = step_generator(cfg.seed, s, stream)
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=gen)[lo:hi].to(device)
        y = plan.fake_labels(s)[lo:hi].to(device)
        return z, y

    def augment(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        return diff_augment(x, policy, generator=gen) if policy else x

    t_start = time.time()
    deadline = t_start + cfg.max_minutes * 60 if cfg.max_minutes > 0 else math.inf
    window_t, window_images = time.time(), 0
    rate = 0.0
    last: dict[str, float] = {}
    start_step = step

    def checkpoint() -> None:
        if not dist_info.main:
            return
        save_checkpoint(
            run_dir,
            {
                "step": step,
                "g": g.state_dict(),
                "d": d.state_dict(),
                "g_ema": g_ema.state_dict() if g_ema is not None else None,
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "classes": classes,
                "generator_kwargs": generator_kwargs(cfg, len(classes)),
                "config": config,
            },
        )

    def samples() -> None:
        if dist_info.main:
            save_sample_grid(
                g_ema if g_ema is not None else g,
                classes,
                run_dir / "samples" / f"step_{step:06d}.png",
                seed=cfg.seed,
                device=device,
            )
            plot_losses(read_jsonl(run_dir / "metrics.jsonl"), run_dir / "losses.png")

    columns = (TextColumn("{task.fields[info]}"),)
    prog = make_progress(*columns) if (progress and dist_info.main) else None
    task = prog.add_task("gan-train", total=cfg.steps, completed=step, info="") if prog else None
    if prog:
        prog.start()
    g.train()
    d.train()
    try:
        while step < cfg.steps:
            # ---- D step(s)
            for k in range(cfg.d_steps):
                s_key = step * cfg.d_steps + k
                x_real, y_real = real_batch(s_key)
                z, y_fake = noise(s_key, 4)
                with torch.no_grad(), autocast:
                    x_fake = g_train(z, y_fake)
                gen_aug = step_generator(cfg.seed, s_key, 10 + dist_info.rank)
                x_real_aug, x_fake_aug = augment(x_real, gen_aug), augment(x_fake.float(), gen_aug)
                opt_d.zero_grad(set_to_none=True)
                if cfg.d_batchnorm:
                    # The textbook D has BatchNorm: real and fake go through it as separate batches (one
                    # mixed batch would let BN statistics give the fakes away), each with its own backward.
                    with autocast:
                        logits_r, aux = d_train(x_real_aug, y_real)
                    loss_r = d_loss_real(cfg.loss, logits_r.float()) + aux_loss(aux, y_real, cfg.aux_weight)
                    loss_r.backward()
                    with autocast:
                        logits_f_d, _ = d_train(x_fake_aug, y_fake)
                    loss_f = d_loss_fake(cfg.loss, logits_f_d.float())
                    loss_f.backward()
                    loss_d, real_mean, fake_mean = loss_r + loss_f, logits_r.mean(), logits_f_d.mean()
                else:
                    # One batch of [real | fake]: a single D forward per step (and one DDP all-reduce).
                    with autocast:
                        logits, aux = d_train(torch.cat([x_real_aug, x_fake_aug]), torch.cat([y_real, y_fake]))
                    logits = logits.float()
                    n = x_real.shape[0]
                    aux_real = aux[:n] if aux is not None else None
                    loss_d = (
                        d_loss_real(cfg.loss, logits[:n])
                        + d_loss_fake(cfg.loss, logits[n:])
                        + aux_loss(aux_real, y_real, cfg.aux_weight)
                    )
                    loss_d.backward()
                    real_mean, fake_mean = logits[:n].mean(), logits[n:].mean()
                opt_d.step()
            # ---- G step: D's own module, so DDP does not all-reduce D's gradients
            z, y_fake = noise(step, 5)
            with autocast:
                x_fake = g_train(z, y_fake)
                logits_f, aux_f = _unwrap(d_train)(augment(x_fake.float(), step_generator(cfg.seed, step, 20)), y_fake)
            loss_g = g_loss_fn(cfg.loss, logits_f.float()) + aux_loss(aux_f, y_fake, cfg.aux_weight)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if g_ema is not None:
                update_ema(g_ema, g, min(cfg.ema, (1 + step) / (10 + step)))
            step += 1
            window_images += cfg.batch_size * cfg.d_steps
            last = {
                "d_loss": float(loss_d.detach()),
                "g_loss": float(loss_g.detach()),
                "d_real": float(real_mean.detach()),
                "d_fake": float(fake_mean.detach()),
            }
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.time()
                rate = window_images / max(now - window_t, 1e-9)
                window_t, window_images = now, 0
                if dist_info.main:
                    append_jsonl(
                        run_dir / "metrics.jsonl",
                        {"step": step, **last, "images_per_s": rate, "elapsed_s": now - t_start},
                    )
            if prog:
                prog.update(
                    task,
                    completed=step,
                    info=(f"D {last['d_loss']:.3f}  G {last['g_loss']:.3f}  {rate:,.0f} img/s"),
                )
            if step % cfg.checkpoint_every == 0:
                checkpoint()
            if step % cfg.sample_every == 0:
                samples()
            if any_rank(dist_info, time.time() > deadline):
                if dist_info.main and progress:
                    console.print(f"time budget of {cfg.max_minutes} min reached at step {step}")
                break
    except KeyboardInterrupt:
        checkpoint()
        raise
    finally:
        if prog:
            prog.stop()
    checkpoint()
    samples()
    barrier(dist_info)
    elapsed = time.time() - t_start
    steps_done = step - start_step
    return {
        "step": step,
        "steps_this_run": steps_done,
        "seconds": elapsed,
        "images_per_s": steps_done * cfg.batch_size * cfg.d_steps / max(elapsed, 1e-9),
        "run_dir": str(run_dir),
        "rank": dist_info.rank,
        "world": dist_info.world,
        "parameter_digest": parameter_digest(g, d),
    }
