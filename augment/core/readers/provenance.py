"""Which faces of a dataset read from disk are synthetic: the ``manifest.csv`` that ``augment rebalance``
and ``augment generate`` write next to their files (``augment.core.manifest``), else the ``syn_`` file-name
rule of that same module.

A manifest row's ``path`` is relative to the manifest's folder: ``train/disgust/syn_disgust_000003.png``
for a class-folder tree, ``fer2013.csv#row12`` for a FER2013 CSV (row numbers count data rows from 1, as
the CSV reader's sources do).
"""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

import numpy as np

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.manifest import MANIFEST, SYNTHETIC_PREFIX
from augment.core.progress import console


def manifest_key(source: str, folder: Path) -> str:
    """A FaceDataset source as a manifest ``path``: relative to ``folder``, with its ``#rowN`` kept."""
    file, sep, fragment = source.rpartition("#") if "#row" in source else (source, "", "")
    rel = Path(os.path.relpath(file, folder)).as_posix()
    return f"{rel}{sep}{fragment}"


def read_synthetic_paths(folder: Path) -> set[str] | None:
    """The ``path`` of every synthetic row of ``folder/manifest.csv``; None without an augment manifest
    (no file, or a CSV without the ``path`` and ``source`` columns, e.g. a dataset's own manifest)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not {"path", "source"} <= set(reader.fieldnames or ()):
                return None
            return {row["path"] for row in reader if (row.get("source") or "").strip() == "synthetic"}
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path}: cannot read the manifest ({err}); restore it or delete it") from err


def _named_synthetic(sources: np.ndarray) -> np.ndarray:
    """Files (not CSV rows) whose name starts with ``syn_``."""
    return np.array([("#row" not in s) and Path(s).name.startswith(SYNTHETIC_PREFIX) for s in sources.tolist()])


def mark_synthetic(ds: FaceDataset, folder: Path) -> FaceDataset:
    """``ds`` with ``synthetic`` set from ``folder/manifest.csv``; files named ``syn_*`` that no manifest
    lists are marked too, with one warning line saying so."""
    listed = read_synthetic_paths(folder)
    by_manifest = np.zeros(len(ds), dtype=bool)
    if listed:
        by_manifest = np.array([manifest_key(s, folder) in listed for s in ds.sources.tolist()], dtype=bool)
    by_name = _named_synthetic(ds.sources) & ~by_manifest if len(ds) else by_manifest
    if by_name.any():
        n, pattern = int(by_name.sum()), f"{SYNTHETIC_PREFIX}* file(s)"
        why = f"not in {folder / MANIFEST}" if listed is not None else f"in {folder} (no augment {MANIFEST} there)"
        console.print(f"warning: {n} {pattern} {why} marked synthetic by their name", highlight=False, soft_wrap=True)
    marked = ds.synthetic | by_manifest | by_name
    if (marked == ds.synthetic).all():
        return ds
    return dataclasses.replace(ds, synthetic=marked)  # shares the freshly read arrays, no copy
