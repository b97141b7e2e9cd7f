"""A GAN run's state: the models, their optimizers, the EMA generator and the batch plan, built fresh."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.dataset import FaceDataset
from augment.core.runtime import Dist, seed_everything, step_generator
from gan.config import TRANSFER, GanConfig
from gan.models import Discriminator, Generator


def generator_kwargs(cfg: GanConfig, num_classes: int) -> dict[str, Any]:
    """What rebuilds the generator from a checkpoint (``gan.sample.load_generator``); a transfer run's
    also name its recipe, so a command that needs a noise generator can tell."""
    if cfg.recipe == TRANSFER:
        return {"recipe": TRANSFER, **transfer_kwargs(cfg, num_classes)}
    return {
        "num_classes": num_classes,
        "size": cfg.size,
        "channels": cfg.channels,
        "z_dim": cfg.z_dim,
        "width": cfg.g_width,
        "cond_bn": cfg.cond_bn,
        "exposure": cfg.exposure_norm,
    }


def transfer_kwargs(cfg: GanConfig, num_classes: int) -> dict[str, Any]:
    """``gan.transfer_models.TransferGenerator``'s arguments."""
    return {
        "num_classes": num_classes,
        "size": cfg.size,
        "channels": cfg.channels,
        "width": cfg.g_width,
        "res_blocks": cfg.res_blocks,
        "upsample": cfg.upsample,
    }


def build_models(cfg: GanConfig, num_classes: int) -> tuple[Any, Any]:
    """The recipe's generator and discriminator: noise (gan.models) or transfer (gan.transfer_models)."""
    if cfg.recipe == TRANSFER:
        from gan.transfer_models import TransferDiscriminator, TransferGenerator

        d_args = {"size": cfg.size, "channels": cfg.channels, "width": cfg.d_width, "spectral_norm": cfg.spectral_norm}
        return TransferGenerator(**transfer_kwargs(cfg, num_classes)), TransferDiscriminator(num_classes, **d_args)
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


def _memory_format(cfg: GanConfig) -> torch.memory_format:
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


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
    guide: Any = None  # the frozen classifier whose loss guides a transfer G's expressions (--guide-weight)
    guide_columns: torch.Tensor | None = None  # the guide's output column of each class of the run
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
