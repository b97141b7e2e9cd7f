"""Write a FaceDataset (real and synthetic) as a class-per-folder tree or a FER2013 CSV,
with the rows of a manifest (``augment.core.manifest``) that marks every synthetic file."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

from augment.core.atomic import atomic_path
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.labels import FER2013_CODES
from augment.core.manifest import (
    parse_source_face,
    parse_synthetic_source,
    real_row,
    synthetic_name,
    synthetic_row,
    write_png,
)
from augment.core.progress import make_progress

USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def _place_real(src: Path, dst: Path) -> None:
    """Hard-link the user's file (no extra space), else copy it; never modifies the source."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def tree_rows(ds: FaceDataset, synthetic_meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The manifest rows of ``out/<split>/<class>/<file>``, one per face of ``ds`` in its order.

    ``synthetic_meta`` holds the ``generator_run`` and ``checkpoint_step`` of the synthetic faces
    (their seed and noise index are in their sources).
    """
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    meta = synthetic_meta or {}
    for i in range(len(ds)):
        split, label = str(ds.splits[i]), ds.classes[int(ds.labels[i])]
        src = str(ds.sources[i])
        if ds.synthetic[i]:
            _, _, index = parse_synthetic_source(src)
            name = synthetic_name(label, index)
        else:
            p = Path(src)
            name = p.name if p.is_file() else f"real_{i:06d}.png"
        rel = f"{split}/{label}/{name}"
        if rel in used:
            stem, suffix = os.path.splitext(name)
            rel = f"{split}/{label}/{stem}_{i}{suffix}"
        used.add(rel)
        rows.append(_row(rel, label, split, bool(ds.synthetic[i]), src, meta))
    return rows


def write_tree(
    ds: FaceDataset,
    out: Path,
    synthetic_meta: dict[str, Any] | None = None,
    progress: bool = True,
    keep_existing: bool = True,
    rows: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """``out/<split>/<class>/<file>``: what ImageFolder and flow_from_directory read as is.

    Writes the files of ``rows`` (default: :func:`tree_rows`) and returns the rows. With
    ``keep_existing`` existing files are kept (a rerun after an interruption only writes what is
    missing; every write is atomic); without it they are replaced.
    """
    rows = tree_rows(ds, synthetic_meta) if rows is None else rows
    with make_progress() as prog:
        task = prog.add_task("writing", total=len(ds)) if progress else None
        for i, row in enumerate(rows):
            dst = out / row["path"]
            if not (keep_existing and dst.exists()):
                dst.parent.mkdir(parents=True, exist_ok=True)
                src = Path(str(ds.sources[i]))
                if not ds.synthetic[i] and src.is_file():
                    _place_real(src, dst)
                else:
                    write_png(dst, ds.images[i])
            if task is not None:
                prog.advance(task)
    return rows


def check_fer_classes(names: list[str]) -> None:
    """``--format fer2013-csv`` holds FER2013's 7 classes only; checked before anything is generated."""
    bad = [c for c in dict.fromkeys(names) if c not in FER2013_CODES]
    if bad:
        raise UserError(f"--out-format fer2013-csv cannot hold {', '.join(bad)} (FER2013 has 7 classes); use folders")


def fer_rows(ds: FaceDataset, synthetic_meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The manifest rows of :func:`write_fer_csv`'s file: ``fer2013.csv#row<n>``, one per face."""
    meta = synthetic_meta or {}
    return [
        _row(
            f"fer2013.csv#row{i + 1}",
            ds.classes[int(ds.labels[i])],
            str(ds.splits[i]),
            bool(ds.synthetic[i]),
            str(ds.sources[i]),
            meta,
        )
        for i in range(len(ds))
    ]


def write_fer_csv(ds: FaceDataset, out: Path, synthetic_meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The FER2013 CSV layout (emotion,pixels,Usage; 48×48 grayscale), and its manifest rows."""
    from augment.core.resize import resize_images

    check_fer_classes([c for c, n in ds.counts().items() if n > 0])
    rows = fer_rows(ds, synthetic_meta)
    images = resize_images(ds.images, 48, 1)
    with atomic_path(out / "fer2013.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(len(ds)):
            label = ds.classes[int(ds.labels[i])]
            w.writerow(
                [FER2013_CODES.index(label), " ".join(map(str, images[i].ravel().tolist())), USAGE[str(ds.splits[i])]]
            )
    return rows


def _row(path: str, label: str, split: str, synthetic: bool, source: str, meta: dict[str, Any]) -> dict[str, Any]:
    if not synthetic:
        return real_row(path, label, split, source)
    _, seed, index = parse_synthetic_source(source)
    run, step = meta["generator_run"], meta["checkpoint_step"]
    return synthetic_row(path, label, split, run, step, seed, index, *parse_source_face(source))
