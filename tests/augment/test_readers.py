"""Every supported layout, built tiny in tmp_path, read by load_dataset: labels, splits, errors."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augment.core.errors import UserError
from augment.core.labels import AFFECTNET_CODES, CANONICAL_CLASSES, FER2013_CODES, RAFDB_CODES, canonical
from augment.core.readers import detect_format, load_dataset
from augment.core.readers.decode import decode_one
from tests.conftest import (
    make_ckplus,
    make_fer_csv,
    make_folder_tree,
    make_rafdb,
    random_image,
    write_corrupt,
    write_image,
)

pytestmark = pytest.mark.usefixtures("quiet")


def user_error(fn, *fragments: str) -> str:
    """Call fn, expect a one-line UserError containing every fragment; return the message."""
    with pytest.raises(UserError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg, msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    return msg


def label_names(ds) -> list[str]:
    return [ds.classes[i] for i in ds.labels]


def folder_labels(ds) -> list[str | None]:
    """The canonical class named by each image's parent folder."""
    return [canonical(Path(s).parent.name) for s in ds.sources]


# =========================================================================== FER2013 CSV
class TestFerCsv:
    def test_labels_usage_and_pixels(self, tmp_path):
        rng = np.random.default_rng(1)
        usages = ["Training", "PublicTest", "PrivateTest"]
        rows, pixels = [], []
        for i in range(14):
            px = rng.integers(0, 256, (48, 48)).astype(np.uint8)
            pixels.append(px)
            rows.append((i % 7, usages[i % 3], px))
        path = make_fer_csv(tmp_path / "fer2013.csv", rows)
        ds = load_dataset(path)
        assert ds.images.shape == (14, 1, 48, 48)
        assert ds.classes == [c for c in CANONICAL_CLASSES if c in FER2013_CODES]
        assert label_names(ds) == [FER2013_CODES[i % 7] for i in range(14)]
        assert ds.splits.tolist() == [("train", "val", "test")[i % 3] for i in range(14)]
        np.testing.assert_array_equal(ds.images[:, 0], np.stack(pixels))
        assert ds.sources[3].endswith("fer2013.csv#row4")
        assert (ds.subjects == "").all() and not ds.synthetic.any()

    def test_specific_code_mapping(self, tmp_path):
        # 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral
        path = make_fer_csv(tmp_path / "fer2013.csv", [0, 1, 2, 3, 4, 5, 6])
        ds = load_dataset(path)
        assert label_names(ds) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        assert ds.classes == ["neutral", "happy", "sad", "surprise", "fear", "disgust", "angry"]

    def test_folder_with_fer2013_csv_is_detected(self, tmp_path):
        make_fer_csv(tmp_path / "fer2013.csv", [3, 4])
        (tmp_path / "notes.txt").write_text("hi")
        assert detect_format(tmp_path) == "fer2013-csv"
        assert len(load_dataset(tmp_path)) == 2

    def test_train_test_csv_without_usage(self, tmp_path):
        make_fer_csv(tmp_path / "train.csv", [0, 3, 3, 6], usage=False, seed=1)
        make_fer_csv(tmp_path / "test.csv", [4, 5], usage=False, seed=2)
        ds = load_dataset(tmp_path)
        assert sorted(ds.splits.tolist()) == ["test"] * 2 + ["train"] * 4
        train, test = ds.split("train"), ds.split("test")
        assert sorted(label_names(train)) == ["angry", "happy", "happy", "neutral"]
        assert sorted(label_names(test)) == ["sad", "surprise"]

    def test_kaggle_challenge_folder(self, tmp_path):
        # icml_face_data.csv has every split; train.csv repeats its training rows; test.csv is unlabelled
        make_fer_csv(tmp_path / "icml_face_data.csv", [(0, "Training"), (3, "PublicTest"), (4, "PrivateTest")])
        make_fer_csv(tmp_path / "train.csv", [0], usage=False)
        make_fer_csv(tmp_path / "test.csv", [(0,), (0,)], header=["pixels"])
        ds = load_dataset(tmp_path)
        assert len(ds) == 3 and sorted(ds.splits.tolist()) == ["test", "train", "val"]
        (tmp_path / "icml_face_data.csv").unlink()
        ds = load_dataset(tmp_path)  # train.csv only: the unlabelled test.csv is left out
        assert label_names(ds) == ["angry"] and ds.splits.tolist() == ["train"]
        (tmp_path / "train.csv").unlink()
        user_error(lambda: load_dataset(tmp_path), "test.csv", "missing column", "emotion")

    def test_resize_and_channels(self, tmp_path):
        path = make_fer_csv(tmp_path / "fer2013.csv", [0, 1, 2])
        ds = load_dataset(path, size=32, channels=3)
        assert ds.images.shape == (3, 3, 32, 32)
        assert ds.images.dtype == np.uint8
        np.testing.assert_array_equal(ds.images[:, 0], ds.images[:, 1])  # gray → RGB replicates

    def test_classes_limit(self, tmp_path):
        path = make_fer_csv(tmp_path / "fer2013.csv", [0, 3, 3, 4, 6])
        ds = load_dataset(path, classes="happy,sad")
        assert ds.classes == ["happy", "sad"]
        assert sorted(label_names(ds)) == ["happy", "happy", "sad"]

    def test_missing_column_names_the_file(self, tmp_path):
        path = make_fer_csv(tmp_path / "fer2013.csv", [1], header=["pixels", "Usage"])
        user_error(lambda: load_dataset(path), str(path), "missing column", "emotion")

    def test_wrong_pixel_count_names_row_and_line(self, tmp_path):
        rows = [(0, "Training"), (3, "Training"), (4, "Training", "1 2 3")]
        path = make_fer_csv(tmp_path / "fer2013.csv", rows)
        user_error(lambda: load_dataset(path), str(path), "row 3", "line 4", "3 values", "2304")

    def test_non_integer_pixels(self, tmp_path):
        path = make_fer_csv(tmp_path / "fer2013.csv", [(0, "Training", "a " * 2304)])
        user_error(lambda: load_dataset(path), "row 1", "not all integers")

    def test_pixel_out_of_range(self, tmp_path):
        px = " ".join(["300"] * 2304)
        path = make_fer_csv(tmp_path / "fer2013.csv", [(0, "Training", px)])
        user_error(lambda: load_dataset(path), "row 1", "0-255")

    @pytest.mark.parametrize("emotion", ["7", "x", "-1", ""])
    def test_bad_emotion(self, tmp_path, emotion):
        path = make_fer_csv(tmp_path / "fer2013.csv", [0, (emotion, "Training")])
        user_error(lambda: load_dataset(path), str(path), "row 2", "line 3", "emotion", "0-6")

    def test_bad_usage(self, tmp_path):
        path = make_fer_csv(tmp_path / "fer2013.csv", [(0, "Training"), (1, "Holdout")])
        user_error(lambda: load_dataset(path), "row 2", "Usage 'Holdout'", "Training, PublicTest or PrivateTest")

    def test_short_row(self, tmp_path):
        path = tmp_path / "fer2013.csv"
        path.write_text("emotion,pixels,Usage\n3\n")
        user_error(lambda: load_dataset(path), "row 1", "fields")

    def test_header_only(self, tmp_path):
        path = make_fer_csv(tmp_path / "fer2013.csv", [])
        user_error(lambda: load_dataset(path), str(path), "no rows")

    def test_blank_lines_keep_line_numbers(self, tmp_path):
        path = make_fer_csv(tmp_path / "fer2013.csv", [0, 1])
        text = path.read_text().splitlines()
        path.write_text("\n".join([text[0], text[1], "", text[2], "9,1 2,Training"]) + "\n")
        user_error(lambda: load_dataset(path), "line 5")

    def test_other_csv_is_rejected(self, tmp_path):
        path = tmp_path / "labels.csv"
        path.write_text("image,label\na.jpg,1\n")
        user_error(lambda: load_dataset(path), str(path), "FER2013", "AffectNet")


