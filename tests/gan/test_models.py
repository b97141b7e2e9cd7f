from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrize

from augment.core.runtime import count_parameters
from gan.config import recipe_config
from gan.models import (
    EXPOSURE_PAIRS,
    NORM_SPREAD,
    SUPPORTED_SIZES,
    Discriminator,
    Generator,
    base_resolution,
    exposure_stats,
    normalise_exposure,
)
from gan.state import build_models

K = 7


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _labels(n: int = 2) -> torch.Tensor:
    return torch.arange(n) % K


@pytest.mark.parametrize("size", SUPPORTED_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_shapes_and_range(size: int, channels: int) -> None:
    g = Generator(K, size=size, channels=channels, z_dim=16, width=8, embed_dim=8)
    z = g.sample_noise(2)
    assert z.shape == (2, 16)
    out = g(z, _labels())
    assert out.shape == (2, channels, size, size)
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("size", SUPPORTED_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_discriminator_shapes(size: int, channels: int, conditioning: str) -> None:
    d = Discriminator(K, size=size, channels=channels, width=8, conditioning=conditioning, aux_classifier=True)
    logit, cls = d(torch.randn(2, channels, size, size), _labels())
    assert logit.shape == (2,)
    assert cls is not None and cls.shape == (2, K)


def test_supported_sizes_and_base_resolution() -> None:
    assert SUPPORTED_SIZES == (32, 48, 64, 96, 128)
    assert base_resolution(48) == (6, 3)
    assert base_resolution(96) == (6, 4)
    assert base_resolution(32) == (4, 3)
    assert base_resolution(128) == (4, 5)


def test_generator_channel_schedule() -> None:
    g = Generator(K, size=48, width=16)
    assert g.c0 == 128 and g.s0 == 6
    assert [c.out_channels for c in g.convs] == [64, 32, 16]
    # Cap at 512 and never below width.
    g = Generator(K, size=128, width=64)
    assert g.c0 == 512
    assert [c.out_channels for c in g.convs] == [256, 128, 64, 64, 64]


def test_discriminator_channel_schedule() -> None:
    d = Discriminator(K, size=48, width=16, spectral_norm=False)
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64]
    assert d.feature_dim == 64
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in d.modules())


@pytest.mark.parametrize("size", [7, 28, 50, 256])
def test_unsupported_size_raises(size: int) -> None:
    with pytest.raises(ValueError):
        Generator(K, size=size)
    with pytest.raises(ValueError):
        Discriminator(K, size=size)


def test_bad_conditioning_raises() -> None:
    with pytest.raises(ValueError):
        Discriminator(K, conditioning="bogus")


def test_projection_vs_concat() -> None:
    x = torch.randn(4, 1, 48, 48)
    proj = Discriminator(K, width=8, conditioning="projection")
    concat = Discriminator(K, width=8, conditioning="concat")
    assert proj.embed is not None and concat.embed is None
    assert proj.features[0].in_channels == 1
    assert concat.features[0].in_channels == 1 + K
    for d in (proj, concat):
        d.eval()
        with torch.no_grad():
            a, cls = d(x, torch.zeros(4, dtype=torch.long))
            b, _ = d(x, torch.full((4,), 3, dtype=torch.long))
        assert cls is None
        # The label must change the logit in both conditioning modes.
        assert not torch.allclose(a, b)


@pytest.mark.parametrize("head", ["flatten", "sum"])
def test_projection_term_is_inner_product(head: str) -> None:
    d = Discriminator(K, width=8, spectral_norm=False, head=head)
    x, y = torch.randn(4, 1, 48, 48), torch.tensor([0, 1, 6, 2])
    logit, _ = d(x, y)
    h = d.hidden(x, y)
    if head == "sum":
        torch.testing.assert_close(h, d.features(x).sum(dim=(2, 3)))
    expected = d.fc(h).squeeze(1) + (d.embed.weight[y] * h).sum(1)
    torch.testing.assert_close(logit, expected)
    # The projection term depends on the label, the unconditional part does not.
    logit_other, _ = d(x, (y + 1) % K)
    assert not torch.allclose(logit, logit_other)


