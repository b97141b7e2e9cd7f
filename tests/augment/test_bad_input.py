"""Bad input: every bad option is one line naming it (exit 2, nothing written, no traceback), every
dataset with unreadable files says so in one warning line (exit 0), and predict reports bad files, takes
folders, prints whole paths when piped and warns on images that are no face crop.

The bad-option checks run before any data is read, so these cases cost no training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from classifier.config import TrainConfig
from gan.config import GanConfig
from tests.conftest import assert_one_line_error, make_folder_tree, run_cli, write_corrupt, write_image

pytestmark = pytest.mark.usefixtures("quiet")

TRAIN = ("train", "{data}", "--out", "{out}", "--device", "cpu")
GAN_TRAIN = ("gan-train", "{data}", "--out", "{out}", "--device", "cpu")
REBALANCE = ("rebalance", "{data}", "--generator", "{gan}", "--out", "{out}", "--device", "cpu")

# (case, command line, what the error line must name); {data} is the demo faces, {out} a new folder,
# {gan} the shared tiny generator, {png} an existing PNG file.
BAD_OPTIONS = [
    ("7.1 train classes", (*TRAIN, "--classes", "happy,bored"), ["--classes", "bored"]),
    ("7.1 gan-train classes", (*GAN_TRAIN, "--classes", "happy,bored"), ["--classes", "bored"]),
    ("7.2 checkpoint-every", (*GAN_TRAIN, "--checkpoint-every", "0"), ["--checkpoint-every 0", "at least 1"]),
    ("7.2 sample-every", (*GAN_TRAIN, "--sample-every", "0"), ["--sample-every 0", "at least 1"]),
    ("7.2 log-every", (*GAN_TRAIN, "--log-every", "0"), ["--log-every 0", "at least 1"]),
    ("7.3 train lr", (*TRAIN, "--lr", "-1"), ["--lr -1", "above 0"]),
    ("7.3 gan-train lr-g", (*GAN_TRAIN, "--lr-g", "-1"), ["--lr-g -1", "above 0"]),
    ("7.4 width", (*TRAIN, "--width", "0"), ["--width 0", "above 0"]),
    ("7.4 workers", (*TRAIN, "--workers", "-1"), ["--workers -1"]),
    ("7.4 pretrained png", (*TRAIN, "--model", "resnet18", "--pretrained", "{png}"), ["--pretrained", "face.png"]),
    ("7.4 pretrained other model", (*TRAIN, "--pretrained", "{png}"), ["--pretrained", "--model resnet18"]),
    ("7.5 size", (*TRAIN, "--size", "100000"), ["--size 100000", "512"]),
    ("7.6 gan-eval per-class", ("gan-eval", "{gan}", "{data}", "--per-class", "0"), ["--per-class 0"]),
    ("8.1 train epochs", (*TRAIN, "--epochs", "-1"), ["--epochs -1", "at least 1"]),
    ("8.2 gan-train epochs", (*GAN_TRAIN, "--epochs", "-1"), ["--epochs -1", "above 0"]),
    ("8.3 min-prob 2", (*REBALANCE, "--min-prob", "2"), ["--min-prob 2"]),
    ("8.3 min-prob -1", (*REBALANCE, "--min-prob", "-1"), ["--min-prob -1"]),
    ("8.4 ema", (*GAN_TRAIN, "--ema", "2"), ["--ema 2"]),
    ("8.4 aux-weight", (*GAN_TRAIN, "--aux-weight", "-1"), ["--aux-weight -1"]),
    # "format parquet": the error names the option (--out-format; its old name --format is tested with the aliases)
    ("8.5 dry-run format", (*REBALANCE, "--dry-run", "--out-format", "parquet"), ["format parquet"]),
    ("8.5 dry-run judge", (*REBALANCE, "--dry-run", "--judge", "{out}-judge"), ["--judge", "model.pt"]),
    ("8.5 dry-run min-prob", (*REBALANCE, "--dry-run", "--min-prob", "1"), ["--min-prob 1"]),
]


@pytest.mark.parametrize(("args", "named"), [c[1:] for c in BAD_OPTIONS], ids=[c[0] for c in BAD_OPTIONS])
def test_bad_option_is_one_line_and_writes_nothing(capsys, tmp_path, demo_dir, tiny_gan_run, args, named):
    png = write_image(tmp_path / "face.png", np.zeros((8, 8), dtype=np.uint8))
    out = tmp_path / "out"
    places = {"data": demo_dir, "out": out, "gan": tiny_gan_run, "png": png}
    code, stdout, err = run_cli(capsys, *(a.format(**{k: str(v) for k, v in places.items()}) for a in args))
    assert_one_line_error(code, err, *named)
    assert stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png"]  # no run or output folder
    assert not (tiny_gan_run / "eval").exists() and not (tiny_gan_run / "judge").exists()


@pytest.mark.parametrize(
    ("cls", "setting", "value", "named"),
    [
        (GanConfig, "checkpoint_every", 0, "--checkpoint-every 0"),
        (GanConfig, "ema", 1.0, "--ema 1"),
        (GanConfig, "classes", ["happy", "bored"], "--classes bored"),
        (GanConfig, "batch_size", 1, "--batch-size 1"),
        (GanConfig, "lr_d", float("nan"), "--lr-d nan"),
        (TrainConfig, "epochs", 0, "--epochs 0"),
        (TrainConfig, "batch_size", 0, "--batch-size 0"),
        (TrainConfig, "size", 8, "--size 8"),
        (TrainConfig, "val_fraction", 1.0, "--val-fraction 1"),
        (TrainConfig, "model", "vgg", "--model vgg"),
        (TrainConfig, "lr", "fast", "--lr fast"),
    ],
)
def test_python_api_refuses_what_the_cli_refuses(tmp_path, demo_ds, cls, setting, value, named):
    """train_gan and train_classifier validate their config before anything is written."""
    from augment.core.errors import UserError
    from classifier.train import train_classifier
    from gan.train import train_gan

    cfg = cls(device="cpu")
    cfg.validate()  # the defaults are valid
    setattr(cfg, setting, value)
    with pytest.raises(UserError, match="^" + named.replace("-", r"\-")):
        cfg.validate()
    with pytest.raises(UserError, match=named.replace("-", r"\-")):
        (train_gan if cls is GanConfig else train_classifier)(demo_ds, tmp_path / "run", cfg, progress=False)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- unreadable images
@pytest.fixture
def tree_with_bad_file(tmp_path) -> Path:
    root = make_folder_tree(tmp_path / "tree", {"train/happy": 12, "train/sad": 8, "test/happy": 2, "test/sad": 2})
    write_corrupt(root / "train" / "sad" / "bad.jpg")
    return root


UNREADABLE = [
    ("prepare", ("prepare", "{data}", "--out", "{out}.npz")),
    ("train", ("train", "{data}", "--out", "{out}", "--epochs", "1", "--width", "0.25", "--batch-size", "4")),
    ("gan-train", ("gan-train", "{data}", "--out", "{out}", "--steps", "1", "--g-width", "8", "--d-width", "8")),
    (
        "rebalance",
        ("rebalance", "{data}", "--generator", "{gan}", "--out", "{out}", "--min-prob", "0", "--keep-near-copies"),
    ),
]


@pytest.mark.parametrize("args", [c[1] for c in UNREADABLE], ids=[c[0] for c in UNREADABLE])
def test_unreadable_images_are_skipped_with_one_warning(capsys, tmp_path, tree_with_bad_file, tiny_gan_run, args):
    out = tmp_path / "out"
    places = {"data": tree_with_bad_file, "out": out, "gan": tiny_gan_run}
    argv = [a.format(**{k: str(v) for k, v in places.items()}) for a in args]
    code, _, err = run_cli(capsys, *argv, *([] if args[0] == "prepare" else ["--device", "cpu"]))
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    bad = tree_with_bad_file / "train" / "sad" / "bad.jpg"
    assert lines[0].startswith(f"warning: skipped 1 unreadable image file(s) of {tree_with_bad_file}: first {bad} (")
    assert "Traceback" not in err
    assert out.exists() or Path(f"{out}.npz").is_file()


def test_inspect_lists_the_unreadable_files_instead_of_warning(capsys, tree_with_bad_file):
    code, out, err = run_cli(capsys, "inspect", tree_with_bad_file, "--json")
    assert code == 0 and err == ""
    assert [u["path"] for u in json.loads(out)["unreadable"]] == [str(tree_with_bad_file / "train" / "sad" / "bad.jpg")]


# --------------------------------------------------------------------------- predict
def _bad_file(d: Path) -> tuple[list[Path], list[Path]]:
    return [d / "f0.png", write_corrupt(d.parent / "bad.png"), d / "f1.png"], [d / "f0.png", d / "f1.png"]


def _strip(d: Path) -> tuple[list[Path], list[Path]]:
    strip = write_image(d.parent / "strip.png", np.random.default_rng(0).integers(0, 256, (1, 5000), dtype=np.uint8))
    return [strip, d / "f0.png"], [strip, d / "f0.png"]


PREDICT = [
    # (case, (files given, files predicted) from the faces folder, exit code, fragments of each stderr line)
    ("11.1 bad file goes on", _bad_file, 1, [["bad.png", "cannot read image"], ["error: 1 of 3 image(s)"]]),
    ("11.2 folder", lambda d: ([d], [d / "f0.png", d / "f1.png"]), 0, []),
    ("11.3 piped whole paths", lambda d: ([d / "f1.png"], [d / "f1.png"]), 0, []),
    ("11.4 aspect ratio", _strip, 0, [["warning:", "strip.png", "5000x1", "far from a face crop"]]),
]


@pytest.mark.parametrize(("case", "code", "stderr"), [c[1:] for c in PREDICT], ids=[c[0] for c in PREDICT])
def test_predict(capsys, tmp_path, demo_dir, tiny_judge_run, case, code, stderr):
    faces = tmp_path / ("a_long_folder_name_" * 4) / "faces"  # longer than a table column on an 80-column pipe
    faces.mkdir(parents=True)
    for i, f in enumerate(sorted((demo_dir / "test").glob("*/*.png"))[:2]):
        shutil.copy(f, faces / f"f{i}.png")
    given, predicted = case(faces)
    got, out, err = run_cli(capsys, "predict", tiny_judge_run, *given, "--device", "cpu")
    assert got == code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == len(stderr), err
    for line, fragments in zip(lines, stderr, strict=True):
        assert all(f in line for f in fragments), (fragments, line)
    # stdout is not a terminal here: a tab-separated table with every path whole
    rows = [r.split("\t") for r in out.strip().splitlines()]
    assert rows[0][:2] == ["image", "top"] and len(rows[0]) == 2 + 8
    assert [r[0] for r in rows[1:]] == [str(p) for p in predicted]
