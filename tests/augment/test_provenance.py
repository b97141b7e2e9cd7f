"""Provenance survives the disk: rebalance (both output formats), read back with load_dataset, train.

The synthetic faces of a rebalanced folder are marked again when it is read back, so a val split is never
carved from them, and ``train`` refuses a folder whose val or test split holds one.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.manifest import read_manifest, write_manifest
from augment.core.readers import load_dataset
from augment.core.readers.provenance import manifest_key
from augment.plan import plan_rebalance
from augment.rebalance import run_rebalance
from augment.synthesis import QualityFilter
from classifier.state import prepare_splits
from classifier.train import train_classifier
from tests.conftest import assert_one_line_error, run_cli, tiny_classifier_config

pytestmark = pytest.mark.usefixtures("quiet")

OFF = QualityFilter(min_prob=0)  # a 10-step GAN's faces would not pass a real judge
FORMATS = ("folders", "fer2013-csv")


@pytest.fixture(scope="module", params=FORMATS)
def rebalanced(request, demo_ds, tiny_gan_run, tmp_path_factory) -> tuple[str, FaceDataset, dict, Path, dict]:
    """The demo faces (train and test, no val) rebalanced to the largest class in one format:
    (format, input data, synthetic faces added per class, output folder, rebalance summary)."""
    fmt = request.param
    data = demo_ds if fmt == "folders" else demo_ds.with_classes([c for c in demo_ds.classes if c != "contempt"])
    plan = plan_rebalance(data.counts("train"), "max")
    out = tmp_path_factory.mktemp(fmt) / "out"
    summary = run_rebalance(data, tiny_gan_run, out, plan, None, OFF, seed=2, fmt=fmt, progress=False)
    return fmt, data, {p.name: p.add for p in plan}, out, summary


def per_class(ds: FaceDataset, mask: np.ndarray) -> dict[str, int]:
    return {c: int(((ds.labels == i) & mask).sum()) for i, c in enumerate(ds.classes)}


def train_cfg():
    return tiny_classifier_config(epochs=1, batch_size=32, val_fraction=0.2)


def test_read_back_marks_the_synthetic_faces(rebalanced, capsys):
    fmt, data, added, out, summary = rebalanced
    back = load_dataset(out)
    assert capsys.readouterr().err == ""  # the manifest marks them: no fallback warning
    assert not data.synthetic.any() and summary["synthetic_files"] == sum(added.values()) > 0
    assert back.synthetic.sum() == summary["synthetic_files"]
    assert per_class(back, back.synthetic) == added
    assert per_class(back, ~back.synthetic & (back.splits == "train")) == data.counts("train")
    assert back.counts("test") == data.counts("test") and not back.has_split("val")
    assert set(back.splits[back.synthetic].tolist()) == {"train"}
    listed = {r["path"] for r in read_manifest(out) if r["source"] == "synthetic"}
    assert {manifest_key(s, out) for s in back.sources[back.synthetic].tolist()} == listed
    if fmt == "folders":
        assert all(Path(s).name.startswith("syn_") for s in back.sources[back.synthetic])
    else:
        assert all("fer2013.csv#row" in s for s in back.sources[back.synthetic])
    # the same marks when the CSV file itself, or a cache of the folder, is read
    again = load_dataset(out / "fer2013.csv" if fmt == "fer2013-csv" else out)
    back.save(out.parent / "cache.npz")
    assert again.synthetic.tolist() == load_dataset(out.parent / "cache.npz").synthetic.tolist()
    assert again.synthetic.tolist() == back.synthetic.tolist()


def test_train_carves_val_from_real_faces_only(rebalanced, tmp_path):
    _, data, _, out, _ = rebalanced
    back = load_dataset(out)
    assert back.synthetic.sum() > 0 and not back.has_split("val")
    train, val = prepare_splits(back, train_cfg())
    assert len(val) > 0 and not val.synthetic.any()
    assert train.synthetic.sum() == back.synthetic.sum()  # every synthetic face stayed in train
    assert len(train) + len(val) == len(back.split("train"))  # test never reaches training
    summary = train_classifier(back, tmp_path / "run", train_cfg(), progress=False)
    assert summary["epochs_done"] == 1 and (tmp_path / "run" / "model.pt").is_file()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["synthetic_train_images"] == int(back.synthetic.sum())
    assert config["val_counts"] == val.counts()
    assert sum(config["val_counts"].values()) + sum(config["train_counts"].values()) == len(back.split("train"))


# --------------------------------------------------------------------------- a synthetic face forced into val / test
def move_to_val(out: Path, copy: Path, keep_manifest: bool) -> str:
    """Copy a rebalanced tree and move its first synthetic file into val/ (updating its manifest row)."""
    shutil.copytree(out, copy)
    rows = read_manifest(copy)
    row = next(r for r in rows if r["source"] == "synthetic")
    moved = f"val/{row['label']}/{Path(row['path']).name}"
    (copy / moved).parent.mkdir(parents=True)
    (copy / row["path"]).rename(copy / moved)
    row.update(path=moved, split="val")
    if keep_manifest:
        write_manifest(copy, rows)
    else:
        (copy / "manifest.csv").unlink()
    return moved


def force_csv_row(out: Path, copy: Path, usage: str) -> int:
    """Copy a rebalanced FER2013 CSV and give its first synthetic row another Usage; its row number."""
    copy.mkdir()
    shutil.copy2(out / "manifest.csv", copy / "manifest.csv")
    row_no = next(int(r["path"].split("#row")[1]) for r in read_manifest(out) if r["source"] == "synthetic")
    with open(out / "fer2013.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[row_no][2] = usage  # rows[0] is the header, so data row N is rows[N]
    with open(copy / "fer2013.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return row_no


def cli_train(capsys, data: Path, run: Path) -> tuple[int, str, str]:
    opts = ["--epochs", 1, "--width", 0.25, "--device", "cpu", "--batch-size", 32]
    return run_cli(capsys, "train", data, "--out", run, *opts)


def test_train_refuses_a_synthetic_face_in_val(rebalanced, tmp_path, capsys):
    fmt, _, _, out, _ = rebalanced
    if fmt == "folders":
        moved = move_to_val(out, tmp_path / "forced", keep_manifest=True)
        assert load_dataset(tmp_path / "forced").split("val").synthetic.sum() == 1
        code, _, err = cli_train(capsys, tmp_path / "forced", tmp_path / "run")
        assert_one_line_error(code, err, "1 synthetic image(s) in the val split", Path(moved).name)
    else:
        row_no = force_csv_row(out, tmp_path / "forced", "PublicTest")
        code, _, err = cli_train(capsys, tmp_path / "forced", tmp_path / "run")
        assert_one_line_error(code, err, "1 synthetic image(s) in the val split", f"fer2013.csv#row{row_no}")
    assert not (tmp_path / "run").exists()


def test_train_refuses_a_synthetic_face_in_test(rebalanced, tmp_path, capsys):
    fmt, _, _, out, _ = rebalanced
    if fmt == "folders":  # no manifest: the syn_ name marks it, with a warning
        shutil.copytree(out, tmp_path / "forced")
        (tmp_path / "forced" / "manifest.csv").unlink()
        syn = next((tmp_path / "forced" / "train").glob("*/syn_*.png"))
        syn.rename(tmp_path / "forced" / "test" / syn.parent.name / syn.name)
        ds = load_dataset(tmp_path / "forced")
        assert "syn_* file(s)" in capsys.readouterr().err
    else:
        force_csv_row(out, tmp_path / "forced", "PrivateTest")
        ds = load_dataset(tmp_path / "forced")
    assert ds.split("test").synthetic.sum() == 1
    with pytest.raises(UserError, match="1 synthetic image.s. in the test split"):
        train_classifier(ds, tmp_path / "run", train_cfg(), progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("rebalanced", ["folders"], indirect=True)  # a FER2013 CSV row has no file name
def test_without_a_manifest_the_syn_names_still_keep_val_real(rebalanced, tmp_path, capsys):
    out = rebalanced[3]
    move_to_val(out, tmp_path / "forced", keep_manifest=False)
    ds = load_dataset(tmp_path / "forced")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning:") and "no augment manifest.csv" in err[0]
    assert ds.synthetic.sum() == int(load_dataset(out).synthetic.sum())
    with pytest.raises(UserError, match="in the val split"):
        prepare_splits(ds, train_cfg())
