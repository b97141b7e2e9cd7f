"""Cheap class-conditional DCGAN networks for small face images (FER2013: 48x48 grayscale, 7 classes).

The networks are sized for CPU training on a tight budget: the ``width`` argument sets the base channel
count and every layer's FLOPs scale with ``width**2``. The defaults (width 32, projection discriminator with
spectral norm, minibatch std and a flatten head: a 3x3 conv and a dense layer over the last feature map)
follow SNGAN / BigGAN practice, which is both cheaper and more stable than the textbook conditional DCGAN
that the ``"classic"`` recipe (``gan.config.RECIPES``) builds for comparison.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

__all__ = [
    "SUPPORTED_SIZES",
    "ConditionalBatchNorm2d",
    "Discriminator",
    "Generator",
    "base_resolution",
    "expose",
    "normalise_exposure",
    "standardise",
]

#: Output size -> start resolution s0 of G (and end resolution of D). 48 and 96 are not powers of two,
#: so they start from 6x6 (6 -> 12 -> 24 -> 48) instead of 4x4.
_BASE_RES: dict[int, int] = {32: 4, 48: 6, 64: 4, 96: 6, 128: 4}
SUPPORTED_SIZES: tuple[int, ...] = tuple(sorted(_BASE_RES))
_MAX_CHANNELS = 512


def base_resolution(size: int) -> tuple[int, int]:
    """Return ``(s0, n_blocks)`` for an image size: start resolution and number of 2x up/down-samplings."""
    if size not in _BASE_RES:
        raise ValueError(f"unsupported image size {size}; supported sizes: {SUPPORTED_SIZES}")
    s0 = _BASE_RES[size]
    return s0, int(round(math.log2(size // s0)))


def _dcgan_init(module: nn.Module) -> None:
    """DCGAN init (Radford et al. 2016): N(0, 0.02) conv/linear weights, N(1, 0.02) BN scales, zero biases.

    Must run before spectral norm is attached (it re-parametrises ``weight``).
    """
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose scale/shift are looked up per class (de Vries et al. 2017; used by SNGAN/BigGAN's G).

    Lets the label modulate every layer of G at the cost of two embedding lookups. Initialised to the
    identity affine transform (gamma=1, beta=0) so it starts out as plain BN.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gamma = nn.Embedding(num_classes, num_features)
        self.beta = nn.Embedding(num_classes, num_features)
        nn.init.ones_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        out = self.bn(x)
        return out * self.gamma(y)[:, :, None, None] + self.beta(y)[:, :, None, None]


class _BatchNorm2d(nn.BatchNorm2d):
    """Plain BN that ignores the label, so G's blocks can call ``norm(x, y)`` uniformly."""

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:  # type: ignore[override]
        return super().forward(x)


#: Exposure normalisation (``gan-train --exposure-norm``): G learns faces of one brightness and contrast,
#: and each sample gets the (mean, spread) of a real face of its class, drawn from this many per class.
EXPOSURE_PAIRS = 512
NORM_SPREAD = 0.45  # the spread (std on the [-1, 1] scale) of a normalised face: a typical FER2013 face's
# Below this spread (about 6 grey levels) an image is blank, not a face (FER2013's train split holds 13): its
# exposure would turn a sample into a flat copy of it.
MIN_FACE_SPREAD = 0.05


def exposure_stats(x: Tensor) -> tuple[Tensor, Tensor]:
    """Each image's mean and spread (std, at least 0.01 so blank faces stay finite) on its own scale."""
    flat = x.flatten(1)
    return flat.mean(1), flat.std(1).clamp_min(0.01)


def standardise(x: Tensor) -> Tensor:
    """Each image with its own brightness and contrast removed: mean 0, spread 1 (any N x ... shape)."""
    mean, spread = exposure_stats(x)
    shape = (-1,) + (1,) * (x.dim() - 1)
    return (x - mean.view(shape)) / spread.view(shape)


def normalise_exposure(x: Tensor) -> Tensor:
    """Faces in [-1, 1] with their own brightness and contrast removed: mean 0, spread NORM_SPREAD."""
    return (standardise(x) * NORM_SPREAD).clamp(-1, 1)


def expose(x: Tensor, z: Tensor, y: Tensor, pairs: Tensor) -> Tensor:
    """Faces given the (mean, spread) of a real face of their class. The pair is picked by the noise's
    fine digits (the fraction of a large multiple of its sum), so it is fixed by (z, y) and unrelated to
    the face G draws from z."""
    u = torch.frac((z.detach().cpu().double().sum(1) * 7919.0).abs())  # float64 (MPS has none): on the CPU
    idx = (u * pairs.shape[1]).long().clamp(max=pairs.shape[1] - 1).to(y.device)
    mean, spread = pairs[y, idx].to(x.dtype).unbind(-1)
    return (standardise(x) * spread.view(-1, 1, 1, 1) + mean.view(-1, 1, 1, 1)).clamp(-1, 1)


