"""The data commands of the CLI: demo-data, prepare, inspect, --help, and one-line user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from augment.core.readers import load_dataset
from tests.conftest import assert_one_line_error, make_fer_csv, make_folder_tree, run_cli, write_corrupt

pytestmark = pytest.mark.usefixtures("quiet")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path):
    root = make_folder_tree(tmp_path / "tree", {"train/happy": 3, "train/sad": 2, "test/happy": 1, "test/sad": 1})
    write_corrupt(root / "train" / "sad" / "bad.jpg")
    return root


class TestPrepare:
    def test_writes_cache_that_round_trips(self, capsys, tree, tmp_path):
        cache = tmp_path / "c.npz"
        code, out, err = run_cli(capsys, "prepare", tree, "--out", cache, "--size", 24)
        assert code == 0, err
        assert "cached 7 images" in out and err.startswith("warning: skipped 1 unreadable") and "bad.jpg" in err
        direct = load_dataset(tree, size=24)
        back = load_dataset(cache)
        np.testing.assert_array_equal(back.images, direct.images)
        for name in ("labels", "splits", "sources", "subjects", "synthetic"):
            assert getattr(back, name).tolist() == getattr(direct, name).tolist()
        assert back.classes == direct.classes and back.name == direct.name
        assert back.skipped == direct.skipped and back.dropped == direct.dropped

    def test_refuses_to_overwrite(self, capsys, tree, tmp_path):
        cache = tmp_path / "c.npz"
        cache.write_bytes(b"precious")
        code, _, err = run_cli(capsys, "prepare", tree, "--out", cache)
        assert_one_line_error(code, err, str(cache), "--overwrite")
        assert cache.read_bytes() == b"precious"
        code, _, err = run_cli(capsys, "prepare", tree, "--out", cache, "--overwrite", "--channels", 3)
        assert code == 0, err
        assert load_dataset(cache).images.shape == (7, 3, 48, 48)

    def test_out_must_be_npz(self, capsys, tree, tmp_path):
        code, _, err = run_cli(capsys, "prepare", tree, "--out", tmp_path / "c.pkl")
        assert_one_line_error(code, err, ".npz")

    def test_classes_and_format_options(self, capsys, tmp_path):
        csv_path = make_fer_csv(tmp_path / "fer2013.csv", [0, 3, 3, 4])
        cache = tmp_path / "c.npz"
        code, _, err = run_cli(
            capsys, "prepare", csv_path, "--out", cache, "--classes", "happy", "--format", "fer2013-csv"
        )
        assert code == 0, err
        assert load_dataset(cache).counts() == {"happy": 2}
        code, _, err = run_cli(capsys, "prepare", csv_path, "--out", tmp_path / "d.npz", "--classes", "bored")
        assert_one_line_error(code, err, "bored")

    def test_reader_error_is_one_line(self, capsys, tmp_path):
        path = make_fer_csv(tmp_path / "fer2013.csv", [(0, "Training", "1 2 3")])
        code, _, err = run_cli(capsys, "prepare", path, "--out", tmp_path / "c.npz")
        assert_one_line_error(code, err, "row 1", "line 2")
        assert not (tmp_path / "c.npz").exists()


class TestInspect:
    def test_json(self, capsys, tree, tmp_path):
        plot = tmp_path / "dist.png"
        code, out, err = run_cli(capsys, "inspect", tree, "--json", "--plot", plot)
        assert code == 0, err
        rep = json.loads(out)
        for key in ("counts", "totals", "imbalance_ratio", "duplicates", "unreadable", "classes", "images"):
            assert key in rep
        assert rep["counts"]["train"] == {"happy": 3, "sad": 2}
        assert rep["imbalance_ratio"]["train"] == 1.5
        assert rep["duplicates"]["across_splits"] == {"test_in_train": 0}
        assert [Path(u["path"]).name for u in rep["unreadable"]] == ["bad.jpg"]
        assert plot.read_bytes()[:4] == b"\x89PNG"

    def test_table(self, capsys, tree):
        code, out, err = run_cli(capsys, "inspect", tree)
        assert code == 0, err
        assert "happy" in out and "imbalance" in out and "unreadable files" in out and "bad.jpg" in out

    def test_cache_input(self, capsys, tree, tmp_path):
        run_cli(capsys, "prepare", tree, "--out", tmp_path / "c.npz")
        code, out, err = run_cli(capsys, "inspect", tmp_path / "c.npz", "--json", "--classes", "sad")
        assert code == 0, err
        assert json.loads(out)["counts"] == {"train": {"sad": 2}, "test": {"sad": 1}}

    def test_unknown_folder_error(self, capsys, tmp_path):
        make_folder_tree(tmp_path, {"happy": 1, "joyful": 1})
        code, _, err = run_cli(capsys, "inspect", tmp_path)
        assert_one_line_error(code, err, "joyful", "--classes")

    def test_only_unknown_folders(self, capsys, tmp_path):
        make_folder_tree(tmp_path, {"joyful": 1, "grumpy": 1})
        code, _, err = run_cli(capsys, "inspect", tmp_path)
        # the hint names the folders; square brackets in messages must survive rich markup
        assert_one_line_error(code, err, "grumpy, joyful", "--classes", "train|test/<class>")
        code, out, err = run_cli(capsys, "inspect", tmp_path, "--json", "--classes", "joyful=happy,grumpy=angry")
        assert code == 0, err
        assert json.loads(out)["counts"] == {"train": {"happy": 1, "angry": 1}}


class TestDemoData:
    def test_writes_and_refuses_non_empty(self, capsys, tmp_path):
        out_dir = tmp_path / "demo"
        code, out, err = run_cli(capsys, "demo-data", out_dir, "--counts", "happy=3,sad=2", "--size", 16)
        assert code == 0, err
        assert "wrote" in out
        ds = load_dataset(out_dir)
        assert ds.counts("train")["happy"] == 3 and ds.counts("train")["sad"] == 2
        code, _, err = run_cli(capsys, "demo-data", out_dir)
        assert_one_line_error(code, err, str(out_dir))
        code, _, err = run_cli(capsys, "demo-data", tmp_path / "x", "--counts", "bored=3")
        assert_one_line_error(code, err, "bored")


def test_help_lists_data_commands(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for cmd in ("demo-data", "prepare", "inspect"):
        assert cmd in out


def test_subprocess_error_is_one_line_no_traceback(tmp_path):
    missing = tmp_path / "nonexistent"
    env = {**os.environ, "AUGMENT_QUIET": "1", "COLUMNS": "60"}
    proc = subprocess.run(
        [sys.executable, "-m", "augment", "inspect", str(missing)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and str(missing) in lines[0]
    assert proc.stdout == ""


def test_error_message_with_brackets_is_printed_verbatim(capsys, tmp_path):
    for name in ("[red]x", "[/x]"):
        missing = tmp_path / name
        code, _, err = run_cli(capsys, "inspect", missing)
        assert_one_line_error(code, err, str(missing))
