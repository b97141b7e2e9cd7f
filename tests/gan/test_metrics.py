"""GAN sample metrics: Fréchet distance, nearest neighbours, memorisation, judge assignment, gan-eval."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from augment.core.errors import UserError
from gan.metrics import (
    FID_WEIGHTS_FILE,
    find_inception_weights,
    frechet_distance,
    judge_assignment,
    memorisation_report,
    near_copies,
    near_copy_threshold,
    nearest_distances,
)
from tests.conftest import TINY_GAN_STEPS

pytestmark = pytest.mark.usefixtures("quiet")


# --------------------------------------------------------------------------- Fréchet distance
def test_frechet_zero_for_identical_and_grows_with_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    assert abs(frechet_distance(a, a)) < 1e-6
    shifted = [frechet_distance(a, a + s) for s in (0.5, 1.0, 2.0)]
    # Same covariance, mean moved by s in each of 6 dims: distance = 6 s^2.
    np.testing.assert_allclose(shifted, [6 * 0.25, 6.0, 24.0], rtol=1e-6)
    b = rng.normal(size=(400, 6))  # another draw of the same distribution: small, not zero
    assert 0 < frechet_distance(a, b) < 0.5 < frechet_distance(a, b * 2)


# --------------------------------------------------------------------------- nearest neighbours, memorisation
def test_nearest_distances_finds_exact_and_shifted_copies():
    rng = np.random.default_rng(1)
    bank = rng.integers(0, 256, (300, 1, 48, 48), dtype=np.uint8)  # > 25 rows: cdist's matrix-product path
    shifted = np.clip(bank[3].astype(int) + 4, 0, 255)
    shift_rms = np.sqrt(((shifted - bank[3].astype(int)) ** 2).mean())
    fresh = rng.integers(0, 256, (1, 48, 48), dtype=np.uint8)
    queries = np.stack([bank[5], bank[37], bank[100], bank[299], shifted.astype(np.uint8), fresh])
    dist, idx = nearest_distances(queries, bank, chunk=4)
    assert dist[:4].tolist() == [0.0] * 4  # exactly 0 (cdist alone gave 0.059 for #299)
    assert idx[:4].tolist() == [5, 37, 100, 299]
    assert dist[4] == pytest.approx(shift_rms, rel=1e-5) and idx[4] == 3  # RMS on the 0-255 scale
    assert dist[5] > 40
    # A 3-channel bank works the same way.
    rgb = rng.integers(0, 256, (30, 3, 8, 8), dtype=np.uint8)
    d, i = nearest_distances(rgb[[29, 0]], rgb)
    assert d.tolist() == [0.0, 0.0] and i.tolist() == [29, 0]


def test_near_copy_threshold_takes_its_reference_set_explicitly():
    rng = np.random.default_rng(3)
    bank = rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    # A reference of bank faces 2 grey levels brighter: each one's nearest bank face is its original.
    ref = np.clip(bank[:10].astype(int) + 2, 0, 255).astype(np.uint8)
    d_ref, _ = nearest_distances(ref, bank)
    assert near_copy_threshold(ref, bank, 0.5) == pytest.approx(np.quantile(d_ref, 0.5))
    assert 1 < near_copy_threshold(ref, bank, 0.5) <= 2

    # Train-to-train: with own_rows a face is not its own neighbour; by brute force over the other faces.
    flat = bank.reshape(40, -1).astype(float)
    pair = np.sqrt(((flat[:, None] - flat[None]) ** 2).mean(-1))
    np.fill_diagonal(pair, np.inf)
    d, i = nearest_distances(bank, bank, own_rows=np.arange(40))
    np.testing.assert_allclose(d, pair.min(1), rtol=1e-5)
    assert i.tolist() == pair.argmin(1).tolist()
    pick = np.array([4, 0, 17])
    tt = near_copy_threshold(bank[pick], bank, 0.01, own_rows=pick)
    assert tt == pytest.approx(np.quantile(pair.min(1)[pick], 0.01), rel=1e-5) and tt > 40
    # Without own_rows every face finds itself at 0: exact duplicates are ignored, nothing is left.
    assert near_copy_threshold(bank, bank, 0.01) == 0.0
    assert near_copies(np.array([0.0, tt - 1e-6, tt, tt + 1]), tt).tolist() == [True, True, False, False]


def test_memorisation_counts_planted_copies_not_random_samples(demo_ds):
    train, test = demo_ds.split("train"), demo_ds.split("test")
    classes = demo_ds.classes
    fear, happy = classes.index("fear"), classes.index("happy")
    rng = np.random.default_rng(2)
    fear_idx = np.flatnonzero(train.labels == fear)[:3]
    copies = train.images[fear_idx].copy()
    copies[1] = np.clip(copies[1].astype(int) + rng.integers(-1, 2, copies[1].shape), 0, 255)  # a near-copy
    noise = rng.integers(0, 256, (5, *train.images.shape[1:]), dtype=np.uint8)
    samples = np.concatenate([copies, noise])
    labels = np.array([fear] * 3 + [happy] * 5)

    rep = memorisation_report(samples, labels, train.images, train.labels, test.images, test.labels, classes)
    assert rep["reference"] == "test-to-train" and "test-to-train" in rep["threshold_rule"]
    assert rep["threshold"] == near_copy_threshold(test.images, train.images, 0.01)  # the one rule
    assert rep["threshold"] > 1
    assert rep["test_exact_duplicates_of_train"] == 0
    assert rep["near_copies"] == 3
    assert rep["per_class"]["fear"]["near_copies"] == 3 and rep["per_class"]["fear"]["samples"] == 3
    assert rep["per_class"]["fear"]["sample_nn_min"] == 0
    assert rep["per_class"]["happy"]["near_copies"] == 0
    assert rep["per_class"]["happy"]["sample_nn_median"] > rep["per_class"]["happy"]["test_nn_median"]
    assert set(rep["per_class"]) == {"fear", "happy"}  # classes without samples are left out
    assert rep["_sample_nn_index"][:3].tolist() == fear_idx.tolist()

    # A test set holding an exact copy of a training image: it is reported and kept out of the threshold.
    test_images = np.concatenate([test.images, train.images[:1]])
    test_labels = np.concatenate([test.labels, train.labels[:1]])
    rep2 = memorisation_report(samples, labels, train.images, train.labels, test_images, test_labels, classes)
    assert rep2["test_exact_duplicates_of_train"] == 1
    assert rep2["threshold"] == rep["threshold"]


# --------------------------------------------------------------------------- judge, inception weights
def test_judge_assignment_by_hand():
    classes = ["a", "b", "c"]
    probs = np.array(
        [
            [0.7, 0.2, 0.1],  # a -> a
            [0.2, 0.5, 0.3],  # a -> b
            [0.1, 0.8, 0.1],  # b -> b
            [0.3, 0.3, 0.4],  # b -> c
            [0.1, 0.1, 0.8],  # b -> c
        ]
    )
    labels = np.array([0, 0, 1, 1, 1])
    out = judge_assignment(probs, labels, classes)
    assert out == pytest.approx({"a": 0.5, "b": 1 / 3})  # 'c' has no samples: left out, not 0 or NaN


def test_find_inception_weights_never_downloads(empty_hub, tmp_path):
    assert find_inception_weights(None) is None
    assert find_inception_weights("") is None
    with pytest.raises(UserError, match="no such file"):
        find_inception_weights(tmp_path / "missing.pth")
    with pytest.raises(UserError):
        find_inception_weights(tmp_path)  # a folder is not a weights file
    cached = empty_hub / "checkpoints" / FID_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert find_inception_weights(None) == cached
    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"y")
    assert find_inception_weights(mine) == mine  # the user's file wins over the cache


# --------------------------------------------------------------------------- gan-eval smoke test
def test_evaluate_gan_smoke(tiny_gan_run, tiny_judge_run, demo_ds, empty_hub, tmp_path):
    from gan.evaluate import evaluate_gan

    run = shutil.copytree(tiny_gan_run, tmp_path / "gan")  # gan-eval writes into the run: not the shared one
    report = evaluate_gan(run, demo_ds, judge_dir=tiny_judge_run, per_class=8, device="cpu", progress=False)
    for name in ("metrics.json", "judge.png", "nearest.png"):
        assert (run / "eval" / name).is_file(), name
    assert not (run / "judge").exists()  # the given judge was used, none trained
    saved = json.loads((run / "eval" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(report))
    classes = demo_ds.classes
    assert saved["checkpoint_step"] == TINY_GAN_STEPS and saved["samples_per_class"] == 8
    assignment = saved["judge"]["sample_assignment"]
    assert set(assignment) == set(classes)
    assert all(0 <= v <= 1 for v in assignment.values())
    assert set(saved["judge"]["real_test_recall"]) == set(classes)
    assert saved["judge"]["chance"] == pytest.approx(1 / len(classes))
    assert "not FID" in saved["frechet"]["space"]  # no Inception weights on disk: says so
    assert set(saved["frechet"]["per_class"]) == set(classes)
    assert all(np.isfinite(v) and v >= 0 for v in saved["frechet"]["per_class"].values())
    mem = saved["memorisation"]
    assert set(mem["per_class"]) == set(classes)
    assert sum(v["samples"] for v in mem["per_class"].values()) == 8 * len(classes)
    assert not any(k.startswith("_") for k in mem)
