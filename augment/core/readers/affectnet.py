"""AffectNet's annotation CSVs (``training.csv``, ``validation.csv``).

AffectNet's test set is not public, so its validation set serves as the test split, as
in the literature; a validation split is then carved from training.
"""

from __future__ import annotations

import csv
from pathlib import Path

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.labels import AFFECTNET_CODES, AFFECTNET_DROPPED, ClassSpec
from augment.core.readers.records import FileRecord, dataset_from_records

CSV_SPLITS = {"training.csv": "train", "validation.csv": "test"}
REQUIRED = ("subdirectory_filepath", "expression")
IMAGE_DIRS = ("", "Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", "images")


def looks_like_affectnet_csv(path: Path) -> bool:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = {h.strip().lower() for h in next(csv.reader(fh), [])}
    except (OSError, UnicodeDecodeError):
        return False
    return set(REQUIRED) <= header


def affectnet_csvs(root: Path) -> list[Path]:
    return [root / n for n in CSV_SPLITS if (root / n).is_file() and looks_like_affectnet_csv(root / n)]


def _image_bases(csv_path: Path) -> list[Path]:
    bases = []
    for d in (csv_path.parent, csv_path.parent.parent):
        bases += [d / sub if sub else d for sub in IMAGE_DIRS]
    return bases


def _box(row: dict[str, str]) -> tuple[int, int, int, int] | None:
    try:
        x, y = int(float(row["face_x"])), int(float(row["face_y"]))
        w, h = int(float(row["face_width"])), int(float(row["face_height"]))
    except (KeyError, ValueError, TypeError):
        return None
    return (x, y, x + w, y + h) if w > 0 and h > 0 else None


def read_affectnet(
    csv_paths: list[Path],
    *,
    size: int,
    channels: int,
    spec: ClassSpec | None = None,
    workers: int | None = None,
) -> FaceDataset:
    records: list[FileRecord] = []
    missing: list[tuple[str, str]] = []
    dropped: dict[str, int] = {}
    for csv_path in csv_paths:
        split = CSV_SPLITS.get(csv_path.name.lower(), "train")
        bases = _image_bases(csv_path)
        base_hit: Path | None = None
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            reader.fieldnames = [f.strip().lower() for f in reader.fieldnames or []]
            absent = [c for c in REQUIRED if c not in reader.fieldnames]
            if absent:
                raise UserError(
                    f"{csv_path}: missing column(s) {', '.join(absent)}; "
                    "an AffectNet CSV has subDirectory_filePath and expression"
                )
            for row_no, row in enumerate(reader, start=1):
                code_text = (row.get("expression") or "").strip()
                if not code_text.lstrip("-").isdigit():
                    raise UserError(
                        f"{csv_path}: row {row_no} (line {reader.line_num}): expression '{code_text}' is not 0-10"
                    )
                code = int(code_text)
                if code in AFFECTNET_DROPPED:
                    key = AFFECTNET_DROPPED[code]
                    dropped[key] = dropped.get(key, 0) + 1
                    continue
                if not 0 <= code < len(AFFECTNET_CODES):
                    raise UserError(f"{csv_path}: row {row_no} (line {reader.line_num}): expression {code} is not 0-10")
                label = AFFECTNET_CODES[code]
                if spec is not None and not spec.allows(label):
                    continue
                rel = (row.get("subdirectory_filepath") or "").strip()
                if not rel:
                    raise UserError(
                        f"{csv_path}: row {row_no} (line {reader.line_num}): subDirectory_filePath is empty"
                    )
                path = None
                for b in ([base_hit] if base_hit else []) + bases:
                    if (b / rel).is_file():
                        path, base_hit = b / rel, b
                        break
                if path is None:
                    missing.append((str(csv_path.parent / rel), f"file not found (row {row_no} of {csv_path.name})"))
                    continue
                records.append(FileRecord(path, label, split, box=_box(row)))
    return dataset_from_records(
        records,
        size=size,
        channels=channels,
        name=str(csv_paths[0].parent),
        looked_for=f"the files named in {', '.join(p.name for p in csv_paths)} (subDirectory_filePath)",
        dropped=dropped,
        extra_skipped=missing,
        workers=workers,
    )
