"""The expression-transfer networks (StarGAN-shaped, sized for a CPU at 48 px).

G(face, target class): the target's one-hot maps concatenated to the face (StarGAN), an encoder (7x7 conv,
two stride-2 convs), residual blocks at a quarter of the size, a decoder (two stride-2 transposed convs) and
two heads: a colour image and an attention mask. The output is ``mask * face + (1 - mask) * colour``
(GANimation), so where the mask is 1 the face, its identity and background pass through unchanged.

D: spectral-norm stride-2 convs down to the noise D's base resolution, a 3x3 patch head averaged to one
adversarial logit per face, and a linear class head (logits over the classes).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from gan.models import base_resolution


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c, affine=True)


class ResidualBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            _norm(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            _norm(c),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TransferGenerator(nn.Module):
    """G(x, y): ``x`` faces in [-1, 1] (N, C, H, W), ``y`` target class indices (N,); H divisible by 4.
    ``upsample``: the decoder's two 2× steps, StarGAN's 4×4 transposed convs or nearest-neighbour upsampling
    then a 3×3 conv (Odena et al. 2016: no checkerboard pattern where G paints)."""

    def __init__(
        self,
        num_classes: int,
        size: int = 48,
        channels: int = 1,
        width: int = 32,
        res_blocks: int = 4,
        upsample: str = "transposed",
    ):
        super().__init__()
        self.num_classes, self.size, self.channels = num_classes, size, channels
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(channels + num_classes, w, 7, 1, 3, bias=False),
            _norm(w),
            nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False),
            _norm(2 * w),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False),
            _norm(4 * w),
            nn.ReLU(inplace=True),
        )
        self.blocks = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(res_blocks)])
        self.decoder = nn.Sequential(
            *_up(4 * w, 2 * w, upsample),
            _norm(2 * w),
            nn.ReLU(inplace=True),
            *_up(2 * w, w, upsample),
            _norm(w),
            nn.ReLU(inplace=True),
        )
        self.colour = nn.Conv2d(w, channels, 7, 1, 3)
        self.mask = nn.Conv2d(w, 1, 7, 1, 3)

    def parts(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """The colour image (tanh) and the attention mask (sigmoid; 1 keeps the input)."""
        maps = nn.functional.one_hot(y, self.num_classes).to(x.dtype)[:, :, None, None]
        h = torch.cat([x, maps.expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        h = self.decoder(self.blocks(self.encoder(h)))
        return torch.tanh(self.colour(h)), torch.sigmoid(self.mask(h))

    def forward(self, x: Tensor, y: Tensor, with_mask: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        colour, mask = self.parts(x, y)
        out = blend(x, colour, mask)
        return (out, mask) if with_mask else out


def _up(c_in: int, c_out: int, how: str) -> list[nn.Module]:
    """One 2× upsampling step of G's decoder ('transposed' or 'nearest')."""
    if how == "transposed":
        return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)]
    if how == "nearest":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)]
    raise ValueError(f"upsample must be 'transposed' or 'nearest', got {how!r}")


def blend(x: Tensor, colour: Tensor, mask: Tensor) -> Tensor:
    """GANimation's output: the input where the mask is 1, the painted colour where it is 0."""
    return mask * x + (1 - mask) * colour


class TransferDiscriminator(nn.Module):
    """D(x) -> (adversarial logit (N,), class logits (N, num_classes))."""

    def __init__(
        self, num_classes: int, size: int = 48, channels: int = 1, width: int = 64, spectral_norm: bool = True
    ) -> None:
        super().__init__()
        s0, n_blocks = base_resolution(size)

        def sn(m: nn.Module) -> nn.Module:
            return _spectral_norm(m) if spectral_norm else m

        layers: list[nn.Module] = []
        c_in = channels
        for i in range(n_blocks):
            c_out = min(width * 2**i, 512)
            layers += [sn(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.adv = sn(nn.Conv2d(c_in, 1, 3, 1, 1))
        # No spectral norm on the class head: capped at norm 1 its logits stay near 0 and its cross-entropy at
        # ln K (chance), so G got no expression signal and learned to return its input.
        self.cls = nn.Linear(c_in * s0 * s0, num_classes)
        self.mbstd_group = 4  # set by gan.checkpoint.prepare_training; this D has no minibatch std

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.adv(h).mean(dim=(1, 2, 3)), self.cls(h.flatten(1))


def parameter_count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
