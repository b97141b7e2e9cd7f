"""Faces in photos: `augment predict --detect` on a real photograph, image modes, folders, bad files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from augment.core.errors import UserError
from augment.core.readers.decode import decode_one, read_photo
from classifier.detect import BOX_COLOUR, FaceDetector, crop_box, crop_faces, predict_photos
from classifier.inference import PROGRESS_FROM, list_images
from tests.conftest import assert_one_line_error, run_cli, write_corrupt

# The astronaut's face in skimage.data.astronaut() (512 x 512), measured by hand on a 3x enlargement:
# cheek to cheek, hairline to chin, as (left, top, right, bottom).
HAND_BOX = (180, 75, 272, 180)


def iou(box_xywh: list[int], ref: tuple[int, int, int, int]) -> float:
    x, y, w, h = box_xywh
    ix = max(0, min(x + w, ref[2]) - max(x, ref[0]))
    iy = max(0, min(y + h, ref[3]) - max(y, ref[1]))
    inter = ix * iy
    return inter / (w * h + (ref[2] - ref[0]) * (ref[3] - ref[1]) - inter)


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory) -> Path:
    """A real photograph with one face (it ships in scikit-image's wheel; nothing is downloaded)."""
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(path)
    return path


def test_cli_detect_finds_the_face_draws_it_and_classifies_it(capsys, tiny_judge_run, astronaut, tmp_path):
    ann = tmp_path / "ann"
    code, out, err = run_cli(
        capsys, "predict", tiny_judge_run, astronaut, "--detect", "--annotate", ann, "--json", "--device", "cpu"
    )
    assert code == 0, err
    (result,) = [json.loads(line) for line in out.strip().splitlines()]
    assert (result["width"], result["height"]) == (512, 512)
    (face,) = result["faces"]  # exactly one box
    assert iou(face["box"], HAND_BOX) >= 0.5, face["box"]
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["top"] == max(face["probabilities"], key=face["probabilities"].get)
    assert face["probability"] == pytest.approx(face["probabilities"][face["top"]])

    # the annotated photo: same size, the box drawn on it, the rest of the photo untouched
    assert result["annotated"] == str(ann / "astronaut.png")
    drawn = np.asarray(Image.open(ann / "astronaut.png").convert("RGB"))
    photo = np.asarray(Image.open(astronaut).convert("RGB"))
    assert drawn.shape == photo.shape
    x, y, w, h = face["box"]
    assert tuple(drawn[y + h // 2, x]) == BOX_COLOUR and tuple(drawn[y + h - 1, x + w // 2]) == BOX_COLOUR
    assert not np.array_equal(drawn[y - 5, x : x + w], photo[y - 5, x : x + w])  # the label above the box
    np.testing.assert_array_equal(drawn[300:, :], photo[300:, :])

    code, out, err = run_cli(capsys, "predict", tiny_judge_run, astronaut, "--detect", "--device", "cpu")
    assert code == 0, err
    line, summary = out.strip().splitlines()
    assert line.startswith(f"{astronaut}  box {x},{y},{w},{h}  {face['top']} {face['probability']:.2f}  (")
    assert line.count(" 0.") == len(face["probabilities"]) and summary == "1 face(s) in 1 photo(s)"


def write_modes(photo: Path, folder: Path) -> dict[str, Path]:
    """The astronaut as grayscale, RGBA (transparent border), CMYK JPEG and 16-bit grayscale PNG."""
    folder.mkdir()
    rgb = Image.open(photo).convert("RGB")
    paths = {m: folder / f"{m}.{'jpg' if m == 'cmyk' else 'png'}" for m in ("grey", "rgba", "cmyk", "grey16")}
    rgb.convert("L").save(paths["grey"])
    rgba = rgb.convert("RGBA")
    alpha = np.zeros((512, 512), np.uint8)
    alpha[20:-20, 20:-20] = 255
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(paths["rgba"])
    rgb.convert("CMYK").save(paths["cmyk"], quality=95)
    grey16 = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey16).save(paths["grey16"])
    return paths


def test_any_image_mode_is_read_and_its_face_found(tiny_judge_run, astronaut, tmp_path):
    paths = write_modes(astronaut, tmp_path / "modes")
    assert Image.open(paths["cmyk"]).mode == "CMYK" and Image.open(paths["grey16"]).mode.startswith("I;16")
    results, failed = predict_photos(tiny_judge_run, list(paths.values()), FaceDetector(), "cpu")
    assert failed == []
    for r in results:
        assert len(r["faces"]) == 1 and iou(r["faces"][0]["box"], HAND_BOX) >= 0.5, r

    # 16-bit grey is scaled to 8 bits (not clipped to white); transparency lies on white
    grey = np.asarray(Image.open(paths["grey"]), dtype=int)
    assert np.abs(np.asarray(read_photo(paths["grey16"]).convert("L"), dtype=int) - grey).max() <= 1
    assert np.abs(decode_one(paths["grey16"], 48, 1).astype(int) - decode_one(paths["grey"], 48, 1)).max() <= 1
    rgba = np.asarray(read_photo(paths["rgba"]))
    assert (rgba[:20] == 255).all() and np.array_equal(rgba[256, 256], np.asarray(Image.open(astronaut))[256, 256])
    assert np.abs(np.asarray(read_photo(paths["cmyk"]), dtype=int) - np.asarray(Image.open(astronaut))).mean() < 8


def test_crop_box_keeps_a_square_with_margin_inside_the_photo():
    assert crop_box((100, 100, 50, 50), 0.2, 500, 400) == (90, 90, 160, 160)
    assert crop_box((0, 5, 50, 50), 0.2, 500, 400) == (0, 0, 70, 70)  # moved inside, still square
    assert crop_box((460, 360, 40, 40), 0.5, 500, 400) == (420, 320, 500, 400)
    assert crop_box((0, 0, 300, 300), 0.5, 320, 300) == (0, 0, 320, 300)  # larger than the photo: clipped
    faces = crop_faces(Image.new("RGB", (500, 400), (10, 20, 30)), [(100, 100, 50, 50)] * 2, 24, 1, 0.2)
    assert faces.shape == (2, 1, 24, 24) and faces.dtype == np.uint8
    assert crop_faces(Image.new("L", (50, 50)), [], 24, 3, 0.2).shape == (0, 3, 24, 24)


def test_batch_reports_no_face_and_bad_files_and_goes_on(capsys, tiny_judge_run, astronaut, tmp_path):
    blank = tmp_path / "photos" / "wall.png"
    blank.parent.mkdir()
    Image.new("RGB", (300, 200), (128, 128, 128)).save(blank)
    bad = write_corrupt(tmp_path / "photos" / "broken.jpg")
    code, out, err = run_cli(
        capsys, "predict", tiny_judge_run, astronaut, tmp_path / "photos", "--detect", "--json", "--device", "cpu"
    )
    assert code == 1
    results = {Path(r["path"]).name: r for r in map(json.loads, out.strip().splitlines())}
    assert set(results) == {"astronaut.png", "wall.png"}
    assert len(results["astronaut.png"]["faces"]) == 1 and results["wall.png"]["faces"] == []
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err, err
    assert lines[0].startswith(f"{bad}: cannot read image") and lines[0].endswith("; skipped")
    assert lines[1] == "error: 1 of 3 image(s) could not be read (listed above)"

    # a photo without a face is reported, not a failure
    code, out, err = run_cli(capsys, "predict", tiny_judge_run, blank, "--detect", "--device", "cpu")
    assert code == 0, err
    assert "no face found" in out and "0 face(s) in 1 photo(s); no face found in 1" in " ".join(out.split())


def test_detect_without_opencv_says_how_to_install_it(capsys, tiny_judge_run, astronaut, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    code, _, err = run_cli(capsys, "predict", tiny_judge_run, astronaut, "--detect", "--device", "cpu")
    assert_one_line_error(code, err, "--detect needs OpenCV", "pip install 'augment[detect]'")
    with pytest.raises(UserError, match="opencv-python-headless>=4.8,<5"):
        FaceDetector()


def test_bad_commands_exit_2(capsys, tiny_judge_run, astronaut, tmp_path):
    code, _, err = run_cli(capsys, "predict", tiny_judge_run, astronaut, "--annotate", tmp_path, "--device", "cpu")
    assert_one_line_error(code, err, "--annotate", "add --detect")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "predict", tiny_judge_run, tmp_path / "empty", "--device", "cpu")
    assert_one_line_error(code, err, "empty", "matches no image files")
    code, _, err = run_cli(capsys, "predict", tiny_judge_run, tmp_path / "*.gif", "--device", "cpu")
    assert_one_line_error(code, err, "*.gif", "matches no image files")


def test_list_images_takes_files_folders_and_globs(tmp_path):
    for name in ("a/1.png", "a/b/2.jpg", "a/notes.txt", "c.png", "a/.hidden.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert list_images([tmp_path / "a"]) == [tmp_path / "a/1.png", tmp_path / "a/b/2.jpg"]
    assert list_images([tmp_path / "c.png", tmp_path / "**" / "*.jpg"]) == [tmp_path / "c.png", tmp_path / "a/b/2.jpg"]
    with pytest.raises(UserError, match="no such image file, folder or glob"):
        list_images([tmp_path / "missing.png"])


def test_long_lists_show_a_progress_bar(capsys, tiny_judge_run, demo_dir, monkeypatch):
    from augment.cli import main

    monkeypatch.delenv("AUGMENT_QUIET", raising=False)
    files = sorted((demo_dir / "test").glob("*/*.png"))
    assert len(files) >= PROGRESS_FROM
    for chosen, shown in ((files[:PROGRESS_FROM], True), (files[:2], False)):
        with pytest.raises(SystemExit) as done:
            main(["predict", str(tiny_judge_run), *map(str, chosen), "--json", "--device", "cpu"])
        assert done.value.code in (0, None)
        captured = capsys.readouterr()
        assert len(captured.out.strip().splitlines()) == len(chosen)
        assert ("reading images" in captured.err) == shown, captured.err
        assert (f"{len(chosen)}/{len(chosen)}" in captured.err) == shown
