"""A limit on the real training faces of some classes: ``--limit disgust=25,fear=25`` keeps 25 real
training faces of disgust and of fear, to measure what augmentation does when real faces are scarce.

A limit is a plain dict, class → N, recorded as such in every run's and report's settings. It applies
after validation is carved from train (``augment.core.splits.carve_train_val``), so validation and test
are the faces an unlimited run holds out, and the carve can never hand a limited class more training
faces than N. The faces kept are a seeded choice of whole groups (``augment.core.splits.leak_groups``):
copies of one image (identical pixels) and, where the dataset names them, one subject's faces of the
class are kept or dropped together, so a class keeps at most N faces (exactly N when its groups are
single faces, as in FER2013; as close to N as whole groups allow otherwise). Faces of other classes,
synthetic faces, validation and test are never dropped. The seed is fixed (``LIMIT_SEED``), so
``gan-train --limit`` and ``compare --limit`` keep the same faces of the same data.
"""

from __future__ import annotations

import numpy as np

from augment.core.dataset import FaceDataset, concat
from augment.core.errors import UserError
from augment.core.labels import CANONICAL_CLASSES, canonical
from augment.core.splits import carve_train_val, leak_groups

Limit = dict[str, int]  # class -> real training faces kept
LIMIT_SEED = 0  # the one seed of the choice, as the validation carve's: a generator and a comparison agree
LIMIT_HELP = (
    "Keep only N real training faces of these classes, e.g. 'disgust=25,fear=25' (a seeded choice of whole "
    "duplicate groups and subjects, after validation is held out; validation and test are untouched)."
)


def parse_limit(text: str | None, option: str = "--limit") -> Limit:
    """``disgust=25,fear=25`` as canonical class names → N (``{}`` for none); one line naming the option
    for a part that is no ``CLASS=N`` with a known class and N ≥ 1."""
    out: Limit = {}
    for part in (p.strip() for p in (text or "").split(",") if p.strip()):
        name, eq, num = part.partition("=")
        cls = canonical(name)
        if not eq:
            raise UserError(f"{option} {part}: write CLASS=N, e.g. disgust=25")
        if cls is None:
            known = ", ".join(CANONICAL_CLASSES)
            raise UserError(f"{option} {part}: '{name.strip()}' is not a class; use one of {known}")
        if not num.strip().lstrip("-").isdigit():
            raise UserError(f"{option} {part}: N must be a whole number of faces, e.g. {cls}=25")
        if int(num) <= 0:
            raise UserError(f"{option} {part}: keep at least 1 face (leave {cls} out to keep all of them)")
        if cls in out and out[cls] != int(num):
            raise UserError(f"{option}: {cls} is limited twice ({out[cls]} and {int(num)})")
        out[cls] = int(num)
    return {c: out[c] for c in CANONICAL_CLASSES if c in out}


def format_limit(limit: Limit | None) -> str:
    """The limit as ``--limit`` takes it ('' for none)."""
    return ",".join(f"{c}={n}" for c, n in (limit or {}).items())


def check_limit(limit: Limit, counts: dict[str, int], option: str = "--limit") -> None:
    """One line for a limit ``counts`` (the real training faces left once validation is held out) cannot
    meet: a class the data lacks, or N above the class's count."""
    for cls, n in limit.items():
        if cls not in counts:
            raise UserError(f"{option} {cls}={n}: the data has no class {cls} (it has {', '.join(counts)})")
        if n > counts[cls]:
            raise UserError(
                f"{option} {cls}={n}: the train split has only {counts[cls]} real {cls} faces once validation "
                f"is held out; use N ≤ {counts[cls]}"
            )


def limit_choice(data: FaceDataset, limit: Limit, seed: int = LIMIT_SEED) -> np.ndarray:
    """A boolean mask over ``data``: False for the real train faces of a limited class that are dropped.

    Units are (leak group, class): a group's faces of one limited class are kept or dropped together.
    Units are visited in a seeded order and kept while the class stays at or under its N."""
    keep = np.ones(len(data), dtype=bool)
    idx = np.flatnonzero((data.splits == "train") & ~data.synthetic)
    if not limit or not len(idx):
        return keep
    groups = leak_groups(data.subjects[idx], data.subset(idx).pixel_hashes())
    labels = data.labels[idx]
    rng = np.random.default_rng(seed)
    for cls, n in limit.items():
        k = data.classes.index(cls)
        members = np.flatnonzero(labels == k)
        units = np.unique(groups[members])
        taken = 0
        for g in rng.permutation(units).tolist():
            unit = members[groups[members] == g]
            if taken + len(unit) <= n:
                taken += len(unit)
            else:
                keep[idx[unit]] = False
    return keep


def limit_train(carved: FaceDataset, limit: Limit | None, seed: int = LIMIT_SEED) -> FaceDataset:
    """``carved`` (validation already held out) with the train faces of the limited classes cut to their N,
    after ``check_limit`` against its real train counts."""
    if not limit:
        return carved
    real_train = carved.subset((carved.splits == "train") & ~carved.synthetic)
    check_limit(limit, real_train.counts())
    return carved.subset(limit_choice(carved, limit, seed))


def apply_limit(data: FaceDataset, limit: Limit | None, val_fraction: float, seed: int = LIMIT_SEED) -> FaceDataset:
    """``data`` with validation carved from train (as every command carves it) and then the train faces of
    the limited classes cut to their N; test carried over unchanged. Without a limit, ``data`` itself."""
    if not limit:
        return data
    limited = limit_train(carve_train_val(data, val_fraction, keep_synthetic=True), limit, seed)
    if not data.has_split("test"):
        return limited
    return concat([limited, data.subset(data.splits == "test")], name=data.name)
