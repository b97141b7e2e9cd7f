"""The named steps of expression-transfer training: the batch draw, the D step, the G step, EMA.

Sources are the run's training faces (the real train split minus validation: ``gan.checkpoint.gan_splits``),
drawn class-balanced by the run's ``BatchPlan``; each source's target class is drawn uniformly among the
other classes, so targets are balanced too. Every draw is keyed by (seed, step, stream): exact resumes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from augment.core.runtime import step_generator
from gan.state import GanState
from gan.steps import _augment, _unwrap, d_loss_fake, d_loss_real, g_loss_fn, real_batch

TARGET_STREAM = 6  # the random stream of the target classes (gan.steps uses 1-5, 10+ and 20)
GUIDE_STREAM = 7  # the random stream of the guide's input noise


# --------------------------------------------------------------------------- losses
def cycle_loss(g: torch.nn.Module, translated: torch.Tensor, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """L1 of G(G(x, target), source) to x: translated back to its own class, a face is itself again."""
    return (g(translated, source) - x).abs().mean()


def identity_loss(g: torch.nn.Module, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """L1 of G(x, source) to x: asked for the class it already shows, G leaves the face unchanged."""
    return (g(x, source) - x).abs().mean()


def guide_loss(st: GanState, fake: torch.Tensor, target: torch.Tensor, key: int) -> torch.Tensor:
    """Cross-entropy of the frozen guide classifier on the translations, classed as their target. The guide
    sees them through a 3×3 blur, so G cannot fool it with a fine pattern and must move the face's shapes,
    and under the input noise it trained with (``train_noise``, drawn from step key ``key``): G follows the
    smoothed classifier. Faces in [-1, 1] are already the classifier's input scale
    (classifier.data.to_input); only size and channels are matched."""
    model, meta = st.guide
    x = F.avg_pool2d(fake, 3, stride=1, padding=1, count_include_pad=False)
    noise = float(meta.get("train_noise", 0.0))
    if noise > 0:
        gen = step_generator(st.cfg.seed, key, GUIDE_STREAM)
        x = x + noise * torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
    size, channels = int(meta["size"]), int(meta["channels"])
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if x.shape[1] != channels:
        x = x.repeat(1, channels, 1, 1) if x.shape[1] == 1 else x.mean(1, keepdim=True)
    return F.cross_entropy(model(x).float(), st.guide_columns[target])


def r1_penalty(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the squared gradient norm of D's real logits at the real faces."""
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


# --------------------------------------------------------------------------- batch draw
def target_labels(st: GanState, s: int, source: torch.Tensor) -> torch.Tensor:
    """Targets for this rank's sources at step key ``s``: uniform over the classes other than each source's."""
    k = len(st.classes)
    offsets = torch.randint(1, k, (st.cfg.batch_size,), generator=step_generator(st.cfg.seed, s, TARGET_STREAM))
    return (source + offsets[st.rows].to(source.device)) % k


def transfer_batch(st: GanState, s: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source faces in [-1, 1], their classes and their target classes for step key ``s``."""
    x, y = real_batch(st, s)
    return x, y, target_labels(st, s, y)


# --------------------------------------------------------------------------- steps
def transfer_d_step(st: GanState, s: int) -> dict[str, torch.Tensor]:
    """One D update: adversarial loss on real and translated faces (one DiffAugment draw for both), D's class
    loss on the real faces' own classes, R1 on the real faces."""
    cfg = st.cfg
    x, y, t = transfer_batch(st, s)
    with torch.no_grad(), st.autocast():
        fake = st.g_train(x, t).float()
    gen_aug = step_generator(cfg.seed, s, 10 + st.dist.rank)
    real, fake = _augment(st, x, gen_aug), _augment(st, fake, gen_aug)
    real = real.detach().requires_grad_(cfg.r1_weight > 0)
    st.opt_d.zero_grad(set_to_none=True)
    with st.autocast():
        adv, cls = st.d_train(torch.cat([real, fake]))
    adv, n = adv.float(), real.shape[0]
    loss = d_loss_real(cfg.loss, adv[:n]) + d_loss_fake(cfg.loss, adv[n:])
    d_cls = F.cross_entropy(cls[:n].float(), y)
    loss = loss + cfg.cls_weight * d_cls
    r1 = r1_penalty(adv[:n], real) if cfg.r1_weight > 0 else adv.new_zeros(())
    (loss + cfg.r1_weight / 2 * r1).backward()
    st.opt_d.step()
    real_logits = adv[:n].detach()
    return {
        "d_loss": loss,
        "d_real": real_logits.mean(),
        "d_fake": adv[n:].mean(),
        "d_sign": real_logits.sign().mean(),
        "d_cls": d_cls.detach(),
        "r1": r1,
    }


def transfer_g_step(st: GanState, s: int) -> dict[str, torch.Tensor]:
    """One G update on step key ``s``'s sources: fool D and be classed as the target, come back to the source
    (cycle), leave a face of the target's own class alone (identity), keep the mask open (mask weight)."""
    cfg = st.cfg
    x, y, t = transfer_batch(st, s)
    with st.autocast():
        fake, mask = st.g_train(x, t, with_mask=True)
        adv, cls = _unwrap(st.d_train)(_augment(st, fake.float(), step_generator(cfg.seed, s, 20)))
        adv_loss = g_loss_fn(cfg.loss, adv.float())
        cls_loss = F.cross_entropy(cls.float(), t)
        cyc = cycle_loss(st.g_train, fake, x, y) if cfg.cycle_weight > 0 else fake.new_zeros(())
        idt = identity_loss(st.g_train, x, y) if cfg.identity_weight > 0 else fake.new_zeros(())
    keep = (1 - mask.float()).mean()
    guide = guide_loss(st, fake.float(), t, s) if cfg.guide_weight > 0 else fake.new_zeros(())
    loss = adv_loss + cfg.cls_weight * cls_loss + cfg.cycle_weight * cyc + cfg.identity_weight * idt
    loss = loss + cfg.mask_weight * keep + cfg.guide_weight * guide
    st.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    st.opt_g.step()
    return {"g_loss": loss, "g_cls": cls_loss, "g_guide": guide, "cycle": cyc, "identity": idt, "mask_open": keep}
