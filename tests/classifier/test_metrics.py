"""Classification metrics against hand-computed values, and the imbalance-aware losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from classifier.losses import FocalLoss, inverse_frequency_weights, make_loss
from classifier.metrics import classification_metrics, confusion_matrix

CLASSES = ["a", "b", "c"]


class TestClassificationMetrics:
    def test_hand_computed_three_class_example(self):
        #            index: 0  1  2  3  4  5  6  7
        y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
        y_pred = np.array([0, 0, 0, 1, 1, 2, 2, 2])
        # confusion (rows true, columns predicted):
        #   a: 3 right, 1 called b        -> [3, 1, 0]
        #   b: 1 right, 1 called c        -> [0, 1, 1]
        #   c: 2 right                    -> [0, 0, 2]
        # accuracy = (3 + 1 + 2) / 8 = 0.75
        # predicted totals (column sums) = [3, 2, 3]; supports (row sums) = [4, 2, 2]
        # precision: a 3/3 = 1,   b 1/2,  c 2/3
        # recall:    a 3/4,       b 1/2,  c 2/2 = 1
        # F1 = 2PR/(P+R): a 2*1*0.75/1.75 = 6/7, b 0.5, c 2*(2/3)*1/(5/3) = 4/5
        # macro-F1 = (6/7 + 1/2 + 4/5) / 3 = ((60 + 35 + 56) / 70) / 3 = 151/210 ~ 0.719
        # balanced accuracy = mean recall = (3/4 + 1/2 + 1) / 3 = 0.75
        m = classification_metrics(y_true, y_pred, CLASSES)
        assert m["n"] == 8
        assert m["confusion_matrix"] == [[3, 1, 0], [0, 1, 1], [0, 0, 2]]
        assert m["accuracy"] == pytest.approx(0.75)
        expected = {
            "a": (1.0, 0.75, 6 / 7, 4),
            "b": (0.5, 0.5, 0.5, 2),
            "c": (2 / 3, 1.0, 4 / 5, 2),
        }
        for c, (p, r, f1, support) in expected.items():
            got = m["per_class"][c]
            assert got["precision"] == pytest.approx(p), c
            assert got["recall"] == pytest.approx(r), c
            assert got["f1"] == pytest.approx(f1), c
            assert got["support"] == support, c
        assert m["macro_f1"] == pytest.approx(151 / 210)
        assert m["balanced_accuracy"] == pytest.approx(0.75)
        assert m["classes"] == CLASSES

    def test_confusion_matrix_rows_are_true_classes(self):
        cm = confusion_matrix(np.array([0, 2]), np.array([1, 1]), 3)
        assert cm.tolist() == [[0, 1, 0], [0, 0, 0], [0, 1, 0]]

    def test_class_absent_from_truth_is_left_out_of_the_macro_average(self):
        # c never occurs in y_true but is predicted once (a wrong guess for an a).
        y_true = np.array([0, 0, 1, 1])
        y_pred = np.array([0, 2, 1, 1])
        # a: P 1/1, R 1/2 -> F1 2/3;  b: P 2/2, R 2/2 -> F1 1;  c: support 0, P 0/1 -> F1 0
        # macro over present classes a, b = (2/3 + 1) / 2 = 5/6 (with c it would be 5/9)
        m = classification_metrics(y_true, y_pred, CLASSES)
        assert m["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        assert m["macro_f1"] == pytest.approx(5 / 6)
        assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
        assert m["accuracy"] == pytest.approx(3 / 4)

    def test_never_predicted_class_has_precision_zero_not_nan(self):
        y_true = np.array([0, 1, 2])
        y_pred = np.array([0, 0, 0])
        m = classification_metrics(y_true, y_pred, CLASSES)
        for c in ("b", "c"):
            v = m["per_class"][c]
            assert v["precision"] == 0.0 and v["recall"] == 0.0 and v["f1"] == 0.0
        # a: P 1/3, R 1 -> F1 0.5; macro = 0.5 / 3
        assert m["per_class"]["a"]["f1"] == pytest.approx(0.5)
        assert m["macro_f1"] == pytest.approx(0.5 / 3)
        flat = [x for v in m["per_class"].values() for x in v.values()] + [m["macro_f1"], m["balanced_accuracy"]]
        assert not any(math.isnan(x) for x in flat)

    def test_empty_input(self):
        m = classification_metrics(np.array([], dtype=int), np.array([], dtype=int), CLASSES)
        assert m["n"] == 0 and m["accuracy"] == 0.0 and m["macro_f1"] == 0.0


class TestLosses:
    def test_inverse_frequency_weights(self):
        labels = np.array([0, 0, 0, 1])
        # w_c = N / (K_present * n_c): N 4, two classes present -> a 4/(2*3) = 2/3, b 4/(2*1) = 2; c absent -> 0
        w = inverse_frequency_weights(labels, 3)
        assert w.dtype == torch.float32
        assert w.tolist() == pytest.approx([2 / 3, 2.0, 0.0])
        # balanced data gets weight 1 everywhere
        assert inverse_frequency_weights(np.array([0, 1, 2, 0, 1, 2]), 3).tolist() == pytest.approx([1, 1, 1])

    def test_focal_loss_with_gamma_zero_is_cross_entropy(self):
        g = torch.Generator().manual_seed(0)
        logits = torch.randn(10, 3, generator=g)
        target = torch.randint(0, 3, (10,), generator=g)
        assert FocalLoss(0.0)(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)
        w = torch.tensor([0.5, 2.0, 1.0])
        assert FocalLoss(0.0, w)(logits, target).item() == pytest.approx(
            F.cross_entropy(logits, target, weight=w).item(), rel=1e-6
        )

    def test_focal_loss_down_weights_easy_examples(self):
        logits = torch.tensor([[4.0, 0.0], [0.2, 0.0]])  # one easy, one hard example of class 0
        target = torch.tensor([0, 0])
        ce = F.cross_entropy(logits, target, reduction="none")
        focal = torch.stack([FocalLoss(2.0)(logits[i : i + 1], target[i : i + 1]) for i in range(2)])
        assert (focal < ce).all()
        assert (focal[0] / ce[0]) < (focal[1] / ce[1])  # the easy one loses more of its weight

    def test_make_loss_choices_and_weighted_ce_differs(self):
        labels = np.array([0, 0, 0, 0, 0, 1, 2])
        logits = torch.tensor([[2.0, 0.1, -1.0], [0.0, 1.0, 0.5], [0.3, 0.2, 0.1], [1.0, -1.0, 0.0]])
        target = torch.tensor([0, 1, 2, 0])
        plain = make_loss(labels, 3, class_weighted=False, focal_gamma=0.0, label_smoothing=0.0)
        weighted = make_loss(labels, 3, class_weighted=True, focal_gamma=0.0, label_smoothing=0.0)
        focal = make_loss(labels, 3, class_weighted=True, focal_gamma=2.0, label_smoothing=0.0)
        assert isinstance(plain, torch.nn.CrossEntropyLoss) and plain.weight is None
        assert isinstance(weighted, torch.nn.CrossEntropyLoss)
        assert torch.allclose(weighted.weight, inverse_frequency_weights(labels, 3))
        assert isinstance(focal, FocalLoss) and focal.gamma == 2.0 and focal.weight is not None
        assert plain(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item())
        assert abs(weighted(logits, target).item() - plain(logits, target).item()) > 1e-3
