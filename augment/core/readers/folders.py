"""Class-per-folder trees: FER2013's Kaggle layout, CK+48, RAF-DB's and AffectNet's folder
versions, and any ``[split/]class/*.jpg`` tree."""

from __future__ import annotations

from pathlib import Path

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.labels import AFFECTNET_CODES, CANONICAL_CLASSES, RAFDB_CODES, ClassSpec, canonical
from augment.core.readers.decode import is_image_file
from augment.core.readers.records import FileRecord, dataset_from_records, subject_from_path

SPLIT_NAMES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "publictest": "val",
    "test": "test",
    "testing": "test",
    "privatetest": "test",
}


def _dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def split_dirs(root: Path) -> dict[str, Path]:
    """Split folders directly under root (train/, test/, val/, ...)."""
    out: dict[str, Path] = {}
    for d in _dirs(root):
        split = SPLIT_NAMES.get(d.name.lower())
        if split:
            if split in out:
                raise UserError(f"{root}: both {out[split].name}/ and {d.name}/ look like the {split} split")
            out[split] = d
    return out


def numeric_kind(names: list[str], forced: str | None, root: Path) -> str | None:
    """Which numbering numeric class folders use: "rafdb" (1-7) or "affectnet" (0-7); None if not numeric."""
    if not names or not all(n.isdigit() for n in names):
        return None
    nums = {int(n) for n in names}
    under_dataset = "DATASET" in (root.name.upper(), root.parent.name.upper())
    if forced == "rafdb" or (forced is None and under_dataset and nums <= set(RAFDB_CODES)):
        bad = sorted(nums - set(RAFDB_CODES))
        if bad:
            raise UserError(f"{root}: RAF-DB class folders are 1-7, found {bad}")
        return "rafdb"
    if forced == "affectnet" or (forced is None and 0 in nums):
        bad = sorted(n for n in nums if n >= len(AFFECTNET_CODES))
        if bad:
            raise UserError(f"{root}: AffectNet class folders are 0-7, found {bad}")
        return "affectnet"
    raise UserError(
        f"{root}: numeric class folders {sorted(nums)} are ambiguous (RAF-DB 1=surprise, AffectNet 1=happy); "
        "pass --format rafdb or --format affectnet"
    )


def numeric_scheme(names: list[str], forced: str | None, root: Path) -> dict[str, str] | None:
    """Map numeric class folders: AffectNet numbers 0-7, RAF-DB numbers 1-7."""
    kind = numeric_kind(names, forced, root)
    if kind == "rafdb":
        return {n: RAFDB_CODES[int(n)] for n in names}
    if kind == "affectnet":
        return {n: AFFECTNET_CODES[int(n)] for n in names}
    return None


def class_dirs(parent: Path, spec: ClassSpec | None, forced: str | None) -> list[tuple[Path, str]]:
    """(folder, canonical class) for the class folders of one split; unknown names are an error."""
    dirs = _dirs(parent)
    spec = spec or ClassSpec()
    numeric = numeric_scheme([d.name for d in dirs if d.name.lower() not in spec.renames], forced, parent)
    out: list[tuple[Path, str]] = []
    unknown: list[str] = []
    for d in dirs:
        label = numeric.get(d.name) if numeric else canonical(d.name)
        target, is_unknown = spec.resolve(d.name, label)
        if is_unknown:
            unknown.append(d.name)
        elif target is not None:
            out.append((d, target))
    if unknown:
        raise UserError(
            f"{parent}: unknown class folder(s) {', '.join(unknown)}; known classes are "
            f"{', '.join(CANONICAL_CLASSES)}. Map them with --classes 'folder=class,...' or limit with --classes"
        )
    return out


def looks_like_folder_tree(root: Path, spec: ClassSpec | None = None) -> bool:
    """Whether root holds class folders (known names, numbers, or names ``--classes`` maps)."""
    if not root.is_dir():
        return False
    splits = split_dirs(root)
    parents = list(splits.values()) or [root]
    renamed = spec.renames if spec else {}
    for parent in parents:
        for d in _dirs(parent):
            if canonical(d.name) or d.name.isdigit() or renamed.get(d.name.lower()):
                return True
    return False


def read_folders(
    root: Path,
    *,
    size: int,
    channels: int,
    spec: ClassSpec | None = None,
    forced: str | None = None,
    name: str | None = None,
    workers: int | None = None,
) -> FaceDataset:
    splits = split_dirs(root)
    parents = splits or {"train": root}
    if forced is None:
        # Decide numeric folder names once for the whole tree, so a split that happens to lack
        # AffectNet's class 0 is not read (or refused) differently from the others.
        renamed = spec.renames if spec else {}
        names = sorted({d.name for parent in parents.values() for d in _dirs(parent) if d.name.lower() not in renamed})
        first = next(iter(parents.values()))
        forced = numeric_kind(names, None, first)
    records: list[FileRecord] = []
    for split, parent in parents.items():
        for folder, label in class_dirs(parent, spec, forced):
            for f in sorted(folder.rglob("*")):
                if f.is_file() and is_image_file(f):
                    records.append(FileRecord(f, label, split, subject_from_path(f, folder)))
    return dataset_from_records(
        records,
        size=size,
        channels=channels,
        name=name or str(root),
        looked_for=f"image files in class folders under {root} (e.g. {root}/train/happy/*.jpg or {root}/happy/*.jpg)",
        workers=workers,
    )
