"""The data of a comparison: the real splits every run shares, and each condition's training images."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augment.compare.budgets import BUDGETS, Budget
from augment.compare.conditions import ConditionSpec
from augment.compare.spec import CompareSpec
from augment.core.dataset import FaceDataset, concat
from augment.core.errors import UserError
from augment.core.limits import limit_train
from augment.core.splits import carve_train_val
from augment.plan import ClassPlan, capped, plan_rebalance, share
from gan.config import GanConfig


def seed_of(*parts: object) -> int:
    """A seed that depends on ``parts`` only (the same on every machine and rerun)."""
    return int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=4).digest(), "little")


def clean_test(data: FaceDataset) -> tuple[FaceDataset, int]:
    """The real test split without images that duplicate a training image."""
    if not data.has_split("test"):
        raise UserError(f"{data.name}: compare needs a real test split (e.g. a test/ folder)")
    return clean_split(data, "test")


def clean_split(data: FaceDataset, split: str) -> tuple[FaceDataset, int]:
    """The real images of ``split`` without those that duplicate an image of another split, and how many."""
    real = data.subset(~data.synthetic)
    hashes = real.pixel_hashes()
    mask = real.splits == split
    dup = np.isin(hashes, list(set(hashes[~mask].tolist()))) & mask
    return real.subset(mask & ~dup), int(dup.sum())


def oversample(train: FaceDataset, targets: dict[str, int], seed: int) -> FaceDataset:
    """``targets[c]`` random duplicates of real images of each class c added to ``train``."""
    rng = np.random.default_rng(seed)
    extra = []
    for k, c in enumerate(train.classes):
        idx = np.flatnonzero(train.labels == k)
        need = targets.get(c, 0)
        if need > 0 and len(idx):
            extra.append(rng.choice(idx, size=need, replace=True))
    if not extra:
        return train
    return concat([train, train.subset(np.concatenate(extra))], name=train.name)


def take_synthetic(pool: FaceDataset, per_class: dict[str, int]) -> FaceDataset:
    """The first n accepted samples of each class: smaller amounts are subsets of larger ones."""
    keep = []
    for k, c in enumerate(pool.classes):
        idx = np.flatnonzero(pool.labels == k)[: per_class.get(c, 0)]
        keep.append(idx)
    return pool.subset(np.concatenate(keep) if keep else np.zeros(0, dtype=np.int64))


@dataclass
class CompareData:
    """The real data every run shares: validation carved from train before anything synthetic exists,
    the scored split (``test``: the test split, or the validation split under ``--eval-split val``) cleaned
    of copies of training images, and the shortfall plan."""

    name: str
    train: FaceDataset
    val: FaceDataset
    test: FaceDataset
    test_duplicates: int
    plan: list[ClassPlan]
    trainval: FaceDataset  # train and val together (the default judge trains on it)
    test_duplicates_by_class: dict[str, int] = field(default_factory=dict)
    eval_split: str = "test"  # the split ``test`` holds

    @property
    def wanted(self) -> dict[str, int]:
        return {p.name: p.add for p in self.plan}


@dataclass
class Comparison:
    """What every run of the grid shares."""

    report_dir: Path
    spec: CompareSpec
    device: str
    data: CompareData
    pools: dict[str, FaceDataset | None]  # the filtered synthetic pools by name (conditions.GAN_POOL, TRANSFER_POOL)
    progress: bool = True

    @property
    def budget(self) -> Budget:
        return BUDGETS[self.spec.budget]

    def run_dir(self, key: tuple[str, str, int]) -> Path:
        return self.report_dir / "runs" / key[0] / key[1] / f"seed{key[2]}"


def prepare_data(data: FaceDataset, spec: CompareSpec) -> CompareData:
    """Real images only: the cleaned scored split, real validation carved from train, the train part cut by
    ``--limit``, the shortfall plan. Under ``--eval-split val`` the scored split is that validation split, and
    test is never touched. Test is cleaned of copies of the full train split, so every point of a curve is
    scored on the same faces."""
    real = data.subset(~data.synthetic)
    if spec.eval_split == "test":
        scored, n_dup = clean_test(real)
    # carved as gan-train carves its validation split (gan.validation.real_splits) at its default fraction
    trainval = carve_train_val(real, GanConfig.val_fraction)
    if spec.eval_split == "val":
        scored, n_dup = clean_split(trainval, "val")
    # --limit after the carve and the cleaning: validation and the scored faces are an unlimited run's
    trainval = limit_train(trainval, spec.limit)
    train, val = trainval.split("train"), trainval.split("val")
    plan = plan_rebalance(train.counts(), spec.target, spec.classes, 1.0)
    source = real if spec.eval_split == "test" else trainval
    dups = {c: n - scored.counts()[c] for c, n in source.counts(spec.eval_split).items()}
    return CompareData(data.name, train, val, scored, n_dup, plan, trainval, dups, spec.eval_split)


def condition_amounts(data: CompareData, cs: ConditionSpec) -> tuple[dict[str, int], dict[str, int]]:
    """Per class: the GAN samples and the duplicates of real images a condition adds to train."""
    real = data.train.counts()
    synthetic = {c: capped(share(cs.synthetic, n), real[c], cs.max_ratio) for c, n in data.wanted.items()}
    duplicates = {c: min(share(cs.duplicates, n), n - synthetic[c]) for c, n in data.wanted.items()}
    return synthetic, duplicates


def condition_data(data: CompareData, pool: FaceDataset | None, cs: ConditionSpec, seed: int) -> FaceDataset:
    """A condition's training images: the train part (real, duplicates of real, GAN samples) plus the shared
    real val. Smaller GAN amounts are prefixes of larger ones; the duplicates depend on the seed only."""
    synthetic, duplicates = condition_amounts(data, cs)
    part = data.train
    if any(duplicates.values()):
        part = oversample(part, duplicates, seed=seed_of("oversample", seed))
    if any(synthetic.values()):
        if pool is None:
            raise ValueError("a condition with GAN samples needs the synthetic pool")
        part = concat([part, take_synthetic(pool, synthetic)], name=data.name)
    return concat([part, data.val], name=data.name)
