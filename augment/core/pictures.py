"""Image grids with class names beside the rows: sample grids, pools, nearest neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def labelled_grid(
    rows: list[np.ndarray], names: list[str], path: Path, scale: int = 2, title: str = "", columns: int | None = None
) -> None:
    """One row per entry of ``rows`` (uint8 (n, C, H, W) each), its name on the left; written atomically.

    Built on torchvision's ``make_grid``; short rows are padded with blank cells.
    """
    import torch
    from PIL import Image, ImageDraw
    from torchvision.utils import make_grid

    from augment.core.atomic import atomic_path

    if not rows or not any(len(r) for r in rows):
        return
    sample = next(r for r in rows if len(r))
    ncol = columns or max(len(r) for r in rows)
    tiles = []
    for r in rows:
        cells = list(r[:ncol]) + [np.full_like(sample[0], 255)] * (ncol - min(len(r), ncol))
        tiles += cells
    x = torch.from_numpy(np.stack(tiles)).float() / 255
    grid = make_grid(x, nrow=ncol, padding=2, pad_value=1.0)
    img = Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    margin, top = 70, (18 if title else 0)
    canvas = Image.new("RGB", (img.width + margin, img.height + top), "white")
    canvas.paste(img, (margin, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((margin, 3), title, fill="black")
    cell = (sample.shape[-1] + 2) * scale
    for i, name in enumerate(names):
        draw.text((4, top + i * cell + cell // 2 - 5), name, fill="black")
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
