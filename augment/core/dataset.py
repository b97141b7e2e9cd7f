"""The one data type that carries faces through the whole pipeline.

Readers make a :class:`FaceDataset`, the cache stores it, the GAN trains on it and
samples into it, rebalance writes it out, and the classifiers train and evaluate on it.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augment.core.atomic import atomic_path
from augment.core.errors import UserError
from augment.core.labels import CANONICAL_CLASSES

SPLITS: tuple[str, ...] = ("train", "val", "test")
CACHE_MAGIC = "augment-face-cache"
CACHE_VERSION = 1


@dataclass
class FaceDataset:
    """uint8 images (N, C, H, W) with labels, split, source and subject per image.

    ``labels`` index into ``classes`` (canonical names in canonical order).
    ``synthetic`` marks GAN samples so they can never reach validation or test.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    sources: np.ndarray
    subjects: np.ndarray
    classes: list[str]
    synthetic: np.ndarray | None = None
    name: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        self.images = np.ascontiguousarray(self.images, dtype=np.uint8)
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {self.images.shape}")
        self.labels = np.asarray(self.labels, dtype=np.int64)
        splits = np.asarray(self.splits, dtype=str)
        bad = sorted(str(s) for s in set(np.unique(splits).tolist()) - set(SPLITS))
        if bad:  # checked before the cast to <U5, which would truncate e.g. 'holdout'
            raise ValueError(f"unknown split names {bad}; use {', '.join(SPLITS)}")
        self.splits = splits.astype("<U5")
        self.sources = np.asarray(self.sources, dtype=str)
        self.subjects = np.asarray(self.subjects, dtype=str)
        if self.synthetic is None:
            self.synthetic = np.zeros(n, dtype=bool)
        self.synthetic = np.asarray(self.synthetic, dtype=bool)
        for name in ("labels", "splits", "sources", "subjects", "synthetic"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} images")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError("labels out of range of classes")

    # -- shape -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> int:
        return int(self.images.shape[2])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # -- selection ---------------------------------------------------------------
    def subset(self, mask_or_index: np.ndarray) -> FaceDataset:
        """A new dataset with the chosen rows (boolean mask or index array)."""
        idx = np.asarray(mask_or_index)
        return FaceDataset(
            images=self.images[idx],
            labels=self.labels[idx],
            splits=self.splits[idx],
            sources=self.sources[idx],
            subjects=self.subjects[idx],
            classes=list(self.classes),
            synthetic=self.synthetic[idx],
            name=self.name,
            skipped=list(self.skipped),
            dropped=dict(self.dropped),
        )

    def split(self, name: str) -> FaceDataset:
        if name not in SPLITS:
            raise ValueError(f"unknown split '{name}'; use one of {', '.join(SPLITS)}")
        return self.subset(self.splits == name)

    def has_split(self, name: str) -> bool:
        return bool((self.splits == name).any())

    def with_classes(self, keep: list[str]) -> FaceDataset:
        """Keep only ``keep`` classes and re-index labels onto them (canonical order)."""
        missing = [c for c in keep if c not in self.classes]
        if missing:
            raise UserError(
                f"{self.name or 'dataset'} has no class {', '.join(missing)}; it has {', '.join(self.classes)}"
            )
        ordered = [c for c in CANONICAL_CLASSES if c in keep]
        old_to_new = np.full(len(self.classes), -1, dtype=np.int64)
        for new_i, c in enumerate(ordered):
            old_to_new[self.classes.index(c)] = new_i
        mask = old_to_new[self.labels] >= 0
        out = self.subset(mask)
        out.labels = old_to_new[out.labels]
        out.classes = ordered
        return out

    def remap_to(self, classes: list[str]) -> FaceDataset:
        """Express labels in another class list (a superset), e.g. a model's classes."""
        missing = [c for c in self.classes if c not in classes]
        if missing:
            raise UserError(f"classes {', '.join(missing)} are not among {', '.join(classes)}")
        lut = np.array([classes.index(c) for c in self.classes], dtype=np.int64)
        out = self.subset(np.arange(len(self)))
        out.labels = lut[self.labels] if len(self) else self.labels
        out.classes = list(classes)
        return out

    # -- summaries ---------------------------------------------------------------
    def counts(self, split: str | None = None) -> dict[str, int]:
        """Images per class (all classes listed, zeros included)."""
        labels = self.labels if split is None else self.labels[self.splits == split]
        binc = np.bincount(labels, minlength=self.num_classes)
        return {c: int(binc[i]) for i, c in enumerate(self.classes)}

    def pixel_hashes(self) -> np.ndarray:
        """A hash of each image's decoded pixels, to find exact duplicates."""
        flat = self.images.reshape(len(self), -1)
        return np.array([hashlib.blake2b(row.tobytes(), digest_size=12).hexdigest() for row in flat])

    # -- persistence -------------------------------------------------------------
    def save(self, path: str | Path, packed: bool = False) -> None:
        """Write the single-file cache: raw pixels (loads in well under 2 s), or ``packed`` as encoded
        image bytes (FER2013: 43 MB instead of 92 MB, for moving it; loads in seconds)."""
        path = Path(path)
        if packed:
            from augment.core.packed import pack_images

            blob, offsets = pack_images(self.images, self.sources)
            pixels = {"packed_blob": blob, "packed_offsets": offsets, "image_shape": np.array(self.images.shape[1:])}
        else:
            pixels = {"images": self.images}
        # Packed caches are for moving: compress the metadata too (FER2013's source paths alone are 8 MB as
        # numpy's UTF-32); raw caches stay uncompressed so they load fast.
        savez = np.savez_compressed if packed else np.savez
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            savez(
                fh,
                magic=np.array(CACHE_MAGIC),
                version=np.array(CACHE_VERSION),
                **pixels,
                labels=self.labels,
                splits=self.splits,
                sources=self.sources,
                subjects=self.subjects,
                synthetic=self.synthetic,
                classes=np.array(self.classes, dtype=str),
                name=np.array(self.name),
                skipped=np.array([f"{p}\t{why}" for p, why in self.skipped], dtype=str),
                dropped=np.array([f"{k}\t{v}" for k, v in self.dropped.items()], dtype=str),
            )

    @classmethod
    def load(cls, path: str | Path) -> FaceDataset:
        path = Path(path)
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array
                raise UserError(f"{path}: not an augment cache file; make one with 'augment prepare'")
            with loaded as z:
                if "magic" not in z.files or str(z["magic"]) != CACHE_MAGIC:
                    raise UserError(f"{path}: not an augment cache file; make one with 'augment prepare'")
                if int(z["version"]) > CACHE_VERSION:
                    raise UserError(f"{path}: cache version {int(z['version'])} is newer than this augment")
                skipped = [tuple(s.split("\t", 1)) for s in z["skipped"].tolist()]
                dropped = {k: int(v) for k, v in (s.split("\t", 1) for s in z["dropped"].tolist())}
                if "packed_blob" in z.files:
                    from augment.core.packed import unpack_images

                    shape = tuple(int(v) for v in z["image_shape"])
                    images = unpack_images(z["packed_blob"], z["packed_offsets"], shape)  # type: ignore[arg-type]
                else:
                    images = z["images"]
                return cls(
                    images=images,
                    labels=z["labels"],
                    splits=z["splits"],
                    sources=z["sources"],
                    subjects=z["subjects"],
                    synthetic=z["synthetic"],
                    classes=[str(c) for c in z["classes"].tolist()],
                    name=str(z["name"]),
                    skipped=skipped,  # type: ignore[arg-type]
                    dropped=dropped,
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            if isinstance(err, UserError):
                raise
            raise UserError(f"{path}: cannot read cache file ({err}); rebuild it with 'augment prepare'") from err


def concat(parts: list[FaceDataset], name: str = "") -> FaceDataset:
    """Join datasets with the same image shape; classes become the canonical union."""
    parts = [p for p in parts if p is not None]
    if not parts:
        raise ValueError("nothing to concatenate")
    shapes = {p.images.shape[1:] for p in parts if len(p)}
    if len(shapes) > 1:
        raise ValueError(f"image shapes differ: {sorted(shapes)}")
    classes = [c for c in CANONICAL_CLASSES if any(c in p.classes for p in parts)]
    remapped = [p.remap_to(classes) for p in parts]
    shape = next(iter(shapes)) if shapes else parts[0].images.shape[1:]
    return FaceDataset(
        images=np.concatenate([p.images.reshape(-1, *shape) for p in remapped]),
        labels=np.concatenate([p.labels for p in remapped]),
        splits=np.concatenate([p.splits for p in remapped]),
        sources=np.concatenate([p.sources for p in remapped]),
        subjects=np.concatenate([p.subjects for p in remapped]),
        synthetic=np.concatenate([p.synthetic for p in remapped]),
        classes=classes,
        name=name or parts[0].name,
        skipped=[s for p in parts for s in p.skipped],
        dropped={k: sum(p.dropped.get(k, 0) for p in parts) for p in parts for k in p.dropped},
    )


def data_digest(data: FaceDataset) -> str:
    """Which files, classes and splits ``data`` holds: a changed dataset under the same path is another dataset
    (an output folder's identity records it)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for values in (data.classes, data.sources.tolist(), data.labels.tolist(), data.splits.tolist()):
        h.update("\n".join(map(str, values)).encode() + b"\0")
    return h.hexdigest()