# =========================================================================== class folders
FER_KAGGLE = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


class TestFolders:
    def test_kaggle_fer_layout(self, tmp_path):
        layout = {f"train/{c}": 3 for c in FER_KAGGLE} | {f"test/{c}": 1 for c in FER_KAGGLE}
        make_folder_tree(tmp_path, layout, ext="jpg")
        assert detect_format(tmp_path) == "folders"
        ds = load_dataset(tmp_path)
        assert ds.classes == [c for c in CANONICAL_CLASSES if c != "contempt"]
        assert ds.images.shape == (28, 1, 48, 48)
        assert ds.counts("train") == {c: 3 for c in ds.classes}
        assert ds.counts("test") == {c: 1 for c in ds.classes}
        assert label_names(ds) == folder_labels(ds)
        for s, split in zip(ds.sources, ds.splits, strict=True):
            assert Path(s).parent.parent.name == split

    def test_no_split_folders_means_train(self, tmp_path):
        make_folder_tree(tmp_path, {"happy": 2, "sad": 3})
        ds = load_dataset(tmp_path)
        assert set(ds.splits.tolist()) == {"train"}
        assert ds.counts() == {"happy": 2, "sad": 3}

    def test_validation_folder_names(self, tmp_path):
        make_folder_tree(tmp_path, {"Training/happy": 2, "validation/happy": 1, "testing/happy": 1})
        ds = load_dataset(tmp_path)
        assert sorted(ds.splits.tolist()) == ["test", "train", "train", "val"]

    def test_two_folders_for_one_split(self, tmp_path):
        make_folder_tree(tmp_path, {"val/happy": 1, "validation/happy": 1})
        user_error(lambda: load_dataset(tmp_path), "val", "validation")

    def test_synonyms(self, tmp_path):
        names = ["Anger", "sadness", "happiness", "surprised", "fearful", "disgusted", "NEUTRAL", "contempt"]
        make_folder_tree(tmp_path, {f"train/{n}": 1 for n in names})
        ds = load_dataset(tmp_path)
        assert ds.classes == list(CANONICAL_CLASSES)
        assert label_names(ds) == folder_labels(ds)
        by_folder = {Path(s).parent.name: c for s, c in zip(ds.sources, label_names(ds), strict=True)}
        assert by_folder == {
            "Anger": "angry",
            "sadness": "sad",
            "happiness": "happy",
            "surprised": "surprise",
            "fearful": "fear",
            "disgusted": "disgust",
            "NEUTRAL": "neutral",
            "contempt": "contempt",
        }

    def test_unknown_folders_are_listed(self, tmp_path):
        make_folder_tree(tmp_path, {"train/happy": 1, "train/joyful": 1, "train/misc": 1})
        msg = user_error(lambda: load_dataset(tmp_path), "unknown class folder", "joyful", "misc", "--classes")
        assert "happy," not in msg.split("known classes")[0]

    def test_classes_limits_and_skips_unknown(self, tmp_path):
        make_folder_tree(tmp_path, {"happy": 2, "sad": 2, "angry": 2, "misc": 2})
        ds = load_dataset(tmp_path, classes="happy,sad")
        assert ds.classes == ["happy", "sad"]
        assert ds.counts() == {"happy": 2, "sad": 2}

    def test_classes_maps_and_skips(self, tmp_path):
        make_folder_tree(tmp_path, {"happy": 1, "joyful": 2, "meh": 1, "other": 3})
        ds = load_dataset(tmp_path, classes="joyful=happy,meh=neutral,other=")
        assert ds.counts() == {"neutral": 1, "happy": 3}
        assert not any("other" in s for s in ds.sources)

    def test_only_unknown_folders_detected_through_mapping(self, tmp_path):
        make_folder_tree(tmp_path, {"train/joyful": 2, "train/grumpy": 1, "test/joyful": 1})
        user_error(lambda: load_dataset(tmp_path), "no recognisable dataset layout", "grumpy, joyful", "--classes")
        ds = load_dataset(tmp_path, classes="joyful=happy,grumpy=angry")
        assert ds.counts("train") == {"happy": 2, "angry": 1}
        assert ds.counts("test") == {"happy": 1, "angry": 0}

    def test_classes_unknown_name(self, tmp_path):
        make_folder_tree(tmp_path, {"happy": 1})
        user_error(lambda: load_dataset(tmp_path, classes="happy,bored"), "bored", "not a known class")
        user_error(lambda: load_dataset(tmp_path, classes="=happy"), "folder=class")

    def test_classes_filter_to_nothing(self, tmp_path):
        make_folder_tree(tmp_path, {"happy": 1})
        user_error(lambda: load_dataset(tmp_path, classes="sad"), "no images found")

    def test_affectnet_numeric_folders(self, tmp_path):
        make_folder_tree(tmp_path, {f"train/{i}": 1 for i in range(8)} | {"val/1": 1, "val/7": 1})
        ds = load_dataset(tmp_path)
        assert ds.classes == list(CANONICAL_CLASSES)
        for s, c in zip(ds.sources, label_names(ds), strict=True):
            assert c == AFFECTNET_CODES[int(Path(s).parent.name)]
        # val lacks class 0 but is read with the same (AffectNet) numbering as train
        assert sorted(label_names(ds.split("val"))) == ["contempt", "happy"]

    def test_rafdb_kaggle_dataset_folders(self, tmp_path):
        layout = {f"DATASET/train/{i}": 2 for i in range(1, 8)} | {f"DATASET/test/{i}": 1 for i in range(1, 8)}
        make_folder_tree(tmp_path, layout, ext="jpg")
        assert detect_format(tmp_path) == "rafdb"
        ds = load_dataset(tmp_path)
        assert ds.counts("train") == {c: 2 for c in ds.classes}
        for s, c in zip(ds.sources, label_names(ds), strict=True):
            assert c == RAFDB_CODES[int(Path(s).parent.name)]
        # pointing at DATASET itself works too
        ds2 = load_dataset(tmp_path / "DATASET")
        assert label_names(ds2) == label_names(ds)

    def test_ambiguous_numeric_folders_need_format(self, tmp_path):
        make_folder_tree(tmp_path, {f"train/{i}": 1 for i in range(1, 8)})
        user_error(lambda: load_dataset(tmp_path), "ambiguous", "--format rafdb", "--format affectnet")
        raf = load_dataset(tmp_path, format="rafdb")
        aff = load_dataset(tmp_path, format="affectnet")
        for ds, codes in ((raf, RAFDB_CODES), (aff, dict(enumerate(AFFECTNET_CODES)))):
            for s, c in zip(ds.sources, label_names(ds), strict=True):
                assert c == codes[int(Path(s).parent.name)]

    def test_forced_format_range_errors(self, tmp_path):
        make_folder_tree(tmp_path, {"0": 1, "1": 1})
        user_error(lambda: load_dataset(tmp_path, format="rafdb"), "RAF-DB class folders are 1-7", "[0]")
        make_folder_tree(tmp_path / "b", {"1": 1, "9": 1})
        user_error(lambda: load_dataset(tmp_path / "b", format="affectnet"), "0-7", "[9]")

    def test_format_forcing(self, tmp_path):
        make_folder_tree(tmp_path / "tree", {"happy": 1, "sad": 1})
        assert len(load_dataset(tmp_path / "tree", format="fer2013")) == 2
        assert len(load_dataset(tmp_path / "tree", format="ckplus")) == 2
        assert len(load_dataset(tmp_path / "tree", format="FOLDERS")) == 2
        user_error(lambda: load_dataset(tmp_path / "tree", format="fer2013-csv"), "no FER2013 CSV")
        user_error(lambda: load_dataset(tmp_path / "tree", format="bogus"), "--format bogus", "rafdb")
        csv_path = make_fer_csv(tmp_path / "fer2013.csv", [1])
        user_error(lambda: load_dataset(csv_path, format="folders"), "needs a folder")
        user_error(lambda: load_dataset(csv_path, format="rafdb"), "--format rafdb")
        user_error(lambda: load_dataset(csv_path, format="cache"), "cache")
        user_error(lambda: load_dataset(tmp_path / "nope", format="folders"), "no such file")

    def test_nested_files_and_non_images_ignored(self, tmp_path):
        make_folder_tree(tmp_path, {"happy": 1, "happy/sub": 1, "sad": 1})
        (tmp_path / "happy" / "notes.txt").write_text("x")
        (tmp_path / "happy" / ".hidden.png").write_bytes(b"junk")
        ds = load_dataset(tmp_path)
        assert ds.counts() == {"happy": 2, "sad": 1}
        assert ds.skipped == []


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


