"""What the compare tests share: a tiny budget, the grid they run, and small helpers."""

from __future__ import annotations

from augment.compare import Budget, CompareSpec
from augment.core.dataset import FaceDataset

CONDITIONS = ["baseline", "gan", "oversample", "weighted"]
SEEDS = 2
TINY = Budget("tiny-test", epochs=1, epoch_samples=64, patience=0, widths={"simple-cnn": 0.25}, batch_size=32)


def spec(**kw) -> CompareSpec:
    args = dict(models=["simple-cnn"], conditions=CONDITIONS, seeds=SEEDS, budget=TINY.name, min_prob=0, device="cpu")
    return CompareSpec(**{**args, **kw})


def hashes(ds: FaceDataset) -> set[str]:
    return set(ds.pixel_hashes().tolist())
