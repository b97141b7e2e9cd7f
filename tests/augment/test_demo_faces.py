"""Tests for the procedural demo faces that stand in for FER2013 in the demo and the test suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augment import demo_drawing, demo_faces
from augment.demo_faces import (
    DEFAULT_COUNTS,
    DEMO_CLASSES,
    make_demo_arrays,
    parse_counts,
    render_faces,
    write_demo_dataset,
)

N_CLASSES = len(DEMO_CLASSES)


@pytest.fixture(scope="module")
def train_test() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """200 train faces per class from one seed, 100 test faces per class from another."""
    y_train = np.repeat(np.arange(N_CLASSES), 200)
    y_test = np.repeat(np.arange(N_CLASSES), 100)
    x_train = render_faces(y_train, seed=0)[:, 0].astype(np.float64) / 255.0
    x_test = render_faces(y_test, seed=1)[:, 0].astype(np.float64) / 255.0
    return x_train, y_train, x_test, y_test


def _pool2(x: np.ndarray) -> np.ndarray:
    n, h, w = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4)).reshape(n, -1)


def _nearest_mean_accuracy(x_train, y_train, x_test, y_test) -> float:
    means = np.stack([x_train[y_train == c].mean(0) for c in range(N_CLASSES)])
    dist = ((x_test[:, None, :] - means[None]) ** 2).sum(-1)
    return float((dist.argmin(1) == y_test).mean())


def _standardise_each(x: np.ndarray) -> np.ndarray:
    x = x.reshape(len(x), -1)
    x = x - x.mean(1, keepdims=True)
    return x / (x.std(1, keepdims=True) + 1e-6)


def test_class_constants():
    assert DEMO_CLASSES == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")
    assert list(DEFAULT_COUNTS) == list(DEMO_CLASSES)
    assert DEFAULT_COUNTS["happy"] == 600
    assert DEFAULT_COUNTS["disgust"] == DEFAULT_COUNTS["contempt"] == 36
    expected_ratio = {"neutral": 0.69, "sad": 0.67, "surprise": 0.44, "fear": 0.57, "angry": 0.55}
    for name, ratio in expected_ratio.items():
        assert DEFAULT_COUNTS[name] / 600 == pytest.approx(ratio, abs=0.01)
    assert max(DEFAULT_COUNTS, key=DEFAULT_COUNTS.get) == "happy"


@pytest.mark.parametrize("size", [32, 48, 64])
def test_shapes_dtype_and_contrast(size):
    images = render_faces(np.arange(N_CLASSES), seed=3, size=size)
    assert images.shape == (N_CLASSES, 1, size, size)
    assert images.dtype == np.uint8
    # real pictures, not blank or saturated frames
    assert (images.reshape(N_CLASSES, -1).std(1) > 10).all()
    assert 40 < images.mean() < 215


def test_empty_and_invalid_labels():
    assert render_faces(np.zeros(0, dtype=np.int64)).shape == (0, 1, 48, 48)
    with pytest.raises(ValueError, match="labels"):
        render_faces(np.array([0, N_CLASSES]))
    with pytest.raises(ValueError, match="labels"):
        render_faces(np.array([-1]))
    with pytest.raises(ValueError, match="1-D integer"):
        render_faces(np.array([0.5]))


def test_deterministic_per_seed():
    labels = np.arange(40) % N_CLASSES
    a = render_faces(labels, seed=11)
    b = render_faces(labels, seed=11)
    c = render_faces(labels, seed=12)
    assert a.tobytes() == b.tobytes()
    diff = np.abs(a.astype(int) - c.astype(int)).mean(axis=(1, 2, 3))
    assert (diff > 5).all()


def test_render_is_independent_of_chunking(monkeypatch):
    """Chunking is only a speed detail: face i must not depend on how the batch is split."""
    labels = np.arange(20) % N_CLASSES
    monkeypatch.setattr(demo_faces, "_CHUNK", 7)
    small = render_faces(labels, seed=5)
    monkeypatch.setattr(demo_faces, "_CHUNK", 256)
    big = render_faces(labels, seed=5)
    assert small.tobytes() == big.tobytes()


def _rows_changed_by_skipping(monkeypatch, step: str) -> np.ndarray:
    """Per image row, how many pixels change when one drawing step of the face is skipped."""
    labels = np.arange(32) % N_CLASSES
    full = render_faces(labels, seed=6, intensity=1.0).astype(int)
    monkeypatch.setattr(demo_drawing, step, lambda *args: None)
    without = render_faces(labels, seed=6, intensity=1.0).astype(int)
    return (np.abs(full - without) > 8).sum(axis=(0, 1, 3))


def test_each_drawing_step_paints_its_own_part_of_the_face(monkeypatch):
    """Ears sit at the sides; eyes, nose and mouth come top to bottom, and each step draws something."""
    centre = {}
    for step in ("_draw_eyes_and_brows", "_draw_nose", "_draw_mouth"):
        with monkeypatch.context() as m:
            rows = _rows_changed_by_skipping(m, step)
        assert rows.sum() > 500, step
        centre[step] = (rows * np.arange(len(rows))).sum() / rows.sum()
    assert centre["_draw_eyes_and_brows"] + 3 < centre["_draw_nose"] < centre["_draw_mouth"] - 3, centre
    assert 16 < centre["_draw_eyes_and_brows"] and centre["_draw_mouth"] < 44, centre
    labels = np.arange(32) % N_CLASSES
    full = render_faces(labels, seed=6, intensity=1.0).astype(int)
    monkeypatch.setattr(demo_drawing, "_draw_ears", lambda *args: None)
    cols = (np.abs(full - render_faces(labels, seed=6, intensity=1.0).astype(int)) > 8).sum(axis=(0, 1, 2))
    assert cols[:14].sum() > 100 and cols[34:].sum() > 100  # both ears, at the sides
    assert cols[18:30].sum() == 0  # the face is painted over them


def test_identity_varies_within_class_and_intensity():
    faces = render_faces(np.full(8, DEMO_CLASSES.index("happy")), seed=2, intensity=1.0)
    flat = faces.reshape(8, -1).astype(int)
    pair_diff = np.abs(flat[:, None] - flat[None]).mean(-1)
    off_diag = pair_diff[~np.eye(8, dtype=bool)]
    assert off_diag.min() > 10  # every pair differs by > 10 grey levels per pixel on average


def test_intensity_scales_the_expression():
    """At intensity 0 a surprised face is a neutral face; at 1 its mouth region gets much darker."""
    surprise = DEMO_CLASSES.index("surprise")
    labels = np.full(64, surprise)
    calm = render_faces(labels, seed=4, intensity=0.0).astype(float)
    full = render_faces(labels, seed=4, intensity=1.0).astype(float)
    # identity parameters are drawn identically, so the difference is the expression itself
    changed = np.abs(full - calm).mean(axis=(1, 2, 3))
    assert changed.mean() > 2
    neutral = render_faces(np.zeros(64, dtype=int), seed=4, intensity=1.0).astype(float)
    assert np.abs(neutral - calm).mean() < 1.0


def test_class_means_differ(train_test):
    x_train, y_train, _, _ = train_test
    means = np.stack([x_train[y_train == c].mean(0) for c in range(N_CLASSES)])
    for i in range(N_CLASSES):
        for j in range(i + 1, N_CLASSES):
            # the most different pixel of every class-mean pair differs by a visible amount
            assert np.abs(means[i] - means[j]).max() > 0.03, (DEMO_CLASSES[i], DEMO_CLASSES[j])


def test_learnable_but_not_trivial(train_test):
    """A linear classifier beats chance by far but is far from perfect; nearest-mean is weaker still,
    because identity (skin, hair, lighting, pose) dominates raw pixel distances."""
    x_train, y_train, x_test, y_test = train_test
    a, b = _pool2(x_train), _pool2(x_test)
    mu, sd = a.mean(0), a.std(0) + 1e-6
    design = np.c_[(a - mu) / sd, np.ones(len(a))]
    weights = np.linalg.solve(
        design.T @ design + 100.0 * np.eye(design.shape[1]), design.T @ np.eye(N_CLASSES)[y_train]
    )
    scores = np.c_[(b - mu) / sd, np.ones(len(b))] @ weights
    linear_acc = float((scores.argmax(1) == y_test).mean())
    assert 0.45 < linear_acc < 0.9, linear_acc

    raw_acc = _nearest_mean_accuracy(
        x_train.reshape(len(x_train), -1), y_train, x_test.reshape(len(x_test), -1), y_test
    )
    crop = (slice(None), slice(12, 48), slice(6, 42))  # the face, after per-image contrast normalisation
    norm_acc = _nearest_mean_accuracy(
        _standardise_each(x_train[crop]), y_train, _standardise_each(x_test[crop]), y_test
    )
    assert raw_acc < 0.99, raw_acc  # identity varies enough that pixel templates cannot solve it
    assert 0.2 < norm_acc < 0.99, norm_acc
    assert norm_acc < linear_acc


def test_make_demo_arrays_counts_and_order():
    images, labels = make_demo_arrays({"sad": 3, "happy": 5, "fear": 0, "contempt": 2}, seed=1, size=32)
    assert images.shape == (10, 1, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    expected = [DEMO_CLASSES.index(c) for c in ["happy"] * 5 + ["sad"] * 3 + ["contempt"] * 2]
    assert labels.tolist() == expected
    assert DEMO_CLASSES.index("fear") not in labels

    _, default_labels = make_demo_arrays(size=16)
    assert np.bincount(default_labels, minlength=N_CLASSES).tolist() == list(DEFAULT_COUNTS.values())

    with pytest.raises(ValueError, match="unknown class"):
        make_demo_arrays({"happpy": 3})
    with pytest.raises(ValueError, match="non-negative"):
        make_demo_arrays({"happy": -1})


def _tree(root: Path) -> dict[str, dict[str, list[str]]]:
    return {
        split.name: {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(split.iterdir())}
        for split in sorted(root.iterdir())
    }


def test_write_demo_dataset(tmp_path):
    out = tmp_path / "data" / "demo"
    counts = {"happy": 6, "sad": 3, "disgust": 2, "fear": 0}
    result = write_demo_dataset(out, counts, seed=7, test_fraction=0.2)

    expected = {"train": {"happy": 6, "sad": 3, "disgust": 2}, "test": {"happy": 1, "sad": 1, "disgust": 1}}
    assert result == expected
    tree = _tree(out)
    assert {split: {c: len(f) for c, f in classes.items()} for split, classes in tree.items()} == expected
    assert tree["train"]["happy"][0] == "happy_00000.png" and tree["train"]["happy"][-1] == "happy_00005.png"
    # nothing left beside the dataset: the temp dir was renamed into place
    assert sorted(p.name for p in out.parent.iterdir()) == ["demo"]

    with Image.open(out / "train" / "sad" / "sad_00000.png") as im:
        assert im.mode == "L" and im.size == (48, 48)
    train_px = {(out / "train" / c / f).read_bytes() for c, fs in tree["train"].items() for f in fs}
    test_px = {(out / "test" / c / f).read_bytes() for c, fs in tree["test"].items() for f in fs}
    assert not train_px & test_px  # test faces come from a different seed

    with pytest.raises(FileExistsError, match=str(out)):
        write_demo_dataset(out, counts)


def test_write_demo_dataset_into_empty_dir(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    result = write_demo_dataset(out, {"angry": 4}, test_fraction=0.5, size=32)
    assert result == {"train": {"angry": 4}, "test": {"angry": 2}}
    with Image.open(out / "test" / "angry" / "angry_00001.png") as im:
        assert im.size == (32, 32)


def test_write_demo_dataset_is_atomic(tmp_path, monkeypatch):
    """A crash half-way (here: while rendering the test split) leaves neither `out` nor a temp dir."""
    real = demo_faces.make_demo_arrays
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return real(*args, **kwargs)

    monkeypatch.setattr(demo_faces, "make_demo_arrays", flaky)
    out = tmp_path / "demo"
    with pytest.raises(RuntimeError, match="interrupted"):
        write_demo_dataset(out, {"happy": 3})
    assert list(tmp_path.iterdir()) == []


def test_parse_counts():
    assert parse_counts("happy=600,disgust=36") == {"happy": 600, "disgust": 36}
    assert parse_counts(" Happy = 5 , contempt=0, ") == {"happy": 5, "contempt": 0}
    with pytest.raises(ValueError, match="unknown class 'joy'"):
        parse_counts("joy=3")
    with pytest.raises(ValueError, match="non-negative integer"):
        parse_counts("happy=lots")
    with pytest.raises(ValueError, match="non-negative integer"):
        parse_counts("happy=2.5")
    with pytest.raises(ValueError, match="non-negative integer"):
        parse_counts("happy=-3")
    with pytest.raises(ValueError, match="expected <class>=<count>"):
        parse_counts("happy")
    with pytest.raises(ValueError, match="more than once"):
        parse_counts("happy=1,happy=2")
    with pytest.raises(ValueError, match="no class counts"):
        parse_counts("")
