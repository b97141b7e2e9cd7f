"""load_dataset on bad input (corrupt, missing, mislabelled files), on conversions, and its provenance columns."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augment.core.readers import load_dataset
from augment.core.readers.decode import decode_one
from tests.augment.test_readers import user_error
from tests.conftest import (
    make_fer_csv,
    make_folder_tree,
    random_image,
    write_corrupt,
    write_image,
)

pytestmark = pytest.mark.usefixtures("quiet")


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
