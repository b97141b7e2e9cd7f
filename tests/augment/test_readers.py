"""Every supported layout, built tiny in tmp_path, read by load_dataset: FER2013 CSV and folder trees
(tests/augment/test_readers_published.py: RAF-DB, AffectNet, CK+; test_readers_bad_input.py: errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from augment.core.errors import UserError
from augment.core.labels import AFFECTNET_CODES, CANONICAL_CLASSES, FER2013_CODES, RAFDB_CODES, canonical
from augment.core.readers import detect_format, load_dataset
from tests.conftest import (
    make_fer_csv,
    make_folder_tree,
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
