"""The published datasets' layouts (RAF-DB, AffectNet, CK+), built tiny in tmp_path, read by load_dataset."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from augment.core.labels import AFFECTNET_CODES, RAFDB_CODES
from augment.core.readers import detect_format, load_dataset
from tests.augment.test_readers import folder_labels, label_names, user_error
from tests.conftest import (
    make_ckplus,
    make_folder_tree,
    make_rafdb,
    random_image,
    write_image,
)

pytestmark = pytest.mark.usefixtures("quiet")


# =========================================================================== RAF-DB basic
RAF_ENTRIES = [
    ("train_00001.jpg", 5),
    ("train_00002.jpg", 1),
    ("train_00003.jpg", 4),
    ("train_00004.jpg", 7),
    ("test_0001.jpg", 2),
    ("test_0002.jpg", 3),
    ("test_0003.jpg", 6),
]


class TestRafdb:
    @pytest.mark.parametrize("variant", ["aligned", "original"])
    def test_basic(self, tmp_path, variant):
        make_rafdb(tmp_path, RAF_ENTRIES, variant=variant)
        assert detect_format(tmp_path) == "rafdb"
        ds = load_dataset(tmp_path, channels=3, size=24)
        assert ds.images.shape == (7, 3, 24, 24)
        got = {Path(s).name: (c, sp) for s, c, sp in zip(ds.sources, label_names(ds), ds.splits, strict=True)}
        suffix = "_aligned.jpg" if variant == "aligned" else ".jpg"
        want = {
            f"{Path(n).stem}{suffix}": (RAFDB_CODES[code], "test" if n.startswith("test") else "train")
            for n, code in RAF_ENTRIES
        }
        assert got == want
        assert all(variant in s for s in ds.sources)
        assert ds.skipped == []

    def test_missing_listed_image_is_skipped(self, tmp_path):
        make_rafdb(tmp_path, RAF_ENTRIES)
        (tmp_path / "Image" / "aligned" / "train_00002_aligned.jpg").unlink()
        ds = load_dataset(tmp_path)
        assert len(ds) == 6
        assert len(ds.skipped) == 1
        path, why = ds.skipped[0]
        assert "train_00002" in path and "not found" in why

    def test_basic_subfolder_and_partition_spelling(self, tmp_path):
        make_rafdb(tmp_path / "basic", RAF_ENTRIES[:2])
        (tmp_path / "basic/EmoLabel/list_patition_label.txt").rename(
            tmp_path / "basic/EmoLabel/list_partition_label.txt"
        )
        assert label_names(load_dataset(tmp_path)) == ["sad", "surprise"]

    def test_bad_label_line(self, tmp_path):
        make_rafdb(tmp_path, RAF_ENTRIES[:2])
        f = tmp_path / "EmoLabel" / "list_patition_label.txt"
        f.write_text(f.read_text() + "train_00009.jpg 9\n")
        user_error(lambda: load_dataset(tmp_path), str(f), "line 3", "1-7")

    def test_classes_limit(self, tmp_path):
        make_rafdb(tmp_path, RAF_ENTRIES)
        ds = load_dataset(tmp_path, classes="sad,neutral")
        assert sorted(label_names(ds)) == ["neutral", "sad"]


# =========================================================================== AffectNet CSV
AFFECTNET_HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression"]


def make_affectnet(root: Path, train_codes: list[int], val_codes: list[int], size: int = 20) -> Path:
    rng = np.random.default_rng(0)
    for fname, codes in (("training.csv", train_codes), ("validation.csv", val_codes)):
        with open(root / fname, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(AFFECTNET_HEADER)
            for i, code in enumerate(codes):
                rel = f"{code}/{fname[:5]}_{i:03d}.jpg"
                write_image(root / "Manually_Annotated_Images" / rel, random_image(rng, size, 3))
                w.writerow([rel, 0, 0, size, size, code])
    return root


class TestAffectNet:
    def test_mapping_drops_and_splits(self, tmp_path):
        make_affectnet(tmp_path, list(range(11)) + [1, 8], [0, 3, 10])
        assert detect_format(tmp_path) == "affectnet"
        ds = load_dataset(tmp_path)
        assert ds.dropped == {"none": 2, "uncertain": 1, "non-face": 2}
        assert len(ds) == 8 + 1 + 2
        for s, c in zip(ds.sources, label_names(ds), strict=True):
            assert c == AFFECTNET_CODES[int(Path(s).parent.name)]
        assert sorted(label_names(ds.split("test"))) == ["neutral", "surprise"]
        assert ds.counts("train")["happy"] == 2
        assert not ds.has_split("val")

    def test_single_csv_file(self, tmp_path):
        make_affectnet(tmp_path, [1, 2, 9], [4])
        ds = load_dataset(tmp_path / "training.csv")
        assert label_names(ds) == ["happy", "sad"] and ds.dropped == {"uncertain": 1}

    @pytest.mark.parametrize("ext,side", [("png", 64), ("jpg", 400)])
    def test_face_box_crop(self, tmp_path, ext, side):
        img = np.zeros((side, side), np.uint8)
        q = side // 4
        img[q : 2 * q, 2 * q : 3 * q] = 255  # white box, rest black
        write_image(tmp_path / f"0/a.{ext}", img)
        with open(tmp_path / "training.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(AFFECTNET_HEADER)
            w.writerow([f"0/a.{ext}", 2 * q, q, q, q, 0])
            w.writerow([f"0/a.{ext}", "", "", "", "", 0])  # no box: whole image
        ds = load_dataset(tmp_path, size=16)
        assert ds.images[0].mean() > 240, ds.images[0].mean()
        assert 5 < ds.images[1].mean() < 40

    def test_missing_columns(self, tmp_path):
        f = tmp_path / "training.csv"
        f.write_text("subDirectory_filePath,face_x\na.jpg,1\n")
        user_error(lambda: load_dataset(f, format="affectnet"), str(f), "missing column", "expression")

    def test_bad_expression_and_empty_path(self, tmp_path):
        f = tmp_path / "training.csv"
        f.write_text("subDirectory_filePath,expression\na.jpg,12\n")
        user_error(lambda: load_dataset(f), "row 1", "line 2", "not 0-10")
        f.write_text("expression,subDirectory_filePath\n3\n")
        user_error(lambda: load_dataset(f), "row 1", "subDirectory_filePath is empty")

    def test_missing_image_is_skipped(self, tmp_path):
        make_affectnet(tmp_path, [1, 2], [])
        next((tmp_path / "Manually_Annotated_Images" / "1").iterdir()).unlink()
        ds = load_dataset(tmp_path)
        assert label_names(ds) == ["sad"]
        assert len(ds.skipped) == 1 and "not found" in ds.skipped[0][1]


# =========================================================================== CK+
class TestCkplus:
    def test_subjects_and_labels(self, tmp_path):
        make_ckplus(tmp_path)
        ds = load_dataset(tmp_path, format="ckplus")
        assert ds.classes == ["happy", "sad", "surprise", "fear", "disgust", "angry", "contempt"]
        assert label_names(ds) == folder_labels(ds)
        assert all(Path(src).name.startswith(subj + "_") for src, subj in zip(ds.sources, ds.subjects, strict=True))
        assert len(set(ds.subjects.tolist())) == 6

    def test_subject_folder(self, tmp_path):
        make_folder_tree(tmp_path, {"happy/S010/001": 2, "sad/S011": ["x.png"]})
        ds = load_dataset(tmp_path)
        assert sorted(ds.subjects.tolist()) == ["S010", "S010", "S011"]
