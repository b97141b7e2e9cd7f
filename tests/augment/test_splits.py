"""ensure_val_split: deterministic, stratified, leak-free (subjects and duplicates stay together)."""

from __future__ import annotations

import numpy as np
import pytest

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.readers import load_dataset
from augment.core.splits import carve_train_val, ensure_val_split, leak_groups
from tests.conftest import make_ckplus, make_folder_tree

pytestmark = pytest.mark.usefixtures("quiet")

CLASSES = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "angry"]


def make_ds(per_class: dict[int, int], subjects=None, seed: int = 0, split: str = "train") -> FaceDataset:
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, c) for c, n in per_class.items()])
    n = len(labels)
    return FaceDataset(
        images=rng.integers(0, 256, (n, 1, 6, 6), dtype=np.uint8),
        labels=labels,
        splits=np.full(n, split),
        sources=np.array([f"{i}.png" for i in range(n)]),
        subjects=np.full(n, "") if subjects is None else np.asarray(subjects),
        classes=CLASSES,
    )


def val_sources(ds: FaceDataset) -> list[str]:
    return ds.sources[ds.splits == "val"].tolist()


class TestStratified:
    def test_deterministic(self):
        ds = make_ds({0: 40, 1: 30, 2: 5, 5: 2})
        a, b = ensure_val_split(ds, 0.2, seed=3), ensure_val_split(ds, 0.2, seed=3)
        assert val_sources(a) == val_sources(b)
        assert val_sources(a) != val_sources(ensure_val_split(ds, 0.2, seed=4))
        assert (ds.splits == "train").all()  # the input is not modified

    def test_every_class_gets_val_and_keeps_train(self):
        per_class = {0: 100, 1: 50, 2: 20, 3: 7, 4: 3, 5: 2, 6: 1}
        out = ensure_val_split(make_ds(per_class), 0.1, seed=0)
        val, train = out.counts("val"), out.counts("train")
        for c, n in per_class.items():
            name = CLASSES[c]
            if n >= 2:
                assert val[name] >= 1, name
                assert train[name] >= 1, name
                assert abs(val[name] - max(1, 0.1 * n)) <= 1, (name, val[name])
            else:
                assert val[name] == 0 and train[name] == 1
        assert val["neutral"] == 10 and val["happy"] == 5 and val["sad"] == 2
        assert len(out) == sum(per_class.values())

    @pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
    def test_fraction_roughly_right(self, fraction):
        out = ensure_val_split(make_ds({0: 200, 1: 120, 2: 40}), fraction, seed=1)
        for name, n in (("neutral", 200), ("happy", 120), ("sad", 40)):
            assert abs(out.counts("val")[name] - fraction * n) <= 1

    def test_duplicates_stay_together(self):
        ds = make_ds({0: 30, 1: 30})
        for i in range(0, 20, 2):  # ten pairs of identical images within a class
            ds.images[i + 1] = ds.images[i]
        ds.images[40] = ds.images[1]  # and a duplicate with a different label
        for seed in range(5):
            out = ensure_val_split(ds, 0.3, seed=seed)
            h = out.pixel_hashes()
            for value in np.unique(h):
                assert len(set(out.splits[h == value].tolist())) == 1

    def test_class_of_identical_images_stays_in_train(self):
        ds = make_ds({0: 10, 1: 3})
        ds.images[10:13] = ds.images[10]
        out = ensure_val_split(ds, 0.5, seed=0)
        assert out.counts("val")["happy"] == 0 and out.counts("train")["happy"] == 3

    def test_test_split_and_synthetic_untouched(self):
        ds = make_ds({0: 20, 1: 20})
        ds.splits[:5] = "test"
        ds.synthetic[30:] = True
        out = ensure_val_split(ds, 0.3, seed=0)
        assert (out.splits[:5] == "test").all()
        assert (out.splits[30:] == "train").all()
        assert out.synthetic.tolist() == ds.synthetic.tolist()

    def test_synthetic_files_read_from_disk_stay_in_train(self, tmp_path):
        """A rebalanced tree (syn_ files, no val/) read back: val is carved from the real faces only,
        sized on the real counts; a class with one real face keeps it in train."""
        syn = {c: [f"syn_{c}_{i:06d}.png" for i in range(n)] for c, n in (("disgust", 18), ("fear", 9))}
        layout = {
            "train/happy": 20,
            "train/disgust": [f"real_{i}.png" for i in range(2)] + syn["disgust"],
            "train/fear": ["real_0.png"] + syn["fear"],
            "test/happy": 2,
        }
        make_folder_tree(tmp_path, layout)
        ds = load_dataset(tmp_path)
        assert ds.synthetic.sum() == 27
        for seed, fraction in ((0, 0.1), (1, 0.5), (2, 0.9)):
            out = ensure_val_split(ds, fraction, seed=seed)
            val = out.split("val")
            assert len(val) and not val.synthetic.any()
            assert (out.splits[out.synthetic] == "train").all()
            assert val.counts()["fear"] == 0 and val.counts()["disgust"] == 1  # capped by the real faces
            assert out.counts("test") == ds.counts("test")

    def test_noop_cases(self):
        ds = make_ds({0: 10, 1: 10})
        ds.splits[0] = "val"
        assert ensure_val_split(ds, 0.2) is ds
        fresh = make_ds({0: 10})
        assert ensure_val_split(fresh, 0.0) is fresh
        only_test = make_ds({0: 5}, split="test")
        assert not ensure_val_split(only_test, 0.2).has_split("val")

    @pytest.mark.parametrize("fraction", [1.0, 1.5])
    def test_bad_fraction(self, fraction):
        with pytest.raises(UserError, match="fraction"):
            ensure_val_split(make_ds({0: 10}), fraction)

    def test_demo_dataset(self, demo_ds):
        out = ensure_val_split(demo_ds, 0.2, seed=0)
        assert out.counts("val") == {c: max(1, round(0.2 * n)) for c, n in demo_ds.counts("train").items()}
        assert out.counts("test") == demo_ds.counts("test")


