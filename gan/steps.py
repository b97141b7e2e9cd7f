"""The named steps of GAN training: batch draws, the D step, the G step, EMA, ADA and LeCam."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from augment.core.runtime import all_ranks_mean, step_generator
from gan.config import ADA_IMAGES, ADA_INTERVAL, GanConfig
from gan.diffaugment import diff_augment
from gan.models import normalise_exposure, standardise
from gan.state import GanState


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


def _unwrap(m: torch.nn.Module) -> torch.nn.Module:
    return m.module if hasattr(m, "module") else m


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