def test_minibatch_std_groups_never_mix_real_and_fake() -> None:
    d = Discriminator(K, width=8, spectral_norm=False)
    d.mbstd_group = 2
    real, fake = torch.randn(2, 1, 48, 48), torch.randn(2, 1, 48, 48)
    y = torch.tensor([0, 1])
    both = d.hidden(torch.cat([real, fake]), torch.cat([y, y]))
    torch.testing.assert_close(both[:2], d.hidden(real, y))  # real's features do not see the fakes
    torch.testing.assert_close(both[2:], d.hidden(fake, y))
    # A collapsed batch (identical samples) has zero std: D can tell it from a varied one.
    same = d.hidden(real[:1].repeat(2, 1, 1, 1), y)
    assert not torch.allclose(same[0], d.hidden(real, y)[0])


def test_cond_bn_label_dependence() -> None:
    g = Generator(K, width=8, cond_bn=True)
    # Start as identity affine.
    assert torch.equal(g.norms[0].gamma.weight, torch.ones_like(g.norms[0].gamma.weight))
    assert torch.equal(g.norms[0].beta.weight, torch.zeros_like(g.norms[0].beta.weight))
    g.eval()
    z = g.sample_noise(1).repeat(2, 1)
    with torch.no_grad():
        out = g(z, torch.tensor([0, 5]))
    assert not torch.allclose(out[0], out[1])
    # Per-class scales modulate: perturb class 5 only and class 0's output is unchanged.
    with torch.no_grad():
        for norm in g.norms:
            norm.gamma.weight[5] += 0.5
        out2 = g(z, torch.tensor([0, 5]))
    torch.testing.assert_close(out2[0], out[0])
    assert not torch.allclose(out2[1], out[1])


def test_plain_generator_label_dependence() -> None:
    g = Generator(K, width=8).eval()
    z = g.sample_noise(1).repeat(2, 1)
    with torch.no_grad():
        out = g(z, torch.tensor([0, 5]))
    assert not torch.allclose(out[0], out[1])


def test_spectral_norm_toggle() -> None:
    on = Discriminator(K, width=8, spectral_norm=True, aux_classifier=True)
    off = Discriminator(K, width=8, spectral_norm=False, aux_classifier=True)
    kinds = (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding)
    on_layers = [m for m in on.modules() if isinstance(m, kinds)]
    assert len(on_layers) == 3 + 2 + 3  # 3 convs (48x48 -> 6x6), head conv + dense, fc, embed, aux head
    assert all(parametrize.is_parametrized(m, "weight") for m in on_layers)
    assert not any(parametrize.is_parametrized(m) for m in off.modules())
    assert any("parametrizations" in n for n, _ in on.named_parameters())
    assert not any("parametrizations" in n for n, _ in off.named_parameters())
    # Same trainable parameter count either way (SN only adds buffers).
    assert count_parameters(on) == count_parameters(off)


def test_generator_init() -> None:
    g = Generator(K, width=8)
    w = torch.cat([c.weight.flatten() for c in g.convs])
    assert abs(w.std().item() - 0.02) < 0.005
    bn_w = torch.cat([n.weight for n in g.norms])
    assert abs(bn_w.mean().item() - 1.0) < 0.01


def test_determinism() -> None:
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        g = Generator(K, width=8)
        d = Discriminator(K, width=8)
        z = g.sample_noise(3, generator=torch.Generator().manual_seed(7))
        y = torch.tensor([0, 3, 6])
        x = g(z, y)
        outs.append((g.state_dict(), x, d(x, y)[0]))
    sd1, x1, l1 = outs[0]
    sd2, x2, l2 = outs[1]
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    assert torch.equal(x1, x2)
    assert torch.equal(l1, l2)


@pytest.mark.parametrize("cond_bn", [False, True])
def test_backward_through_d_of_g(cond_bn: bool) -> None:
    g = Generator(K, width=8, cond_bn=cond_bn)
    d = Discriminator(K, width=8, aux_classifier=True)
    y = _labels(4)
    logit, cls = d(g(g.sample_noise(4), y), y)
    loss = -logit.mean() + torch.nn.functional.cross_entropy(cls, y)
    loss.backward()
    for name, p in g.named_parameters():
        assert p.grad is not None, name
    assert g.convs[0].weight.grad.abs().sum() > 0
    assert g.embed.weight.grad.abs().sum() > 0


