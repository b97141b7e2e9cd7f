"""The one PNG writer and the one manifest schema of every folder of faces this project writes.

``manifest.csv`` has a row per file. A real row names the user's file it came from (``origin``);
a synthetic row names what reproduces it bit for bit: the generator run and checkpoint step, the
sampling ``seed`` and the noise ``index``, i.e. ``gan.sample.generate_images(g, [label], seed,
offset=index)``. The file-name rule follows from it: a generated face is ``syn_<class>_<index>.png``
with that same noise index, in ``generate`` and ``rebalance`` alike.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from augment.core.atomic import atomic_path

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = (
    "path",
    "label",
    "split",
    "source",
    "origin",
    "generator_run",
    "checkpoint_step",
    "seed",
    "index",
)
SYNTHETIC_PREFIX = "syn_"  # every synthetic file's name starts with it (readers fall back on it without a manifest)
_SOURCE = re.compile(rf"synthetic:seed=(-?\d+):(?P<label>[^/]+)/{SYNTHETIC_PREFIX}(?P=label)_(\d+)\.png")


def synthetic_name(label: str, index: int) -> str:
    """The file name of the generated face of class ``label`` at noise index ``index``."""
    return f"{SYNTHETIC_PREFIX}{label}_{index:06d}.png"


def synthetic_source(label: str, seed: int, index: int) -> str:
    """How a FaceDataset's ``sources`` name a generated face: its sampling seed and noise index."""
    return f"synthetic:seed={seed}:{label}/{synthetic_name(label, index)}"


def parse_synthetic_source(source: str) -> tuple[str, int, int]:
    """(label, seed, index) of a :func:`synthetic_source` string."""
    m = _SOURCE.fullmatch(source)
    if m is None:
        raise ValueError(f"not a synthetic source: {source!r}")
    return m["label"], int(m[1]), int(m[3])


def real_row(path: str, label: str, split: str, origin: str) -> dict[str, Any]:
    """A manifest row for a real face: where it came from; the generator columns stay empty."""
    row = dict.fromkeys(MANIFEST_FIELDS, "")
    row.update(path=path, label=label, split=split, source="real", origin=origin)
    return row


def synthetic_row(
    path: str, label: str, split: str, generator_run: str | Path, checkpoint_step: int, seed: int, index: int
) -> dict[str, Any]:
    """A manifest row for a generated face: (run, step, seed, index) reproduce it."""
    row = dict.fromkeys(MANIFEST_FIELDS, "")
    row.update(
        path=path,
        label=label,
        split=split,
        source="synthetic",
        generator_run=str(Path(generator_run).resolve()),
        checkpoint_step=checkpoint_step,
        seed=seed,
        index=index,
    )
    return row


def write_png(path: Path, image: np.ndarray) -> None:
    """One uint8 (C, H, W) face as a grayscale or RGB PNG, written atomically."""
    arr = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def write_manifest(out: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(Path(out) / MANIFEST) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        w.writeheader()
        w.writerows(rows)


def read_manifest(out: Path) -> list[dict[str, str]]:
    with open(Path(out) / MANIFEST, newline="") as fh:
        return list(csv.DictReader(fh))
