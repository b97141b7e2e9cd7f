from __future__ import annotations

import pytest
import torch

from gan.diffaugment import (
    diff_augment,
    parse_policy,
    rand_brightness,
    rand_contrast,
    rand_cutout,
    rand_saturation,
    rand_translation,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("policy", ["", "none", "color", "translation", "cutout", "color,translation,cutout"])
@pytest.mark.parametrize("shape", [(4, 1, 48, 48), (3, 3, 32, 32), (2, 1, 17, 23)])
def test_shape_preserved(policy: str, shape: tuple[int, ...]) -> None:
    x = torch.randn(*shape)
    out = diff_augment(x, policy, generator=_gen())
    assert out.shape == x.shape and out.dtype == x.dtype


@pytest.mark.parametrize("policy", ["", "none", " none ", ","])
def test_identity(policy: str) -> None:
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(diff_augment(x, policy), x)


@pytest.mark.parametrize("policy", ["colour", "color,flip", "translation,none"])
def test_unknown_policy_raises(policy: str) -> None:
    with pytest.raises(ValueError):
        diff_augment(torch.randn(1, 1, 8, 8), policy)


def test_parse_policy() -> None:
    assert parse_policy("Color, translation") == ["color", "translation"]
    assert parse_policy("none") == []


def test_translation_exact_integer_shift() -> None:
    n, h, w = 256, 16, 16
    x = torch.zeros(n, 1, h, w)
    x[:, 0, 7, 9] = 1.0
    out = rand_translation(x, _gen(1))
    max_shift = 2  # int(16 * 0.125 + 0.5)
    seen = set()
    for i in range(n):
        nz = out[i, 0].nonzero()
        assert out[i].sum() == 1.0 and len(nz) == 1  # pixel moved, value untouched, no interpolation
        dy, dx = nz[0, 0].item() - 7, nz[0, 1].item() - 9
        assert abs(dy) <= max_shift and abs(dx) <= max_shift
        seen.add((dy, dx))
    assert len(seen) == (2 * max_shift + 1) ** 2  # all shifts occur, independently per sample


def test_translation_preserves_content_with_zero_border() -> None:
    n, c, h, w = 64, 3, 24, 24
    x = torch.rand(n, c, h, w) + 1.0  # strictly positive, so padding zeros are identifiable
    out = rand_translation(x, _gen(2))
    for i in range(n):
        rows = (out[i, 0] != 0).any(1).nonzero().flatten()
        cols = (out[i, 0] != 0).any(0).nonzero().flatten()
        r0, r1, c0, c1 = rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1
        # Determine the shift from the non-zero window, then check content equality in the overlap.
        dy = r0 if r0 > 0 else -(h - r1)
        dx = c0 if c0 > 0 else -(w - c1)
        assert abs(dy) <= 3 and abs(dx) <= 3
        src = x[i, :, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
        assert torch.equal(out[i, :, r0:r1, c0:c1], src)
        assert (out[i] == 0).sum() == c * (h * w - (r1 - r0) * (c1 - c0))


def test_cutout_zeroes_square() -> None:
    n, h, w = 200, 16, 16
    x = torch.ones(n, 2, h, w)
    out = rand_cutout(x, _gen(3))
    assert torch.equal(out[:, 0], out[:, 1])  # same mask for all channels
    full = 0
    for i in range(n):
        zero = out[i, 0] == 0
        rows = zero.any(1).nonzero().flatten()
        cols = zero.any(0).nonzero().flatten()
        hh, ww = len(rows), len(cols)
        assert 1 <= hh <= 8 and 1 <= ww <= 8
        # Contiguous rectangle, fully zero, nothing else touched.
        assert rows.max() - rows.min() + 1 == hh and cols.max() - cols.min() + 1 == ww
        assert zero.sum() == hh * ww
        # Clipped only at the image border.
        assert hh == 8 or rows.min() == 0 or rows.max() == h - 1
        assert ww == 8 or cols.min() == 0 or cols.max() == w - 1
        full += int(hh == 8 and ww == 8)
    assert full > n // 4


def test_brightness_shifts_mean() -> None:
    x = torch.rand(512, 1, 8, 8)
    out = rand_brightness(x, _gen(4))
    delta = out - x
    per_sample = delta.flatten(1)
    # Constant offset per sample in [-0.5, 0.5), independent across samples.
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-6)
    off = per_sample[:, 0]
    assert off.min() >= -0.5 and off.max() < 0.5 and off.std() > 0.2
    assert abs(off.mean().item()) < 0.05


def test_contrast_scales_std_keeps_mean() -> None:
    x = torch.rand(512, 1, 8, 8)
    out = rand_contrast(x, _gen(5))
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)))
    ratio = out.flatten(1).std(1) / x.flatten(1).std(1)
    assert ratio.min() >= 0.5 - 1e-5 and ratio.max() <= 1.5 + 1e-5 and ratio.std() > 0.2


def test_saturation() -> None:
    gray = torch.rand(4, 1, 8, 8)
    assert torch.equal(rand_saturation(gray, _gen()), gray)
    x = torch.rand(256, 3, 8, 8)
    out = rand_saturation(x, _gen(6))
    torch.testing.assert_close(out.mean(1), x.mean(1))  # per-pixel channel mean is preserved
    ratio = (out - out.mean(1, keepdim=True)).flatten(1).norm(dim=1) / (
        (x - x.mean(1, keepdim=True)).flatten(1).norm(dim=1)
    )
    assert ratio.min() >= 0 and ratio.max() <= 2 + 1e-5 and ratio.std() > 0.3


def test_gradients_flow() -> None:
    x = torch.randn(8, 3, 32, 32, requires_grad=True)
    out = diff_augment(x, generator=_gen(7))
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # Translation is a permutation plus zeros: its gradient is exactly the indicator of surviving pixels.
    y = torch.rand(4, 1, 16, 16, requires_grad=True)
    rand_translation(y, _gen(8)).sum().backward()
    assert set(y.grad.unique().tolist()) <= {0.0, 1.0}


def test_reproducible_with_generator() -> None:
    x = torch.randn(16, 3, 32, 32)
    a = diff_augment(x, generator=_gen(9))
    b = diff_augment(x, generator=_gen(9))
    c = diff_augment(x, generator=_gen(10))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_per_sample_independence() -> None:
    x = torch.full((32, 1, 16, 16), 0.5)
    out = diff_augment(x, "color,translation,cutout", generator=_gen(11))
    flat = out.flatten(1)
    assert len({tuple(row.tolist()) for row in flat}) == 32


@pytest.mark.parametrize("p", [0.0, 0.3, 0.7])
def test_color_p_leaves_the_rest_of_the_samples_at_their_true_brightness(p: float) -> None:
    x = torch.rand(4000, 1, 6, 6) * 0.2 - 0.1  # faint texture around 0
    out = diff_augment(x, "color", generator=_gen(3), color_p=p)
    untouched = (out == x).flatten(1).all(1).float().mean().item()
    assert abs(untouched - (1 - p)) < 0.03  # a share 1 - p kept exactly
    moved = (out - x).flatten(1).mean(1).abs()
    assert (moved[(out != x).flatten(1).any(1)] > 0).all()  # the others are shifted or rescaled


def test_color_p_of_1_replays_the_default_exactly() -> None:
    x = torch.randn(16, 1, 12, 12)
    assert torch.equal(diff_augment(x, generator=_gen(5), color_p=1.0), diff_augment(x, generator=_gen(5)))
