"""The GAN training loop: class-balanced batches, DiffAugment, hinge/BCE, EMA, resume, DDP."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress, TaskID, TextColumn

from augment.core.atomic import append_jsonl, read_jsonl, remove_stale_temps, save_torch, write_text
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console, make_progress
from augment.core.rundir import (
    CHECKPOINT,
    RunInterrupted,
    load_checkpoint,
    open_run,
    record_run,
    save_checkpoint,
)
from augment.core.runtime import (
    Dist,
    all_ranks_mean,
    any_rank,
    barrier,
    data_fingerprint,
    init_distributed,
    parameter_digest,
    pick_device,
    seed_everything,
    step_generator,
)
from gan.config import ADA_IMAGES, ADA_INTERVAL, GanConfig
from gan.diffaugment import diff_augment
from gan.models import Discriminator, Generator, normalise_exposure, standardise
from gan.plots import plot_losses, plot_selection
from gan.sample import BEST, save_sample_grid
from gan.validation import real_splits, score_generator, val_fingerprint


def generator_kwargs(cfg: GanConfig, num_classes: int) -> dict[str, Any]:
    """What rebuilds the generator from a checkpoint (``gan.sample.load_generator``)."""
    return {
        "num_classes": num_classes,
        "size": cfg.size,
        "channels": cfg.channels,
        "z_dim": cfg.z_dim,
        "width": cfg.g_width,
        "cond_bn": cfg.cond_bn,
        "exposure": cfg.exposure_norm,
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


def aux_loss(
    class_logits: torch.Tensor | None, labels: torch.Tensor, weight: float, scale: float = 1.0
) -> torch.Tensor | float:
    """The AC-GAN term: D's class head on real images (D step) or on fakes (G step), × ``scale`` (the
    transitional ramp; at 0 the term stays in the graph, so DDP sees the head's parameters used)."""
    if class_logits is None or weight <= 0:
        return 0.0
    return scale * weight * F.cross_entropy(class_logits.float(), labels)


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


def _memory_format(cfg: GanConfig) -> torch.memory_format:
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


def _unwrap(m: torch.nn.Module) -> torch.nn.Module:
    return m.module if hasattr(m, "module") else m


# --------------------------------------------------------------------------- the run's state
@dataclass
class GanState:
    """Everything the step functions read and change: models, optimizers, EMA G, batches, step."""

    cfg: GanConfig
    run_dir: Path
    dist: Dist
    device: str
    classes: list[str]
    config: dict[str, Any]  # what config.json and the checkpoint record
    g: Generator
    d: Discriminator
    g_ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    plan: BatchPlan
    images: torch.Tensor  # uint8 training images (on the GPU once training starts there)
    labels: torch.Tensor
    step: int = 0
    val: FaceDataset | None = None  # the validation split best-checkpoint selection scores on
    judge: Any = None  # the classifier that scores selection (loaded when selection is due)
    best_score: float = -math.inf
    color_p: float = 1.0  # DiffAugment's colour probability now (ADA moves it when ada_target > 0)
    ada_signs: list[float] = field(default_factory=list)  # E[sign D(real)] of the steps since p last moved
    lecam_ema: list[float] = field(default_factory=lambda: [0.0, 0.0])  # moving averages of D(real), D(fake)
    # What the steps call: G and D themselves, or their DDP wrappers in a torchrun job.
    g_train: torch.nn.Module = field(init=False)
    d_train: torch.nn.Module = field(init=False)

    def __post_init__(self) -> None:
        self.g_train, self.d_train = self.g, self.d

    @property
    def rows(self) -> slice:
        """This rank's slice of every global batch."""
        per_rank = self.cfg.batch_size // self.dist.world
        return slice(self.dist.rank * per_rank, (self.dist.rank + 1) * per_rank)

    @property
    def memory_format(self) -> torch.memory_format:
        return _memory_format(self.cfg)

    @property
    def cond_scale(self) -> float:
        """How much of D's class terms count at this step (transitional conditioning)."""
        return min(1.0, self.step / self.cfg.cond_ramp) if self.cfg.cond_ramp > 0 else 1.0

    def autocast(self) -> torch.autocast:
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.startswith("cuda") and self.cfg.amp)


