"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

Augmenting both real and fake images with the *same* differentiable transforms, in both the D and the G
step, keeps D from overfitting a tiny training set (some FER2013 classes have ~400 images) without leaking
the augmentations into G's output. Fully batched (no per-sample Python loops); every sample gets its own
random parameters. Follows the official implementation (github.com/mit-han-lab/data-efficient-gans).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["POLICIES", "diff_augment", "parse_policy"]

_Gen = torch.Generator | None


def _rand(x: Tensor, generator: _Gen) -> Tensor:
    """One uniform [0, 1) number per sample, shaped (N, 1, 1, 1) for broadcasting."""
    n = x.size(0)
    return _on_x(x, generator, lambda dev: torch.rand(n, 1, 1, 1, dtype=x.dtype, device=dev, generator=generator))


def _randint(x: Tensor, generator: _Gen, low: int, high: int) -> Tensor:
    """One integer in [low, high) per sample, shaped (N, 1, 1)."""
    return _on_x(x, generator, lambda dev: torch.randint(low, high, (x.size(0), 1, 1), device=dev, generator=generator))


def _on_x(x: Tensor, generator: _Gen, draw) -> Tensor:
    """Draw where the generator lives (a CPU generator drives CUDA images too, and a seed gives the same
    augmentation on every device), then move the few numbers to ``x``'s device."""
    return draw(generator.device if generator is not None else x.device).to(x.device)


def rand_brightness(x: Tensor, generator: _Gen = None) -> Tensor:
    """Add uniform(-0.5, 0.5) to every pixel."""
    return x + (_rand(x, generator) - 0.5)


def rand_saturation(x: Tensor, generator: _Gen = None) -> Tensor:
    """Scale the distance from the per-pixel channel mean by uniform(0, 2); a no-op for 1 channel."""
    if x.size(1) == 1:
        return x
    x_mean = x.mean(dim=1, keepdim=True)
    return (x - x_mean) * (_rand(x, generator) * 2) + x_mean


def rand_contrast(x: Tensor, generator: _Gen = None) -> Tensor:
    """Scale the distance from the per-image mean by uniform(0.5, 1.5)."""
    x_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - x_mean) * (_rand(x, generator) + 0.5) + x_mean


def rand_translation(x: Tensor, generator: _Gen = None, ratio: float = 0.125) -> Tensor:
    """Shift each image by an integer in [-ratio*size, ratio*size] per axis, filling with zeros.

    Implemented as a gather from a 1-pixel zero-padded copy (indices past the border are clamped onto the
    zero padding), as in the official code; exact and differentiable w.r.t. ``x``.
    """
    n, c, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dev = x.device
    ty = _randint(x, generator, -shift_h, shift_h + 1)
    tx = _randint(x, generator, -shift_w, shift_w + 1)
    rows = torch.clamp(torch.arange(h, device=dev).view(1, h, 1) + ty + 1, 0, h + 1)  # (n, h, 1)
    cols = torch.clamp(torch.arange(w, device=dev).view(1, 1, w) + tx + 1, 0, w + 1)  # (n, 1, w)
    index = (rows * (w + 2) + cols).view(n, 1, h * w).expand(n, c, h * w)
    x_pad = F.pad(x, (1, 1, 1, 1)).reshape(n, c, (h + 2) * (w + 2))
    return torch.gather(x_pad, 2, index).view(n, c, h, w)


def rand_cutout(x: Tensor, generator: _Gen = None, ratio: float = 0.5) -> Tensor:
    """Zero a (ratio*H) x (ratio*W) square at a random centre per image (clipped at the image border)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dev = x.device
    # Same centre distribution as the official code; the square may hang over the border.
    oy = _randint(x, generator, 0, h + (1 - ch % 2)) - ch // 2
    ox = _randint(x, generator, 0, w + (1 - cw % 2)) - cw // 2
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = (rows >= oy) & (rows < oy + ch) & (cols >= ox) & (cols < ox + cw)  # (n, h, w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, list[Callable[[Tensor, _Gen], Tensor]]] = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "translation": [rand_translation],
    "cutout": [rand_cutout],
}


def parse_policy(policy: str) -> list[str]:
    """Split a comma-separated policy into names; ``""``/``"none"`` give ``[]``; unknown names raise."""
    names = [p.strip().lower() for p in policy.split(",") if p.strip()]
    if names == ["none"]:
        return []
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown}; choose from {sorted(POLICIES)} or 'none'")
    return names


def diff_augment(
    x: Tensor, policy: str = "color,translation,cutout", generator: torch.Generator | None = None, color_p: float = 1.0
) -> Tensor:
    """Apply DiffAugment ``policy`` to a batch ``x`` (N, C, H, W), each sample with its own random draws.

    Apply the same policy to real and fake images in both the D and the G step. All randomness comes from
    ``generator`` when given (a CPU generator works for images on any device), for reproducibility.

    ``color_p`` < 1 gives each sample the colour ops with that probability only, so D also sees faces at
    their true brightness and contrast: an augmentation applied every time can leak into G (ADA, Karras et al.
    2020, found p below about 0.8 does not). At 1 no extra random number is drawn (runs replay exactly).
    """
    for name in parse_policy(policy):
        if name == "color" and color_p < 1:
            x = _sometimes(x, generator, color_p, POLICIES[name])
            continue
        for fn in POLICIES[name]:
            x = fn(x, generator)
    return x


def _sometimes(x: Tensor, generator: _Gen, p: float, ops: list[Callable[[Tensor, _Gen], Tensor]]) -> Tensor:
    """``ops`` applied to a random share ``p`` of the samples (for p > 0 every op draws for every sample, so
    the random stream does not depend on which samples were chosen)."""
    if p <= 0:
        return x
    chosen = _rand(x, generator) < p
    y = x
    for fn in ops:
        y = fn(y, generator)
    return torch.where(chosen, y, x)