class Generator(nn.Module):
    """Conditional DCGAN G: [z, embed(y)] -> Linear -> C0 x s0 x s0 -> (ConvT4x4/2, BN, ReLU)* -> conv3x3.

    Channels halve at every doubling of resolution (never below ``width``), so each block costs about the
    same; ``C0 = width * 2**n_blocks`` (capped at 512). Output is ``tanh`` in [-1, 1].
    """

    def __init__(
        self,
        num_classes: int,
        size: int = 48,
        channels: int = 1,
        z_dim: int = 128,
        width: int = 32,
        cond_bn: bool = False,
        embed_dim: int = 64,
        exposure: bool = False,
    ) -> None:
        super().__init__()
        s0, n_blocks = base_resolution(size)
        self.num_classes, self.size, self.channels = num_classes, size, channels
        self.z_dim, self.width, self.cond_bn, self.embed_dim = z_dim, width, cond_bn, embed_dim
        self.s0 = s0
        c0 = min(width * 2**n_blocks, _MAX_CHANNELS)
        self.c0 = c0

        def norm(c: int) -> nn.Module:
            return ConditionalBatchNorm2d(c, num_classes) if cond_bn else _BatchNorm2d(c)

        self.embed = nn.Embedding(num_classes, embed_dim)
        # No bias before BN: it would be cancelled by the mean subtraction anyway.
        self.fc = nn.Linear(z_dim + embed_dim, c0 * s0 * s0, bias=False)
        self.fc_norm = norm(c0)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c_in = c0
        for _ in range(n_blocks):
            c_out = max(c_in // 2, width)
            self.convs.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False))
            self.norms.append(norm(c_out))
            c_in = c_out
        self.to_img = nn.Conv2d(c_in, channels, 3, 1, 1)
        self.act = nn.ReLU(inplace=True)
        self.apply(_dcgan_init)
        self.exposure = exposure
        if exposure:  # (mean, spread) pairs of real faces per class, filled by gan-train (set_exposure)
            self.register_buffer("exposure_pairs", torch.zeros(num_classes, EXPOSURE_PAIRS, 2))

    def forward(self, z: Tensor, y: Tensor, raw: bool = False) -> Tensor:
        """Map noise ``z`` (N, z_dim) and labels ``y`` (N,) to images (N, channels, size, size) in [-1, 1].
        A generator trained on exposure-normalised faces gives them a real face's exposure unless ``raw``."""
        h = torch.cat([z, self.embed(y)], dim=1)
        h = self.fc(h).view(-1, self.c0, self.s0, self.s0)
        h = self.act(self.fc_norm(h, y))
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = self.act(norm(conv(h), y))
        x = torch.tanh(self.to_img(h))
        return expose(x, z, y, self.exposure_pairs) if self.exposure and not raw else x

    @torch.no_grad()
    def set_exposure(self, images: Tensor, labels: Tensor, generator: torch.Generator) -> None:
        """Draw each class's exposure pairs from its real faces (uint8 images, with replacement), blank
        images left out."""
        chunks = [images[i : i + 4096].float().div(127.5).sub(1.0) for i in range(0, len(images), 4096)]
        stats = torch.cat([torch.stack(exposure_stats(x), dim=1) for x in chunks])
        face = stats[:, 1] >= MIN_FACE_SPREAD
        for k in range(self.num_classes):
            rows = torch.nonzero((labels == k) & face).flatten()
            if len(rows) == 0:  # a class with no faces takes every class's exposures
                rows = torch.nonzero(face).flatten() if face.any() else torch.arange(len(labels))
            pick = rows[torch.randint(len(rows), (EXPOSURE_PAIRS,), generator=generator)]
            self.exposure_pairs[k] = stats[pick].to(self.exposure_pairs)

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard-normal noise (n, z_dim) on the model's device (``generator`` must live on that device)."""
        device = self.fc.weight.device
        return torch.randn(n, self.z_dim, generator=generator, device=device)


