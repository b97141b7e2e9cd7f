"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` plus ``Image/aligned`` (or ``original``)."""

from __future__ import annotations

from pathlib import Path

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.labels import RAFDB_CODES, ClassSpec
from augment.core.readers.records import FileRecord, dataset_from_records

LABEL_FILES = ("EmoLabel/list_patition_label.txt", "EmoLabel/list_partition_label.txt")


def find_label_file(root: Path) -> Path | None:
    for rel in LABEL_FILES:
        for base in (root, root / "basic"):
            if (base / rel).is_file():
                return base / rel
    return None


def read_rafdb(
    root: Path, *, size: int, channels: int, spec: ClassSpec | None = None, workers: int | None = None
) -> FaceDataset:
    label_file = find_label_file(root)
    if label_file is None:
        raise UserError(f"{root}: no RAF-DB label file; looked for {' or '.join(LABEL_FILES)}")
    base = label_file.parent.parent
    records: list[FileRecord] = []
    missing: list[tuple[str, str]] = []
    for line_no, line in enumerate(label_file.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in RAFDB_CODES:
            raise UserError(f"{label_file}: line {line_no}: expected '<name>.jpg <1-7>', got '{line.strip()}'")
        fname, code = parts[0], int(parts[1])
        label = RAFDB_CODES[code]
        if spec is not None and not spec.allows(label):
            continue
        stem = Path(fname).stem
        split = "test" if stem.lower().startswith("test") else "train"
        candidates = [
            base / "Image" / "aligned" / f"{stem}_aligned.jpg",
            base / "Image" / "aligned" / fname,
            base / "Image" / "original" / fname,
        ]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            missing.append((str(candidates[0]), "file not found (listed in the label file)"))
            continue
        records.append(FileRecord(path, label, split))
    return dataset_from_records(
        records,
        size=size,
        channels=channels,
        name=str(root),
        looked_for=f"images listed in {label_file} under {base / 'Image' / 'aligned'} or {base / 'Image' / 'original'}",
        extra_skipped=missing,
        workers=workers,
    )
