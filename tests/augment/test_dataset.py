"""FaceDataset: validation, selection, class remapping, concat, and the .npz cache."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from augment.core.dataset import FaceDataset, concat
from augment.core.errors import UserError
from augment.core.readers import detect_format, load_dataset
from tests.conftest import DEMO_COUNTS, make_folder_tree

pytestmark = pytest.mark.usefixtures("quiet")


def make_ds(n: int = 6, classes=("happy", "sad", "angry"), size: int = 4, seed: int = 0, **kw) -> FaceDataset:
    rng = np.random.default_rng(seed)
    args = dict(
        images=rng.integers(0, 256, (n, 1, size, size), dtype=np.uint8),
        labels=np.arange(n) % len(classes),
        splits=np.array(["train", "val", "test"] * n)[:n],
        sources=np.array([f"/data/{i}.png" for i in range(n)]),
        subjects=np.array([f"S{i % 2:03d}" for i in range(n)]),
        classes=list(classes),
        synthetic=np.arange(n) % 4 == 0,
        name="tiny",
        skipped=[("/data/bad.jpg", "UnidentifiedImageError: cannot identify image file")],
        dropped={"none": 3, "non-face": 1},
    )
    args.update(kw)
    return FaceDataset(**args)


def assert_same(a: FaceDataset, b: FaceDataset) -> None:
    np.testing.assert_array_equal(a.images, b.images)
    for name in ("labels", "splits", "sources", "subjects", "synthetic"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    assert a.classes == b.classes
    assert a.name == b.name
    assert [tuple(s) for s in a.skipped] == [tuple(s) for s in b.skipped]
    assert a.dropped == b.dropped


class TestFaceDataset:
    def test_properties(self):
        ds = make_ds()
        assert (len(ds), ds.channels, ds.size, ds.num_classes) == (6, 1, 4, 3)
        assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64

    def test_defaults(self):
        ds = FaceDataset(np.zeros((2, 1, 4, 4)), [0, 0], ["train"] * 2, ["a", "b"], ["", ""], ["happy"])
        assert ds.synthetic.tolist() == [False, False] and ds.skipped == [] and ds.dropped == {}

    @pytest.mark.parametrize(
        "kw,frag",
        [
            ({"images": np.zeros((6, 4, 4), np.uint8)}, "(N, C, H, W)"),
            ({"labels": np.zeros(5, np.int64)}, "labels has 5 entries"),
            ({"labels": np.full(6, 3)}, "out of range"),
            ({"labels": np.full(6, -1)}, "out of range"),
            ({"splits": np.array(["train"] * 5 + ["holdout"])}, "holdout"),
            ({"subjects": np.array(["a"])}, "subjects"),
        ],
    )
    def test_validation(self, kw, frag):
        with pytest.raises(ValueError, match=frag.replace("(", r"\(").replace(")", r"\)")):
            make_ds(**kw)

    def test_subset_split_counts(self):
        ds = make_ds(9)
        assert ds.counts() == {"happy": 3, "sad": 3, "angry": 3}
        assert ds.counts("train") == {"happy": 3, "sad": 0, "angry": 0}
        val = ds.split("val")
        assert len(val) == 3 and set(val.splits.tolist()) == {"val"}
        assert val.sources.tolist() == ["/data/1.png", "/data/4.png", "/data/7.png"]
        assert ds.has_split("test") and not make_ds(1).has_split("val")
        with pytest.raises(ValueError, match="unknown split"):
            ds.split("dev")
        sub = ds.subset(np.array([2, 0]))
        assert sub.sources.tolist() == ["/data/2.png", "/data/0.png"]
        assert sub.dropped == ds.dropped and sub.dropped is not ds.dropped

    def test_with_classes_reindexes(self):
        ds = make_ds(6, classes=("neutral", "happy", "sad"))
        out = ds.with_classes(["sad", "neutral"])
        assert out.classes == ["neutral", "sad"]
        assert [out.classes[i] for i in out.labels] == ["neutral", "sad", "neutral", "sad"]
        with pytest.raises(UserError, match="no class angry"):
            ds.with_classes(["angry"])

    def test_remap_to_superset(self):
        ds = make_ds(3, classes=("happy", "sad", "angry"))
        out = ds.remap_to(["neutral", "happy", "sad", "surprise", "angry"])
        assert [out.classes[i] for i in out.labels] == ["happy", "sad", "angry"]
        with pytest.raises(UserError, match="angry"):
            ds.remap_to(["happy", "sad"])

    def test_concat(self):
        a = make_ds(3, classes=("sad", "angry"), seed=1)
        b = make_ds(2, classes=("happy",), seed=2, dropped={"none": 2})
        c = concat([a, b], name="both")
        assert c.classes == ["happy", "sad", "angry"]
        assert [c.classes[i] for i in c.labels] == ["sad", "angry", "sad", "happy", "happy"]
        assert c.dropped == {"none": 5, "non-face": 1}
        assert len(c.skipped) == 2 and c.name == "both"
        with pytest.raises(ValueError, match="shapes differ"):
            concat([a, make_ds(2, size=8)])

    def test_pixel_hashes(self):
        ds = make_ds(3)
        ds.images[2] = ds.images[0]
        h = ds.pixel_hashes()
        assert h[0] == h[2] != h[1]


class TestCache:
    def test_round_trip_every_field(self, tmp_path):
        ds = make_ds(7)
        ds.save(tmp_path / "c.npz")
        assert detect_format(tmp_path / "c.npz") == "cache"
        assert_same(FaceDataset.load(tmp_path / "c.npz"), ds)
        assert_same(load_dataset(tmp_path / "c.npz"), ds)
        assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file

    def test_round_trip_empty_lists(self, tmp_path):
        ds = make_ds(2, skipped=[], dropped={}, name="")
        ds.save(tmp_path / "c.npz")
        assert_same(FaceDataset.load(tmp_path / "c.npz"), ds)

    def test_round_trip_from_reader(self, tmp_path):
        make_folder_tree(tmp_path / "tree", {"train/happy": 2, "test/sad": 1, "train/sad": ["S005_001_01.png"]})
        (tmp_path / "tree/train/happy/bad.jpg").write_bytes(b"nope")
        ds = load_dataset(tmp_path / "tree", size=16)
        ds.save(tmp_path / "c.npz")
        back = load_dataset(tmp_path / "c.npz")
        assert_same(back, ds)
        assert back.subjects.tolist().count("S005") == 1 and len(back.skipped) == 1

    def test_cache_resize_and_class_filter(self, tmp_path):
        ds = make_ds(6)
        ds.save(tmp_path / "c.npz")
        out = load_dataset(tmp_path / "c.npz", size=8, channels=3)
        assert out.images.shape == (6, 3, 8, 8)
        limited = load_dataset(tmp_path / "c.npz", classes="happy,angry")
        assert limited.classes == ["happy", "angry"] and len(limited) == 4
        with pytest.raises(UserError, match="empty"):
            load_dataset(tmp_path / "c.npz", classes="fear")
        with pytest.raises(UserError, match="channels"):
            load_dataset(tmp_path / "c.npz", channels=2)

    def test_non_cache_npz(self, tmp_path):
        np.savez(tmp_path / "other.npz", x=np.zeros(3))
        with pytest.raises(UserError, match="not an augment cache file") as info:
            load_dataset(tmp_path / "other.npz")
        assert "augment prepare" in str(info.value) and "\n" not in str(info.value)

    def test_npy_forced_as_cache(self, tmp_path):
        np.save(tmp_path / "x.npy", np.zeros(3))
        with pytest.raises(UserError, match="not an augment cache file"):
            load_dataset(tmp_path / "x.npy", format="cache")

    def test_corrupt_cache(self, tmp_path):
        make_ds(3).save(tmp_path / "c.npz")
        data = (tmp_path / "c.npz").read_bytes()
        (tmp_path / "c.npz").write_bytes(data[: len(data) // 2])
        with pytest.raises(UserError, match="cannot read cache file|not an augment cache"):
            load_dataset(tmp_path / "c.npz")

    def test_cache_missing_field(self, tmp_path):
        make_ds(3).save(tmp_path / "c.npz")
        with zipfile.ZipFile(tmp_path / "c.npz") as z:
            arrays = {n[:-4]: np.load(z.open(n)) for n in z.namelist() if n != "synthetic.npy"}
        np.savez(tmp_path / "d.npz", **arrays)
        with pytest.raises(UserError, match="rebuild"):
            load_dataset(tmp_path / "d.npz")

    def test_newer_cache_version(self, tmp_path):
        make_ds(3).save(tmp_path / "c.npz")
        with np.load(tmp_path / "c.npz") as z:
            arrays = dict(z)
        arrays["version"] = np.array(99)
        np.savez(tmp_path / "c.npz", **arrays)
        with pytest.raises(UserError, match="newer"):
            load_dataset(tmp_path / "c.npz")


class TestDemoFixture:
    def test_demo_ds_shape_and_counts(self, demo_ds, demo_dir):
        assert demo_ds.classes == list(DEMO_COUNTS)
        assert demo_ds.images.shape[1:] == (1, 48, 48)
        assert demo_ds.counts("train") == DEMO_COUNTS
        assert demo_ds.counts("test") == {c: max(1, round(n * 0.2)) for c, n in DEMO_COUNTS.items()}
        assert (demo_dir / "train" / "happy").is_dir()
        assert demo_ds.skipped == [] and not demo_ds.has_split("val")
