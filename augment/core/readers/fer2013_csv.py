"""FER2013 as published: ``emotion,pixels,Usage`` CSV rows of 48×48 pixel strings."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.labels import FER2013_CODES, ClassSpec, order_classes
from augment.core.progress import make_progress

USAGE_SPLITS = {"training": "train", "publictest": "val", "privatetest": "test"}
FER_SIDE = 48


def csv_columns(path: Path) -> set[str]:
    """The lower-cased header names of a CSV file (empty if unreadable)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return set()
    return {h.strip().lower() for h in header}


def looks_like_fer_csv(path: Path) -> bool:
    return "pixels" in csv_columns(path)


def fer_csvs_in(folder: Path) -> list[Path]:
    """The FER2013 CSVs to read from a folder, without reading any image twice.

    ``fer2013.csv`` (or another CSV with a Usage column, e.g. Kaggle's ``icml_face_data.csv``)
    holds every split, so it wins over ``train.csv``/``test.csv``; otherwise every CSV with
    emotion and pixels columns is read (Kaggle's unlabelled ``test.csv`` has no emotion column
    and is left out). When no CSV has an emotion column they are all returned, so reading one
    reports the missing column.
    """
    if (folder / "fer2013.csv").is_file():
        return [folder / "fer2013.csv"]
    found = [(p, csv_columns(p)) for p in sorted(folder.glob("*.csv")) if p.is_file()]
    found = [(p, cols) for p, cols in found if "pixels" in cols]
    with_usage = [p for p, cols in found if {"emotion", "usage"} <= cols]
    if with_usage:
        return with_usage[:1]
    labelled = [p for p, cols in found if "emotion" in cols]
    return labelled or [p for p, _ in found]


def _default_split(path: Path) -> str:
    stem = path.stem.lower()
    if "test" in stem:
        return "test"
    if "val" in stem:
        return "val"
    return "train"


def _resize(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    if size == FER_SIDE and channels == 1:
        return images
    from augment.core.resize import resize_images

    return resize_images(images, size, channels)


def read_fer_csv(
    paths: list[Path], *, size: int, channels: int, spec: ClassSpec | None = None, name: str | None = None
) -> FaceDataset:
    """Read one or more FER2013-style CSV files (``fer2013.csv``, or ``train.csv``/``test.csv``)."""
    images: list[np.ndarray] = []
    labels: list[str] = []
    splits: list[str] = []
    sources: list[str] = []
    for path in paths:
        _read_one(path, images, labels, splits, sources, spec)
    if not images:
        raise UserError(f"{paths[0]}: the CSV has no rows with a usable emotion label")
    classes = order_classes(set(labels))
    arr = np.stack(images)[:, None]
    return FaceDataset(
        images=_resize(arr, size, channels),
        labels=np.array([classes.index(lbl) for lbl in labels]),
        splits=np.array(splits),
        sources=np.array(sources),
        subjects=np.full(len(labels), "", dtype=str),
        classes=classes,
        name=name or str(paths[0]),
    )


def _read_one(
    path: Path,
    images: list[np.ndarray],
    labels: list[str],
    splits: list[str],
    sources: list[str],
    spec: ClassSpec | None,
) -> None:
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as err:
        raise UserError(f"{path}: cannot open ({err.strerror})") from err
    total = max(1, path.stat().st_size // 6000)
    with fh, make_progress() as prog:
        task = prog.add_task(f"reading {path.name}", total=total)
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in ("emotion", "pixels") if c not in header]
        if missing:
            raise UserError(
                f"{path}: missing column(s) {', '.join(missing)}; a FER2013 CSV has the columns emotion,pixels,Usage"
            )
        i_emo, i_pix = header.index("emotion"), header.index("pixels")
        i_use = header.index("usage") if "usage" in header else None
        default_split = _default_split(path)
        for row_no, row in enumerate(reader, start=1):
            line = row_no + 1
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise UserError(f"{path}: row {row_no} (line {line}) has {len(row)} fields, expected {len(header)}")
            emo = row[i_emo].strip()
            if not emo.isdigit() or int(emo) >= len(FER2013_CODES):
                raise UserError(f"{path}: row {row_no} (line {line}): emotion '{emo}' is not 0-6")
            try:
                pix = np.array(row[i_pix].split(), dtype=np.int64)
            except ValueError as err:
                raise UserError(f"{path}: row {row_no} (line {line}): pixels are not all integers") from err
            if pix.size != FER_SIDE * FER_SIDE:
                raise UserError(
                    f"{path}: row {row_no} (line {line}): pixels has {pix.size} values, expected 2304 (48×48)"
                )
            if pix.min() < 0 or pix.max() > 255:
                raise UserError(f"{path}: row {row_no} (line {line}): pixel values must be 0-255")
            if i_use is not None:
                usage = row[i_use].strip().lower()
                split = USAGE_SPLITS.get(usage)
                if split is None:
                    raise UserError(
                        f"{path}: row {row_no} (line {line}): Usage '{row[i_use]}' is not "
                        "Training, PublicTest or PrivateTest"
                    )
            else:
                split = default_split
            label = FER2013_CODES[int(emo)]
            if spec is not None and not spec.allows(label):
                continue
            images.append(pix.astype(np.uint8).reshape(FER_SIDE, FER_SIDE))
            labels.append(label)
            splits.append(split)
            sources.append(f"{path}#row{row_no}")
            if row_no % 100 == 0:
                prog.update(task, completed=min(total, row_no))
        prog.update(task, completed=total)