# =========================================================================== corrupt / missing
class TestBadInput:
    def test_corrupt_image_is_skipped(self, tmp_path):
        make_folder_tree(tmp_path, {"train/happy": 2, "train/sad": 2})
        bad = write_corrupt(tmp_path / "train" / "sad" / "broken.jpg")
        (tmp_path / "train" / "happy" / "empty.png").write_bytes(b"")
        ds = load_dataset(tmp_path)
        assert len(ds) == 4
        assert sorted(Path(p).name for p, _ in ds.skipped) == ["broken.jpg", "empty.png"]
        assert str(bad) in [p for p, _ in ds.skipped]
        assert all(why and "\n" not in why for _, why in ds.skipped)

    def test_truncated_jpeg_is_skipped(self, tmp_path):
        make_folder_tree(tmp_path, {"happy": 1})
        src = write_image(tmp_path / "x.jpg", random_image(np.random.default_rng(0), 64))
        (tmp_path / "happy" / "cut.jpg").write_bytes(src.read_bytes()[:300])
        src.unlink()
        ds = load_dataset(tmp_path)
        assert len(ds) == 1 and [Path(p).name for p, _ in ds.skipped] == ["cut.jpg"]

    def test_all_corrupt_is_one_line_error(self, tmp_path):
        for i in range(3):
            write_corrupt(tmp_path / "happy" / f"{i}.jpg", seed=i)
        user_error(lambda: load_dataset(tmp_path), str(tmp_path), "none of the 3 image files could be read")

    def test_missing_path(self, tmp_path):
        user_error(lambda: load_dataset(tmp_path / "nope"), str(tmp_path / "nope"), "no such file")

    def test_empty_folder(self, tmp_path):
        user_error(lambda: load_dataset(tmp_path), str(tmp_path), "looked for", "FER2013", "class folders")

    def test_class_folders_without_images(self, tmp_path):
        (tmp_path / "happy").mkdir()
        (tmp_path / "happy" / "readme.txt").write_text("x")
        user_error(lambda: load_dataset(tmp_path), "no images found", "looked for")

    def test_unrecognised_folder(self, tmp_path):
        (tmp_path / "stuff").mkdir()
        write_image(tmp_path / "stuff" / "a.png", np.zeros((8, 8), np.uint8))
        user_error(lambda: load_dataset(tmp_path), "no recognisable dataset layout", "RAF-DB", "AffectNet")

    def test_unrecognised_file(self, tmp_path):
        f = tmp_path / "a.txt"
        f.write_text("x")
        user_error(lambda: load_dataset(f), str(f), "not a dataset", "looked for")

    @pytest.mark.parametrize("kw,frag", [({"channels": 2}, "channels must be 1 or 3"), ({"size": 0}, "size")])
    def test_bad_size_or_channels(self, tmp_path, kw, frag):
        make_folder_tree(tmp_path, {"happy": 1})
        user_error(lambda: load_dataset(tmp_path, **kw), frag)


