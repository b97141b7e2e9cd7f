"""Change the size or channel count of uint8 face arrays already in memory."""

from __future__ import annotations

import numpy as np

from augment.core.dataset import FaceDataset


def resize_images(images: np.ndarray, size: int, channels: int, batch: int = 4096) -> np.ndarray:
    """(N, C, H, W) uint8 → (N, channels, size, size) uint8, antialiased bilinear."""
    n, c, h, w = images.shape
    if (c, h, w) == (channels, size, size):
        return images
    import torch
    import torch.nn.functional as F

    out = np.empty((n, channels, size, size), dtype=np.uint8)
    for i in range(0, n, batch):
        x = torch.from_numpy(images[i : i + batch]).float()
        if c == 3 and channels == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif c == 1 and channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i : i + batch] = x.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def resize_dataset(ds: FaceDataset, size: int, channels: int) -> FaceDataset:
    if ds.size == size and ds.channels == channels:
        return ds
    out = ds.subset(np.arange(len(ds)))
    out.images = resize_images(ds.images, size, channels)
    return out
