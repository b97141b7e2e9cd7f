"""Read any supported FER dataset layout into a FaceDataset, detecting the format."""

from __future__ import annotations

from pathlib import Path

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.labels import ClassSpec, parse_class_spec
from augment.core.readers.affectnet import affectnet_csvs, looks_like_affectnet_csv, read_affectnet
from augment.core.readers.decode import is_image_file
from augment.core.readers.fer2013_csv import fer_csvs_in, looks_like_fer_csv, read_fer_csv
from augment.core.readers.folders import looks_like_folder_tree, read_folders, split_dirs
from augment.core.readers.provenance import mark_synthetic
from augment.core.readers.rafdb import find_label_file, read_rafdb
from augment.core.resize import resize_dataset

FORMATS: tuple[str, ...] = (
    "auto",
    "cache",
    "fer2013-csv",
    "folders",
    "fer2013",
    "rafdb",
    "affectnet",
    "ckplus",
)

LOOKED_FOR = (
    "an augment cache (.npz), a FER2013 CSV (emotion,pixels,Usage), RAF-DB (EmoLabel/list_patition_label.txt), "
    "AffectNet CSVs (training.csv/validation.csv) or class folders (<class>/*.jpg or train|test/<class>/*.jpg)"
)


def is_cache(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04" and path.suffix.lower() == ".npz"


def detect_format(path: Path, spec: ClassSpec | None = None) -> str:
    """Which reader fits ``path``; raises a UserError saying what was looked for.

    Folder names that ``spec`` (``--classes``) maps count as class folders.
    """
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_file():
        if is_cache(path):
            return "cache"
        if path.suffix.lower() == ".csv":
            if looks_like_fer_csv(path):
                return "fer2013-csv"
            if looks_like_affectnet_csv(path):
                return "affectnet"
            raise UserError(
                f"{path}: a CSV without FER2013 (emotion,pixels) or AffectNet "
                "(subDirectory_filePath,expression) columns"
            )
        raise UserError(f"{path}: not a dataset; looked for {LOOKED_FOR}")
    if (path / "fer2013.csv").is_file() or any(looks_like_fer_csv(p) for p in _csvs(path)):
        return "fer2013-csv"
    if find_label_file(path) is not None:
        return "rafdb"
    if affectnet_csvs(path):
        return "affectnet"
    if (path / "DATASET").is_dir() and looks_like_folder_tree(path / "DATASET", spec):
        return "rafdb"
    if looks_like_folder_tree(path, spec):
        return "folders"
    found = _folders_with_images(path)
    hint = (
        f"; found folder(s) {', '.join(found)} with images but no known class name: "
        "map them with --classes 'folder=class,...'"
        if found
        else ""
    )
    raise UserError(f"{path}: no recognisable dataset layout; looked for {LOOKED_FOR}{hint}")


def _folders_with_images(root: Path, limit: int = 10) -> list[str]:
    """Sub-folders (of root or of its split folders) that directly hold image files."""
    try:
        parents = list(split_dirs(root).values()) or [root]
    except UserError:
        parents = [root]
    names: list[str] = []
    for parent in parents:
        for d in sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if d.name not in names and any(is_image_file(f) for f in d.iterdir() if f.is_file()):
                names.append(d.name)
    names.sort()
    return names[:limit] + ([f"... {len(names) - limit} more"] if len(names) > limit else [])


def unreadable_warning(ds: FaceDataset) -> str | None:
    """The one line every command that reads a dataset prints when files of it could not be read
    (they are left out; the command goes on), or None when every file was read."""
    if not ds.skipped:
        return None
    path, why = ds.skipped[0]
    more = f"; 'augment inspect {ds.name}' lists all {len(ds.skipped)}" if len(ds.skipped) > 1 else ""
    return f"skipped {len(ds.skipped)} unreadable image file(s) of {ds.name}: first {path} ({why}){more}"


def _csvs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*.csv") if p.is_file())


def load_dataset(
    path: str | Path,
    *,
    format: str | None = None,
    size: int | None = None,
    channels: int | None = None,
    classes: str | ClassSpec | None = None,
    workers: int | None = None,
) -> FaceDataset:
    """Load ``path`` in its own layout, or from an ``augment prepare`` cache.

    ``size`` and ``channels`` default to 48 px grayscale, or to the cache's own shape. Faces that a
    ``manifest.csv`` next to the data lists as synthetic (``augment rebalance`` writes one), or files
    named ``syn_*`` that it does not list, are marked ``synthetic``; a cache keeps its own marks.
    """
    path = Path(path).expanduser()
    fmt = (format or "auto").lower()
    if fmt not in FORMATS:
        raise UserError(f"--format {format}: unknown format; use one of {', '.join(FORMATS)}")
    try:
        spec = parse_class_spec(classes) if isinstance(classes, str) or classes is None else classes
    except ValueError as err:
        raise UserError(str(err)) from err
    if fmt == "auto":
        fmt = detect_format(path, spec)
    elif not path.exists():
        raise UserError(f"{path}: no such file or directory")

    if channels is not None and channels not in (1, 3):
        raise UserError(f"channels must be 1 or 3, not {channels}")
    if size is not None and size < 1:
        raise UserError(f"size must be a positive number of pixels, not {size}")

    if fmt == "cache":
        ds = FaceDataset.load(path)
        if spec is not None:
            ds = ds.with_classes([c for c in ds.classes if spec.allows(c)])
        if len(ds) == 0:
            raise UserError(f"{path}: the dataset is empty after filtering classes")
        return resize_dataset(ds, size or ds.size, channels or ds.channels)

    size, channels = size or 48, channels or 1
    if fmt == "fer2013-csv":
        paths = [path] if path.is_file() else fer_csvs_in(path)
        if not paths:
            raise UserError(f"{path}: no FER2013 CSV (fer2013.csv, train.csv, test.csv) found")
        ds = read_fer_csv(paths, size=size, channels=channels, spec=spec, name=str(path))
    elif fmt == "rafdb" and not path.is_dir():
        raise UserError(f"{path}: --format rafdb needs the RAF-DB folder (EmoLabel/, Image/ or DATASET/)")
    elif fmt == "rafdb" and find_label_file(path) is None:
        root = path / "DATASET" if (path / "DATASET").is_dir() else path
        ds = read_folders(
            root, size=size, channels=channels, spec=spec, forced="rafdb", name=str(path), workers=workers
        )
    elif fmt == "rafdb":
        ds = read_rafdb(path, size=size, channels=channels, spec=spec, workers=workers)
    elif fmt == "affectnet" and (path.is_file() or affectnet_csvs(path)):
        csvs = [path] if path.is_file() else affectnet_csvs(path)
        ds = read_affectnet(csvs, size=size, channels=channels, spec=spec, workers=workers)
    elif fmt in ("folders", "fer2013", "ckplus", "affectnet"):
        if not path.is_dir():
            raise UserError(f"{path}: --format {fmt} needs a folder of class folders")
        forced = "affectnet" if fmt == "affectnet" else None
        ds = read_folders(path, size=size, channels=channels, spec=spec, forced=forced, workers=workers)
    else:  # pragma: no cover - FORMATS is exhaustive
        raise UserError(f"--format {fmt} is not supported here")
    if len(ds) == 0:
        raise UserError(f"{path}: the dataset is empty after filtering classes")
    # what augment rebalance / generate wrote: its manifest.csv (or syn_ names) marks the synthetic faces
    return mark_synthetic(ds, path if path.is_dir() else path.parent)
