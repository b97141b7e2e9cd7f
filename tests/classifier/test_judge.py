"""The judge: its probabilities in the caller's class order, its input preparation, its class check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augment.core.errors import UserError
from augment.core.resize import resize_images
from classifier.inference import load_classifier, predict_proba
from classifier.judge import JUDGE_DIR, default_judge_config, get_judge, judge_columns, judge_probabilities

pytestmark = pytest.mark.usefixtures("quiet")


class ColumnJudge(torch.nn.Module):
    """Logit k = k × 10 × (mean of its input): records the input shapes it was given."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return x.float().mean((1, 2, 3))[:, None] * torch.arange(self.k).float()[None] * 10


def test_probabilities_come_in_the_callers_class_order_and_input_is_prepared():
    judge_classes = ["happy", "sad", "fear", "disgust"]
    model = ColumnJudge(len(judge_classes))
    judge = (model, {"classes": judge_classes, "size": 16, "channels": 1})
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (5, 3, 40, 40), dtype=np.uint8)  # RGB, 40 px: the judge wants gray 16 px
    faces[:2] //= 4  # dark and bright faces: different probabilities
    mine = ["disgust", "happy", "fear"]
    probs = judge_probabilities(judge, faces, mine)
    assert probs.shape == (5, 3)
    assert model.shapes == [(5, 1, 16, 16)]
    full = predict_proba(model, resize_images(faces, 16, 1))
    np.testing.assert_allclose(probs, full[:, [3, 0, 2]], rtol=1e-6)
    assert not np.allclose(probs[:, 0], probs[:, 1])  # the columns really are different classes
    assert not np.allclose(probs[0], probs[4])
    assert judge_columns(judge[1], mine) == [3, 0, 2]


def test_missing_classes_are_named_in_one_user_error():
    meta = {"classes": ["happy", "sad"], "size": 16, "channels": 1}
    with pytest.raises(UserError, match=r"cannot score fear, contempt \(it knows happy, sad\); pass --judge"):
        judge_columns(meta, ["happy", "fear", "contempt"])
    with pytest.raises(UserError, match="cannot score fear .*or switch the filter off"):
        judge_columns(meta, ["fear"], fix="pass a judge trained on these classes or switch the filter off")
    with pytest.raises(UserError, match="cannot score fear"):
        judge_probabilities((ColumnJudge(2), meta), np.zeros((1, 1, 16, 16), np.uint8), ["fear"])


def test_a_real_judge_run_in_another_class_order(tiny_judge_run, demo_ds, tmp_path):
    judge = get_judge(demo_ds, tmp_path / "gan", tiny_judge_run, "cpu", progress=False)
    assert not (tmp_path / "gan" / JUDGE_DIR).exists()  # the given run is used, none trained
    model, meta = load_classifier(tiny_judge_run)
    order = list(reversed(meta["classes"]))
    faces = demo_ds.images[:6]
    probs = judge_probabilities(judge, faces, order)
    direct = predict_proba(model, faces)  # demo faces already have the judge's size
    np.testing.assert_allclose(probs, direct[:, ::-1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_default_judge_config_caps_its_epoch():
    cfg = default_judge_config(100_000)
    assert (cfg.model, cfg.epochs, cfg.class_weighted, cfg.epoch_samples) == ("resnet18", 8, True, 8192)
    assert default_judge_config(500).epoch_samples == 500