def new_state(
    cfg: GanConfig, train: FaceDataset, dist: Dist, device: str, run_dir: Path, config: dict[str, Any]
) -> GanState:
    """Fresh models (seeded by ``cfg.seed``), their optimizers and the batch plan of ``train``."""
    seed_everything(cfg.seed)
    classes = list(train.classes)
    g, d = build_models(cfg, len(classes))
    if cfg.exposure_norm:
        g.set_exposure(torch.from_numpy(train.images), torch.from_numpy(train.labels), step_generator(cfg.seed, 0, 6))
    g_ema = copy.deepcopy(g).eval() if cfg.ema > 0 else None
    g.to(device, memory_format=_memory_format(cfg))
    d.to(device, memory_format=_memory_format(cfg))
    if g_ema is not None:
        g_ema.to(device)
    return GanState(
        cfg=cfg,
        run_dir=run_dir,
        dist=dist,
        device=device,
        classes=classes,
        config=config,
        g=g,
        d=d,
        g_ema=g_ema,
        opt_g=torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2)),
        opt_d=torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2)),
        plan=BatchPlan(train.labels, len(classes), cfg.batch_size, cfg.seed, cfg.balanced),
        images=torch.from_numpy(train.images),
        labels=torch.from_numpy(train.labels),
        color_p=cfg.color_p,
    )


