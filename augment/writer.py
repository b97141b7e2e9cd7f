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
from augment.core.manifest import parse_synthetic_source, real_row, synthetic_name, synthetic_row, write_png
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


def write_tree(
    ds: FaceDataset,
    out: Path,
    synthetic_meta: dict[str, Any] | None = None,
    progress: bool = True,
    keep_existing: bool = True,
) -> list[dict[str, Any]]:
    """``out/<split>/<class>/<file>``: what ImageFolder and flow_from_directory read as is.

    ``synthetic_meta`` holds the ``generator_run`` and ``checkpoint_step`` of the synthetic faces
    (their seed and noise index are in their sources). With ``keep_existing`` existing files are
    kept (a rerun after an interruption only writes what is missing); without it they are replaced
    (``--overwrite`` of an older, different run).
    """
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    meta = synthetic_meta or {}
    with make_progress() as prog:
        task = prog.add_task("writing", total=len(ds)) if progress else None
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
            dst = out / rel
            if not (keep_existing and dst.exists()):
                dst.parent.mkdir(parents=True, exist_ok=True)
                if not ds.synthetic[i] and Path(src).is_file():
                    _place_real(Path(src), dst)
                else:
                    write_png(dst, ds.images[i])
            rows.append(_row(rel, label, split, bool(ds.synthetic[i]), src, meta))
            if task is not None:
                prog.advance(task)
    return rows


def write_fer_csv(ds: FaceDataset, out: Path, synthetic_meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The FER2013 CSV layout (emotion,pixels,Usage; 48×48 grayscale)."""
    from augment.core.resize import resize_images

    bad = [c for c in ds.classes if c not in FER2013_CODES and ds.counts()[c] > 0]
    if bad:
        raise UserError(f"--format fer2013-csv cannot hold {', '.join(bad)} (FER2013 has 7 classes); use folders")
    images = resize_images(ds.images, 48, 1)
    rows: list[dict[str, Any]] = []
    meta = synthetic_meta or {}
    with atomic_path(out / "fer2013.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(len(ds)):
            label = ds.classes[int(ds.labels[i])]
            w.writerow(
                [FER2013_CODES.index(label), " ".join(map(str, images[i].ravel().tolist())), USAGE[str(ds.splits[i])]]
            )
            rows.append(
                _row(
                    f"fer2013.csv#row{i + 1}", label, str(ds.splits[i]), bool(ds.synthetic[i]), str(ds.sources[i]), meta
                )
            )
    return rows


def _row(path: str, label: str, split: str, synthetic: bool, source: str, meta: dict[str, Any]) -> dict[str, Any]:
    if not synthetic:
        return real_row(path, label, split, source)
    _, seed, index = parse_synthetic_source(source)
    return synthetic_row(path, label, split, meta["generator_run"], meta["checkpoint_step"], seed, index)