class Discriminator(nn.Module):
    """Conditional discriminator: (Conv4x4/2, LeakyReLU 0.2)* -> head -> linear (+ projection).

    The head turns the last s0 x s0 feature map into the feature vector h:

    * ``"flatten"`` (default): [minibatch std ->] Conv3x3 -> dense layer over the whole map, so D sees
      where features are (face layout).
    * ``"sum"``: global sum pooling, cheaper and parameter-light but blind to layout.

    No BN by default (spectral norm is the regulariser, and BN would couple real/fake statistics);
    ``batchnorm=True`` gives the textbook DCGAN D, BN on every conv but the first. Label conditioning:

    * ``"projection"`` (Miyato & Koyama 2018): ``logit += <embed(y), h>``; essentially free.
    * ``"concat"``: textbook cDCGAN, one-hot label maps concatenated to the image channels.

    ``aux_classifier=True`` adds a ``Linear(C, num_classes)`` head for an optional AC-GAN loss term.
    """

    def __init__(
        self,
        num_classes: int,
        size: int = 48,
        channels: int = 1,
        width: int = 32,
        conditioning: str = "projection",
        spectral_norm: bool = True,
        aux_classifier: bool = False,
        head: str = "flatten",
        minibatch_std: bool = True,
        batchnorm: bool = False,
    ) -> None:
        super().__init__()
        if conditioning not in ("projection", "concat"):
            raise ValueError(f"conditioning must be 'projection' or 'concat', got {conditioning!r}")
        if head not in ("flatten", "sum"):
            raise ValueError(f"head must be 'flatten' or 'sum', got {head!r}")
        s0, n_blocks = base_resolution(size)
        self.num_classes, self.size, self.channels = num_classes, size, channels
        self.width, self.conditioning = width, conditioning
        self.spectral_norm, self.aux_classifier = spectral_norm, aux_classifier
        self.head, self.minibatch_std = head, minibatch_std
        # Minibatch-std groups are contiguous runs of this many samples; the trainer keeps real and fake in
        # separate runs by choosing a group size that divides the real batch.
        self.mbstd_group = 4

        def sn(m: nn.Module) -> nn.Module:
            return _spectral_norm(m) if spectral_norm else m

        layers: list[nn.Module] = []
        c_in = channels + (num_classes if conditioning == "concat" else 0)
        for i in range(n_blocks):
            c_out = min(width * 2**i, _MAX_CHANNELS)
            conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=not (batchnorm and i > 0))
            _dcgan_init(conv)
            layers.append(sn(conv))
            if batchnorm and i > 0:  # the textbook DCGAN D: BN on every layer but the first
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.top: nn.Module | None = None
        if head == "flatten":
            # A 3x3 conv and a dense layer over the whole s0 x s0 map: D sees where features are (face
            # layout), which global sum pooling after a shallow stack cannot.
            conv = nn.Conv2d(c_in + int(minibatch_std), c_in, 3, 1, 1)
            dense = nn.Linear(c_in * s0 * s0, c_in)
            _dcgan_init(conv)
            _dcgan_init(dense)
            self.top = nn.Sequential(
                sn(conv), nn.LeakyReLU(0.2, inplace=True), nn.Flatten(), sn(dense), nn.LeakyReLU(0.2, inplace=True)
            )
        self.feature_dim = c_in

        fc = nn.Linear(c_in, 1)
        _dcgan_init(fc)
        self.fc = sn(fc)
        self.embed: nn.Module | None = None
        if conditioning == "projection":
            embed = nn.Embedding(num_classes, c_in)
            nn.init.normal_(embed.weight, 0.0, 0.02)
            self.embed = sn(embed)
        self.cls: nn.Module | None = None
        if aux_classifier:
            cls = nn.Linear(c_in, num_classes)
            _dcgan_init(cls)
            self.cls = sn(cls)

    def hidden(self, x: Tensor, y: Tensor) -> Tensor:
        """The feature vector h (N, feature_dim) that the logit and the projection are computed from."""
        if self.conditioning == "concat":
            n, _, hgt, wid = x.shape
            onehot = nn.functional.one_hot(y, self.num_classes).to(x.dtype)
            x = torch.cat([x, onehot[:, :, None, None].expand(n, self.num_classes, hgt, wid)], dim=1)
        h = self.features(x)
        if self.top is None:
            return h.sum(dim=(2, 3))
        if self.minibatch_std:
            h = torch.cat([h, _minibatch_std(h, self.mbstd_group)], dim=1)
        return self.top(h)

    def forward(self, x: Tensor, y: Tensor, cond_scale: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Return ``(logit (N,), class logits (N, num_classes) or None)`` for images ``x``, labels ``y``;
        ``cond_scale`` in [0, 1] weighs the projection term (transitional conditioning ramps it in)."""
        h = self.hidden(x, y)
        logit = self.fc(h).squeeze(1)
        if self.embed is not None:  # computed at scale 0 too: DDP expects every parameter in the graph
            logit = logit + cond_scale * (self.embed(y) * h).sum(dim=1)
        cls = self.cls(h) if self.cls is not None else None
        return logit, cls


def _minibatch_std(h: Tensor, group: int) -> Tensor:
    """One feature map: the std of each feature over a small group of samples (Karras et al. 2018).

    A collapsed generator makes near-identical samples, so a low std gives fakes away and pushes G to
    spread out. Groups are contiguous, so a batch of [real | fake] never mixes them when ``group``
    divides the real count.
    """
    n, c, hh, ww = h.shape
    g = group if group > 0 and n % group == 0 else 1
    if g == 1:
        return torch.zeros(n, 1, hh, ww, dtype=h.dtype, device=h.device)
    grouped = h.view(n // g, g, c, hh, ww)
    std = (grouped.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // g,)
    return std.view(-1, 1, 1, 1, 1).expand(n // g, g, 1, hh, ww).reshape(n, 1, hh, ww)