# =========================================================================== size / channels
class TestConversion:
    def test_size_and_channels(self, tmp_path):
        make_folder_tree(tmp_path, {"happy": 2, "sad": 1}, size=20, channels=3)
        assert load_dataset(tmp_path).images.shape == (3, 1, 48, 48)
        assert load_dataset(tmp_path, size=32, channels=3).images.shape == (3, 3, 32, 32)
        assert load_dataset(tmp_path, size=8, channels=1).images.shape == (3, 1, 8, 8)

    def test_pixels_match_pil(self, tmp_path):
        arr = random_image(np.random.default_rng(3), 16, channels=3)
        write_image(tmp_path / "happy" / "a.png", arr)
        ds = load_dataset(tmp_path, size=16, channels=3)
        np.testing.assert_array_equal(ds.images[0], arr.transpose(2, 0, 1))
        gray = np.asarray(Image.fromarray(arr).convert("L"))
        np.testing.assert_array_equal(load_dataset(tmp_path, size=16).images[0, 0], gray)

    def test_non_square_is_centre_cropped(self, tmp_path):
        img = np.zeros((10, 30), np.uint8)
        img[:, 10:20] = 255
        write_image(tmp_path / "happy" / "wide.png", img)
        ds = load_dataset(tmp_path, size=10)
        assert ds.images.min() == 255

    def test_decode_one_box_on_large_jpeg(self, tmp_path):
        img = np.zeros((512, 512, 3), np.uint8)
        img[0:128, 384:512] = 255
        p = write_image(tmp_path / "big.jpg", img)
        assert decode_one(p, 16, 1, (384, 0, 512, 128)).mean() > 240
        assert decode_one(p, 16, 3, (384, 0, 512, 128)).mean() > 240
        assert decode_one(p, 16, 1, (0, 384, 128, 512)).mean() < 15


