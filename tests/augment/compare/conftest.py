"""Fixtures of the compare tests: the tiny budget, the demo faces with a planted test duplicate, and one
small comparison shared by the modules that read it."""

from __future__ import annotations

import numpy as np
import pytest

from augment import compare
from augment.compare import run_compare, scheduler
from augment.core.dataset import FaceDataset, concat
from tests.augment.compare.helpers import TINY, spec


@pytest.fixture(autouse=True)
def _tiny_budget(monkeypatch):
    monkeypatch.setitem(compare.BUDGETS, TINY.name, TINY)


@pytest.fixture(scope="package")
def planted(demo_ds) -> FaceDataset:
    """The demo faces plus one test image that is a copy of a training image."""
    dup = demo_ds.subset(np.flatnonzero(demo_ds.splits == "train")[:1])
    dup.splits[:] = "test"
    return concat([demo_ds, dup], name=demo_ds.name)


@pytest.fixture(scope="package")
def compared(planted, tiny_gan_run, tmp_path_factory):
    """One small comparison (1 model × 4 conditions × 2 seeds), with a spy on what each run is tested on."""
    report = tmp_path_factory.mktemp("cmp") / "report"
    seen: dict[str, list] = {"test": []}
    real_score = scheduler.score_run

    def spy_score(run_dir, test, *args, **kwargs):
        seen["test"].append(test)
        return real_score(run_dir, test, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(compare.BUDGETS, TINY.name, TINY)
        mp.setattr(scheduler, "score_run", spy_score)
        summary = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    return report, summary, seen
