"""Feeding FaceDatasets to a classifier: augmentation (torchvision v2) and batch plans."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from torchvision.transforms import v2

from augment.core.runtime import step_generator

MEAN, STD = 0.5, 0.5  # faces scaled to [-1, 1]


def train_transform(flip: bool = True, affine: bool = True, erasing: bool = False, noise: float = 0.0) -> v2.Compose:
    """Flip, a small affine, optional random erasing: what FER papers use. ``noise``: Gaussian noise of this
    standard deviation on the [-1, 1] input scale (a classifier trained on it reads shapes, not fine patterns)."""
    steps: list[v2.Transform] = []
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    if affine:
        steps.append(v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize([MEAN], [STD])]
    if erasing:
        steps.append(v2.RandomErasing(p=0.25, scale=(0.02, 0.15), value=0))
    if noise > 0:
        steps.append(v2.GaussianNoise(sigma=noise, clip=False))
    return v2.Compose(steps)


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) → the float input every model expects."""
    return images.float().div(255.0).sub(MEAN).div(STD)


class AugmentedBatches(Dataset):
    """In-memory uint8 faces, fetched a whole batch at a time and augmented per sample.

    Each batch arrives with its own seed, so the augmentation is the same whether it runs
    in the main process or in a DataLoader worker, and after a resume. A batch is (images,
    labels, synthetic flags): the flags let the loss weigh GAN faces apart (``--synthetic-weight``).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        transform: v2.Transform | None = None,
        synthetic: np.ndarray | None = None,
    ) -> None:
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)
        flags = np.zeros(len(labels), dtype=bool) if synthetic is None else np.asarray(synthetic, dtype=bool)
        self.synthetic = torch.from_numpy(flags)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, spec: tuple[int, list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key, idx = spec
        torch.manual_seed(key)
        batch = self.images[idx]
        if self.transform is None:
            x = to_input(batch)
        else:
            x = torch.stack([self.transform(img) for img in batch])
        return x, self.labels[idx], self.synthetic[idx]


class PlannedBatchSampler(Sampler[tuple[int, list[int]]]):
    """This rank's batches of one epoch, fixed by (seed, epoch).

    The global order is the same on every rank and every process count; each rank takes
    its slice of every global batch, so the global batch size, the learning rate and the
    resume point mean the same with 1 or N processes. ``balanced`` draws with
    replacement, each class equally likely (what ``WeightedRandomSampler`` does with
    inverse-frequency weights); ``epoch_samples`` shortens epochs for CPU budgets.
    """

    def __init__(
        self,
        labels: np.ndarray,
        batch_size: int,
        seed: int,
        epoch: int,
        balanced: bool = False,
        epoch_samples: int = 0,
        rank: int = 0,
        world: int = 1,
        start_batch: int = 0,
    ) -> None:
        self.labels = labels
        self.batch_size = batch_size
        self.seed, self.epoch = seed, epoch
        self.balanced = balanced
        self.n = epoch_samples if epoch_samples > 0 else len(labels)
        self.rank, self.world = rank, world
        self.start_batch = start_batch

    def global_order(self) -> torch.Tensor:
        g = step_generator(self.seed, self.epoch, stream=31)
        if self.balanced:
            counts = np.bincount(self.labels)
            weights = torch.from_numpy(1.0 / counts[self.labels])
            return torch.multinomial(weights, self.n, replacement=True, generator=g)
        n_total = len(self.labels)
        reps = math.ceil(self.n / n_total)
        return torch.cat([torch.randperm(n_total, generator=g) for _ in range(reps)])[: self.n]

    def num_batches(self) -> int:
        return self.n // self.batch_size  # drop the ragged last batch (BatchNorm needs > 1)

    def __len__(self) -> int:
        return max(0, self.num_batches() - self.start_batch)

    def __iter__(self):
        order = self.global_order()
        per_rank = self.batch_size // self.world
        for b in range(self.start_batch, self.num_batches()):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            key = int(step_generator(self.seed, self.epoch * 100_003 + b, stream=32 + self.rank).initial_seed())
            yield key, batch[self.rank * per_rank : (self.rank + 1) * per_rank].tolist()
