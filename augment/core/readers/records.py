"""Turn a list of labelled files into a FaceDataset (shared by every file-based reader)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.labels import order_classes
from augment.core.readers.decode import decode_files

_SUBJECT = re.compile(r"^(S\d{3,4})(?:_|$)")


@dataclass
class FileRecord:
    path: Path
    label: str  # canonical class name
    split: str  # train / val / test
    subject: str = ""
    box: tuple[int, int, int, int] | None = None  # face crop (left, top, right, bottom)


def subject_from_path(path: Path, root: Path) -> str:
    """CK+ style subject ids (``S005_001_00000011.png`` or a ``S005/`` folder)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = path.parts
    for part in reversed(parts):
        m = _SUBJECT.match(part)
        if m:
            return m.group(1)
    return ""


def dataset_from_records(
    records: list[FileRecord],
    *,
    size: int,
    channels: int,
    name: str,
    looked_for: str,
    dropped: dict[str, int] | None = None,
    extra_skipped: list[tuple[str, str]] | None = None,
    workers: int | None = None,
) -> FaceDataset:
    if not records:
        raise UserError(f"{name}: no images found; looked for {looked_for}")
    classes = order_classes({r.label for r in records})
    images, index, skipped = decode_files(
        [r.path for r in records],
        size,
        channels,
        boxes=[r.box for r in records] if any(r.box for r in records) else None,
        description=f"reading {Path(name).name or name}",
        workers=workers,
    )
    skipped = list(extra_skipped or []) + skipped
    if len(index) == 0:
        raise UserError(f"{name}: none of the {len(records)} image files could be read (first: {skipped[0][0]})")
    kept = [records[i] for i in index]
    return FaceDataset(
        images=images,
        labels=np.array([classes.index(r.label) for r in kept], dtype=np.int64),
        splits=np.array([r.split for r in kept]),
        sources=np.array([str(r.path) for r in kept]),
        subjects=np.array([r.subject for r in kept]),
        classes=classes,
        name=name,
        skipped=skipped,
        dropped=dict(dropped or {}),
    )