# =========================================================================== provenance (synthetic marks)
def write_rows(folder: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """A manifest.csv of (path, label, split, source) rows, in the schema augment.core.manifest writes."""
    from augment.core.manifest import real_row, synthetic_row, write_manifest

    write_manifest(
        folder,
        [
            real_row(p, lab, split, "orig.png") if src == "real" else synthetic_row(p, lab, split, folder, 10, 0, i)
            for i, (p, lab, split, src) in enumerate(rows)
        ],
    )


def synthetic_names(ds) -> list[str]:
    return sorted(Path(s).name for s in ds.sources[ds.synthetic])


class TestProvenance:
    LAYOUT = {"train/happy": ["h1.png", "h2.png"], "train/disgust": ["d1.png", "syn_disgust_000000.png"]}

    def test_manifest_marks_its_synthetic_files_only(self, tmp_path, capsys):
        layout = self.LAYOUT | {"train/disgust": ["d1.png", "gen_a.png", "gen_b.png"], "test/happy": 1}
        make_folder_tree(tmp_path, layout)
        write_rows(
            tmp_path,
            [
                ("train/disgust/gen_a.png", "disgust", "train", "synthetic"),
                ("train/disgust/gen_b.png", "disgust", "train", "synthetic"),
                ("train/disgust/d1.png", "disgust", "train", "real"),
            ],
        )
        ds = load_dataset(tmp_path)
        assert synthetic_names(ds) == ["gen_a.png", "gen_b.png"]  # listed, not by name
        assert ds.synthetic.sum() == 2 and ds.counts() == {"happy": 3, "disgust": 3}
        assert capsys.readouterr().err == ""
        # read through a relative path too: the manifest's paths are relative to its folder
        rel = Path(os.path.relpath(tmp_path))
        assert synthetic_names(load_dataset(rel)) == ["gen_a.png", "gen_b.png"]

    def test_syn_prefix_without_manifest_warns_once(self, tmp_path, capsys):
        make_folder_tree(tmp_path, self.LAYOUT | {"train/happy": ["h1.png", "syn_happy_000004.png"]})
        ds = load_dataset(tmp_path)
        assert synthetic_names(ds) == ["syn_disgust_000000.png", "syn_happy_000004.png"]
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("warning: 2 syn_* file(s)")
        assert "no augment manifest.csv" in err[0] and "synthetic" in err[0]

    def test_syn_file_the_manifest_does_not_list_is_still_synthetic(self, tmp_path, capsys):
        make_folder_tree(tmp_path, self.LAYOUT | {"train/happy": ["h1.png", "gen.png"]})
        write_rows(tmp_path, [("train/happy/gen.png", "happy", "train", "synthetic")])
        ds = load_dataset(tmp_path)
        assert synthetic_names(ds) == ["gen.png", "syn_disgust_000000.png"]
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "1 syn_* file(s) not in" in err[0] and "manifest.csv" in err[0]

    def test_a_foreign_manifest_is_not_ours(self, tmp_path, capsys):
        make_folder_tree(tmp_path, self.LAYOUT)
        (tmp_path / "manifest.csv").write_text("file,label\ntrain/happy/h1.png,happy\n")
        ds = load_dataset(tmp_path)
        assert synthetic_names(ds) == ["syn_disgust_000000.png"]
        assert "no augment manifest.csv" in capsys.readouterr().err

    def test_real_data_stays_real_and_quiet(self, tmp_path, capsys):
        make_folder_tree(tmp_path, {"train/happy": 3, "test/sad": 2})
        assert not load_dataset(tmp_path).synthetic.any()
        assert capsys.readouterr().err == ""

    def test_fer_csv_rows_from_the_manifest(self, tmp_path, capsys):
        make_fer_csv(tmp_path / "fer2013.csv", [3, 1, 1, (3, "PrivateTest"), 6])
        write_rows(
            tmp_path,
            [
                ("fer2013.csv#row1", "happy", "train", "real"),
                ("fer2013.csv#row2", "disgust", "train", "synthetic"),
                ("fer2013.csv#row3", "disgust", "train", "synthetic"),
                ("fer2013.csv#row5", "neutral", "train", "real"),
            ],
        )
        for where in (tmp_path, tmp_path / "fer2013.csv"):
            ds = load_dataset(where)
            assert ds.synthetic.tolist() == [False, True, True, False, False], where
        only = load_dataset(tmp_path, classes="disgust,neutral")  # row numbers survive the class filter
        assert only.synthetic.tolist() == [True, True, False]
        assert capsys.readouterr().err == ""

    def test_cache_keeps_the_marks(self, tmp_path):
        make_folder_tree(tmp_path / "data", self.LAYOUT)
        ds = load_dataset(tmp_path / "data")
        ds.save(tmp_path / "c.npz")
        back = load_dataset(tmp_path / "c.npz")
        assert back.synthetic.tolist() == ds.synthetic.tolist() and back.synthetic.sum() == 1