def test_classic_recipe_builds_the_textbook_dcgan() -> None:
    g, d = build_models(recipe_config("classic"), K)
    assert g.width == 64 and not g.cond_bn
    assert d.width == 64 and d.conditioning == "concat" and not d.spectral_norm
    assert not d.minibatch_std and not d.aux_classifier
    conv, bn = torch.nn.Conv2d, torch.nn.BatchNorm2d
    layers = [type(m) for m in d.features if isinstance(m, (conv, bn))]
    assert layers == [conv] + [conv, bn] * (len(layers) // 2)  # BN after every conv but the first
    assert not any(parametrize.is_parametrized(m) for m in d.modules())
    x = g(g.sample_noise(2), _labels())
    assert x.shape == (2, 1, 48, 48)
    logit, cls = d(x, _labels())
    assert logit.shape == (2,) and cls is None
    assert count_parameters(g) > count_parameters(Generator(K, width=32))


def test_count_parameters() -> None:
    lin = torch.nn.Linear(3, 4)
    assert count_parameters(lin) == 16
    lin.bias.requires_grad_(False)
    assert count_parameters(lin) == 12


def test_normalised_faces_share_one_exposure() -> None:
    face = torch.rand(1, 1, 8, 8) * 0.4 - 0.2  # pixels well inside [-1, 1]: nothing clips
    dark, bright = face * 0.5 - 0.6, face * 1.5 + 0.3
    mean, spread = exposure_stats(normalise_exposure(torch.cat([face, dark, bright])))
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(spread, torch.full((3,), NORM_SPREAD))
    blank = normalise_exposure(torch.full((1, 1, 8, 8), 0.7))  # a blank FER2013 face stays finite
    torch.testing.assert_close(blank, torch.zeros_like(blank), atol=1e-4, rtol=0)


def test_an_exposure_generator_gives_each_sample_a_real_face_exposure_of_its_class() -> None:
    g = Generator(2, size=32, z_dim=16, width=8, embed_dim=8, exposure=True)
    assert g.exposure_pairs.shape == (2, EXPOSURE_PAIRS, 2)
    # class 0: dark, flat faces; class 1: bright, contrasty ones
    gen = torch.Generator().manual_seed(1)
    level = torch.cat([torch.empty(30).uniform_(lo, hi, generator=gen) for lo, hi in ((30, 70), (120, 160))])
    contrast = torch.cat([torch.empty(30).uniform_(lo, hi, generator=gen) for lo, hi in ((8, 14), (25, 40))])
    noise = torch.randn(60, 1, 32, 32, generator=gen)
    images = (level.view(-1, 1, 1, 1) + contrast.view(-1, 1, 1, 1) * noise).clamp(0, 255).round()
    images[:5] = 0  # blank images (FER2013 has some) lend no exposure: a sample would be a flat copy of one
    labels = torch.tensor([0] * 30 + [1] * 30)
    g.set_exposure(images.to(torch.uint8), labels, torch.Generator().manual_seed(0))
    real_mean, real_spread = exposure_stats(images.float() / 127.5 - 1)
    assert g.exposure_pairs[0, :, 1].min() > 0.01
    for k in (0, 1):  # every pair is one real face's (mean, spread), of its own class
        real = torch.stack([real_mean, real_spread], 1)[labels == k]
        assert ((g.exposure_pairs[k][:, None] - real[None]).abs().sum(-1).min(1).values < 1e-5).all()
    z, y = g.sample_noise(64), torch.tensor([0, 1] * 32)  # (train mode: an untrained G in eval draws flat faces)
    raw, out = g(z, y, raw=True), g(z, y)
    assert torch.equal(out, g(z, y))  # the pair is fixed by (z, y)
    mean, spread = exposure_stats(out)
    assert mean[y == 0].max() < -0.4 < mean[y == 1].min()  # the class sets the exposure, not the noise
    assert spread[y == 0].max() < 0.15 < spread[y == 1].min()
    assert not torch.equal(raw, out) and raw.min() >= -1 and raw.max() <= 1
    # each sample has one real face's exposure, of its class, picked by the noise: many faces are used
    for k in (0, 1):
        real = torch.stack([real_mean, real_spread], 1)[labels == k]
        dist = (torch.stack([mean, spread], 1)[y == k][:, None] - real[None]).abs().sum(-1)
        nearest = dist.min(1).values  # exact but for the pixels the clamp to [-1, 1] cuts
        assert nearest.median() < 0.005 and nearest.max() < 0.05 and len(set(dist.argmin(1).tolist())) > 12
