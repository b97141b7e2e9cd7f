"""Fixtures of the rebalance tests: the demo faces with a small val split, and their plan."""

from __future__ import annotations

import numpy as np
import pytest

from augment.core.dataset import FaceDataset
from augment.plan import ClassPlan, plan_rebalance
from tests.augment.rebalance.helpers import VAL


@pytest.fixture(scope="package")
def data(demo_ds) -> FaceDataset:
    """The demo faces with a small val split (the first train images of a few classes)."""
    ds = demo_ds.subset(np.arange(len(demo_ds)))
    for c, n in VAL.items():
        idx = np.flatnonzero((ds.splits == "train") & (ds.labels == ds.classes.index(c)))[:n]
        ds.splits[idx] = "val"
    return ds


@pytest.fixture(scope="package")
def plan(data) -> list[ClassPlan]:
    return plan_rebalance(data.counts("train"), "max")