class TestSubjects:
    def test_subjects_stay_on_one_side_and_classes_covered(self):
        rng = np.random.default_rng(0)
        n_subj = 30
        subjects, per_class = [], {}
        for c in range(len(CLASSES)):
            count = 0
            for s in range(n_subj):
                if rng.random() < 0.6:  # each subject shows some of the classes, 1-3 images each
                    k = int(rng.integers(1, 4))
                    subjects += [f"S{s:03d}"] * k
                    count += k
            per_class[c] = count
        ds = make_ds(per_class, subjects=subjects)
        out = ensure_val_split(ds, 0.2, seed=0)
        for s in np.unique(out.subjects):
            assert len(set(out.splits[out.subjects == s].tolist())) == 1, s
        val = out.counts("val")
        for c, n in per_class.items():
            assert 1 <= val[CLASSES[c]] < n
            # roughly stratified: within a few images of 20% of each class
            assert abs(val[CLASSES[c]] - 0.2 * n) <= 4, (CLASSES[c], val[CLASSES[c]], n)
        assert val_sources(out) == val_sources(ensure_val_split(ds, 0.2, seed=0))

    def test_duplicate_across_subjects_joins_them(self):
        ds = make_ds({0: 6, 1: 6}, subjects=[f"S{i % 4:03d}" for i in range(12)])
        ds.images[1] = ds.images[0]  # S000 and S001 share an image
        groups = leak_groups(ds.subjects, ds.pixel_hashes())
        assert groups[0] == groups[1] == groups[4] == groups[5]
        assert len(np.unique(groups)) == 3
        for seed in range(4):
            out = ensure_val_split(ds, 0.3, seed=seed)
            assert len(set(out.splits[np.isin(out.subjects, ["S000", "S001"])].tolist())) == 1

    def test_some_images_without_subject(self):
        subjects = ["S001"] * 5 + ["S002"] * 5 + [""] * 10
        ds = make_ds({0: 10, 1: 10}, subjects=subjects)
        for seed in range(4):
            out = ensure_val_split(ds, 0.3, seed=seed)
            for s in ("S001", "S002"):
                assert len(set(out.splits[out.subjects == s].tolist())) == 1
            assert out.has_split("val")

    def test_ckplus_tree(self, tmp_path):
        make_ckplus(tmp_path, subjects=10, per=2)
        ds = load_dataset(tmp_path)
        out = ensure_val_split(ds, 0.2, seed=0)
        assert out.has_split("val") and out.has_split("train")
        for s in np.unique(out.subjects):
            assert len(set(out.splits[out.subjects == s].tolist())) == 1, s
        assert all(v >= 1 for v in out.counts("val").values())
        assert all(v >= 1 for v in out.counts("train").values())
        assert val_sources(out) == val_sources(ensure_val_split(ds, 0.2, seed=0))


class TestCarveTrainVal:
    """The one carve every command calls: test dropped, val carved from real train, synthetic kept only on request."""

    def poisoned(self) -> FaceDataset:
        ds = make_ds({0: 40, 1: 30, 2: 20})
        ds.splits[:6] = "test"
        ds.synthetic[60:70] = True
        return ds

    def test_real_only_drops_test_and_synthetic(self):
        out = carve_train_val(self.poisoned(), 0.2)
        assert "test" not in set(out.splits.tolist()) and not out.synthetic.any()
        assert len(out) == 90 - 6 - 10 and out.has_split("val")

    def test_keep_synthetic_keeps_them_in_train_only(self):
        ds = self.poisoned()
        out = carve_train_val(ds, 0.2, keep_synthetic=True)
        assert out.synthetic.sum() == 10 and (out.splits[out.synthetic] == "train").all()
        # the validation faces are the same whether synthetic faces ride along or not
        assert val_sources(out) == val_sources(carve_train_val(ds, 0.2))