# --------------------------------------------------------------------------- batch draws
def real_batch(st: GanState, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's real images in [-1, 1] (flipped at random) and their labels for step key ``s``."""
    idx = st.plan.indices(s)[st.rows]
    x = _to_float(st.images[idx.to(st.images.device)].to(st.device, non_blocking=True))
    if st.cfg.flip:
        x = _flip(x, step_generator(st.cfg.seed, s, 3))
    if st.cfg.exposure_norm:
        x = normalise_exposure(x)
    return x.contiguous(memory_format=st.memory_format), st.labels[idx.to(st.device)]


def noise_batch(st: GanState, s: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's noise (from random stream ``stream``) and fake labels for step key ``s``."""
    gen = step_generator(st.cfg.seed, s, stream)
    z = torch.randn(st.cfg.batch_size, st.cfg.z_dim, generator=gen)[st.rows].to(st.device)
    y = st.plan.fake_labels(s)[st.rows].to(st.device)
    return z, y


def _augment(st: GanState, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    return diff_augment(x, st.cfg.diffaugment, generator=gen, color_p=st.color_p) if st.cfg.diffaugment else x


def lecam_loss(
    st: GanState, real: torch.Tensor | None = None, fake: torch.Tensor | None = None
) -> torch.Tensor | float:
    """LeCam regularisation (Tseng et al. 2021): D's outputs on real faces are pulled no higher than the
    moving average of its fake outputs, and fake outputs no lower than that of its real ones. Either half
    alone when only its logits are given (the BatchNorm D's separate real and fake passes)."""
    if st.cfg.lecam_weight <= 0:
        return 0.0
    ema_real, ema_fake = st.lecam_ema
    reg: torch.Tensor | float = 0.0
    if real is not None:
        reg = reg + F.relu(real - ema_fake).pow(2).mean()
    if fake is not None:
        reg = reg + F.relu(ema_real - fake).pow(2).mean()
    return st.cfg.lecam_weight * reg


def update_lecam(st: GanState, real_mean: torch.Tensor, fake_mean: torch.Tensor, decay: float = 0.99) -> None:
    """The moving averages of D's real and fake outputs, over every rank's slice (the same on all ranks,
    whatever their number)."""
    if st.cfg.lecam_weight > 0:
        r, f = all_ranks_mean(st.dist, real_mean.detach()), all_ranks_mean(st.dist, fake_mean.detach())
        st.lecam_ema = [decay * st.lecam_ema[0] + (1 - decay) * r, decay * st.lecam_ema[1] + (1 - decay) * f]


# --------------------------------------------------------------------------- the steps
def _d_backward_separate(
    st: GanState, real: torch.Tensor, y_real: torch.Tensor, fake: torch.Tensor, y_fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The textbook D has BatchNorm: real and fake go through it as separate batches (one mixed batch
    would let BN statistics give the fakes away), each with its own backward."""
    cfg, scale = st.cfg, st.cond_scale
    with st.autocast():
        logits_r, aux = st.d_train(real, y_real, scale)
    loss_r = d_loss_real(cfg.loss, logits_r.float()) + aux_loss(aux, y_real, cfg.aux_weight, scale)
    (loss_r + lecam_loss(st, real=logits_r.float())).backward()
    with st.autocast():
        logits_f, _ = st.d_train(fake, y_fake, scale)
    loss_f = d_loss_fake(cfg.loss, logits_f.float())
    (loss_f + lecam_loss(st, fake=logits_f.float())).backward()
    return loss_r + loss_f, logits_r.float(), logits_f.float()


def _d_backward_joint(
    st: GanState, real: torch.Tensor, y_real: torch.Tensor, fake: torch.Tensor, y_fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch of [real | fake]: a single D forward per step (and one DDP all-reduce)."""
    cfg, scale = st.cfg, st.cond_scale
    with st.autocast():
        logits, aux = st.d_train(torch.cat([real, fake]), torch.cat([y_real, y_fake]), scale)
    logits = logits.float()
    n = real.shape[0]
    aux_real = aux[:n] if aux is not None else None
    loss = (
        d_loss_real(cfg.loss, logits[:n])
        + d_loss_fake(cfg.loss, logits[n:])
        + aux_loss(aux_real, y_real, cfg.aux_weight, scale)
    )
    (loss + lecam_loss(st, logits[:n], logits[n:])).backward()
    return loss, logits[:n], logits[n:]


def d_step(st: GanState, s: int) -> dict[str, torch.Tensor]:
    """One discriminator update on step key ``s``; returns its loss and mean real/fake logits."""
    x_real, y_real = real_batch(st, s)
    z, y_fake = noise_batch(st, s, 4)
    with torch.no_grad(), st.autocast():
        x_fake = st.g_train(z, y_fake, raw=True)
    gen_aug = step_generator(st.cfg.seed, s, 10 + st.dist.rank)
    real, fake = _augment(st, x_real, gen_aug), _augment(st, x_fake.float(), gen_aug)
    st.opt_d.zero_grad(set_to_none=True)
    backward = _d_backward_separate if st.cfg.d_batchnorm else _d_backward_joint
    loss, logits_r, logits_f = backward(st, real, y_real, fake, y_fake)
    st.opt_d.step()
    update_lecam(st, logits_r.mean(), logits_f.mean())
    return {"d_loss": loss, "d_real": logits_r.mean(), "d_fake": logits_f.mean(), "d_sign": logits_r.sign().mean()}


def g_step(st: GanState) -> torch.Tensor:
    """One generator update; D is called as its own module, so DDP does not all-reduce D's gradients."""
    cfg = st.cfg
    z, y_fake = noise_batch(st, st.step, 5)
    if cfg.ms_weight > 0:
        y_fake = paired_labels(y_fake)
    with st.autocast():
        x_fake = st.g_train(z, y_fake, raw=True)
        fake = _augment(st, x_fake.float(), step_generator(cfg.seed, st.step, 20))
        logits_f, aux_f = _unwrap(st.d_train)(fake, y_fake, st.cond_scale)
    loss = g_loss_fn(cfg.loss, logits_f.float()) + aux_loss(aux_f, y_fake, cfg.aux_weight, st.cond_scale)
    if cfg.ms_weight > 0:  # off: no extra op in the step, and the digests stay the same
        loss = loss + mode_seeking_loss(x_fake.float(), z, cfg.ms_weight)
    st.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    st.opt_g.step()
    return loss


def paired_labels(y: torch.Tensor) -> torch.Tensor:
    """Mode seeking's pairs: row i + B/2 gets row i's class (an odd batch's last row keeps its own)."""
    h = len(y) // 2
    return torch.cat([y[:h], y[:h], y[2 * h :]])


def mode_seeking_loss(x: torch.Tensor, z: torch.Tensor, weight: float) -> torch.Tensor:
    """MSGAN's term (Mao et al. 2019): weight / (mean |G(z1) - G(z2)| / mean |z1 - z2| + 1e-5) over the
    pairs (i, i + B/2) of one class; large when G draws the same face from different noise. 0 when off.
    Each image is standardised first (its own mean and spread), so G cannot meet it by exposure alone:
    measured on the demo faces, raw pixel distances were met by very dark and very bright faces."""
    h = len(x) // 2
    if weight <= 0 or h == 0:
        return x.new_zeros(())
    flat = standardise(x.flatten(1))
    ratio = (flat[:h] - flat[h : 2 * h]).abs().mean() / (z[:h] - z[h : 2 * h]).abs().mean()
    return weight / (ratio + 1e-5)


def ema_decay(cfg: GanConfig, step: int) -> float:
    """The EMA decay after ``step`` steps: warms up from 0.1 so early EMA weights follow G closely."""
    return min(cfg.ema, (1 + step) / (10 + step))


def ema_step(st: GanState) -> None:
    if st.g_ema is not None:
        update_ema(st.g_ema, st.g, ema_decay(st.cfg, st.step))


def ada_step(st: GanState, d_sign: torch.Tensor) -> None:
    """ADA's heuristic: every ADA_INTERVAL steps, raise the colour probability when D is too sure of the
    real faces (E[sign D(real)] above ``ada_target``: overfitting) and lower it otherwise (all ranks agree)."""
    cfg = st.cfg
    if cfg.ada_target <= 0:
        return
    st.ada_signs.append(float(all_ranks_mean(st.dist, d_sign.detach())))
    if len(st.ada_signs) >= ADA_INTERVAL:
        r_t = sum(st.ada_signs) / len(st.ada_signs)
        step = cfg.batch_size * len(st.ada_signs) / ADA_IMAGES
        st.color_p = min(1.0, max(0.0, st.color_p + float(np.sign(r_t - cfg.ada_target)) * step))
        st.ada_signs = []


# --------------------------------------------------------------------------- checkpoints, samples, logs
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


def save_samples(st: GanState) -> None:
    """A sample grid of the (EMA) generator and the loss plot (rank 0 only)."""
    if st.dist.main:
        save_sample_grid(
            st.g_ema if st.g_ema is not None else st.g,
            st.classes,
            st.run_dir / "samples" / f"step_{st.step:06d}.png",
            seed=st.cfg.seed,
            device=st.device,
        )
        plot_losses(read_jsonl(st.run_dir / "metrics.jsonl"), st.run_dir / "losses.png")


# --------------------------------------------------------------------------- best checkpoint
def selection_due(cfg: GanConfig, step: int) -> bool:
    """Every ``select_every`` steps, and at the last step, so the end of training is always a candidate
    (a run shorter than ``select_every`` steps selects nothing). A run later extended with a larger
    ``--steps`` keeps the score of its old last step: its best.pt may differ from an uninterrupted run's."""
    if cfg.select_every <= 0 or step <= 0 or cfg.select_every > cfg.steps:
        return False
    return step % cfg.select_every == 0 or step == cfg.steps


def prepare_selection(st: GanState, data: FaceDataset, val: FaceDataset, progress: bool) -> None:
    """When the run will reach a selection step: the validation split, the judge (every rank loads or
    trains it: a judge trained here trains on all ranks of a torchrun job) and the best score so far."""
    cfg = st.cfg
    if cfg.select_every <= 0 or cfg.select_every > cfg.steps or st.step >= cfg.steps:
        return
    if len(val) == 0:
        if st.dist.main and progress:
            console.print(f"{data.name}: no validation faces of the GAN's classes; best-checkpoint selection is off")
        return
    from classifier.inference import load_classifier
    from classifier.judge import get_judge, judge_columns

    st.val = val
    if cfg.judge:
        st.judge = load_classifier(cfg.judge, device=st.device)
    else:
        st.judge = get_judge(data, st.run_dir, None, st.device, progress and st.dist.main, kind="grading")
    judge_columns(st.judge[1], st.classes, fix="pass a judge trained on the generator's classes")
    barrier(st.dist)
    if (st.run_dir / BEST).exists():
        st.best_score = float(load_checkpoint(st.run_dir / BEST)["selection"]["score"])


def save_best(st: GanState, scores: dict[str, Any]) -> None:
    """best.pt: the sampling generator of this step (EMA when on) and its selection scores."""
    sampler = st.g_ema if st.g_ema is not None else st.g
    state = {
        "step": st.step,
        "g_ema": sampler.state_dict(),
        "classes": st.classes,
        "generator_kwargs": generator_kwargs(st.cfg, len(st.classes)),
        "config": st.config,
        "selection": scores,
    }
    save_torch(st.run_dir / BEST, state)


def select_step(st: GanState) -> None:
    """Score the sampling generator on the validation split (rank 0), log it to metrics.jsonl and
    selection.png, and keep it as best.pt when it beats the best so far."""
    if st.dist.main and st.judge is not None and st.val is not None:
        from classifier.judge import judge_dir_of

        sampler = st.g_ema if st.g_ema is not None else st.g
        was_training = sampler.training
        cfg = st.cfg
        scores = score_generator(
            sampler, st.judge, st.val, st.classes, cfg.select_per_class, cfg.select_seed, st.device
        )
        sampler.train(was_training)
        best = scores["score"] > st.best_score
        if best:
            st.best_score = scores["score"]
            save_best(st, scores)
        judge = judge_dir_of(st.run_dir, Path(cfg.judge) if cfg.judge else None, "grading")
        record = {"step": st.step, "selection": scores, "best": best, "judge": str(judge)}
        append_jsonl(st.run_dir / "metrics.jsonl", record)
        plot_selection(read_jsonl(st.run_dir / "metrics.jsonl"), st.run_dir / "selection.png")
    barrier(st.dist)


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
    log.last = {k: float(losses[k].detach()) for k in ("d_loss", "g_loss", "d_real", "d_fake", "d_sign")}
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


# --------------------------------------------------------------------------- setup, loop, teardown
def gan_splits(data: FaceDataset, cfg: GanConfig) -> tuple[FaceDataset, FaceDataset]:
    """The real training images minus the validation split (``gan.validation.real_splits``), and that
    split, of the chosen classes at the GAN's size and channels. Test is never read."""
    train, val = real_splits(data, cfg.val_fraction, cfg.classes)
    if train.size != cfg.size or train.channels != cfg.channels:
        from augment.core.resize import resize_dataset

        train, val = resize_dataset(train, cfg.size, cfg.channels), resize_dataset(val, cfg.size, cfg.channels)
    return train, val


def training_split(data: FaceDataset, cfg: GanConfig) -> FaceDataset:
    """What the generator trains on: real train minus validation, at the GAN's size and channels."""
    return gan_splits(data, cfg)[0]


def resume(st: GanState, progress: bool) -> None:
    """Load the run folder's checkpoint into ``st`` (weights, optimizers, step)."""
    state = load_checkpoint(st.run_dir / CHECKPOINT)
    st.g.load_state_dict(state["g"])
    st.d.load_state_dict(state["d"])
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
        if st.step % cfg.checkpoint_every == 0:
            save_state(st)
        if st.step % cfg.sample_every == 0:
            save_samples(st)
        stop = out_of_time(st, log, progress)
        if selection_due(cfg, st.step) or (stop and st.judge is not None):
            select_step(st)  # a run stopped by --max-minutes is scored where it stopped
        if stop:
            break


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
    try:
        train_loop(st, log, progress)
    except KeyboardInterrupt as e:
        save_state(st)
        raise RunInterrupted(f"interrupted at step {st.step}; rerun the same command to resume") from e
    finally:
        if log.prog:
            log.prog.stop()
    return finish(st, log)
