"""inspect_dataset: counts, imbalance, planted exact duplicates, unreadable files; the PNG chart."""

from __future__ import annotations

import numpy as np
import pytest

from augment.core.errors import UserError
from augment.core.readers import load_dataset
from augment.inspection import duplicate_report, imbalance_ratio, inspect_dataset, plot_distribution
from tests.conftest import random_image, write_corrupt, write_image

pytestmark = pytest.mark.usefixtures("quiet")


@pytest.fixture
def dup_tree(tmp_path):
    """train: happy 4 (two identical), sad 2; test: happy 1 (a copy of a train image), sad 1; one corrupt."""
    rng = np.random.default_rng(0)
    a, b = random_image(rng), random_image(rng)
    root = tmp_path / "dups"
    write_image(root / "train/happy/a1.png", a)
    write_image(root / "train/happy/a2.png", a)
    write_image(root / "train/happy/h3.png", random_image(rng))
    write_image(root / "train/happy/h4.png", random_image(rng))
    write_image(root / "train/sad/b1.png", b)
    write_image(root / "train/sad/s2.png", random_image(rng))
    write_image(root / "test/happy/a3.png", a)  # leaks from train
    write_image(root / "test/sad/t1.png", random_image(rng))
    write_corrupt(root / "train/sad/broken.jpg")
    return root


def test_counts_imbalance_duplicates_unreadable(dup_tree):
    rep = inspect_dataset(load_dataset(dup_tree, size=16))
    assert rep["images"] == 8
    assert rep["image_shape"] == [1, 16, 16]
    assert rep["classes"] == ["happy", "sad"]
    assert rep["counts"] == {"train": {"happy": 4, "sad": 2}, "test": {"happy": 1, "sad": 1}}
    assert rep["totals"] == {"train": 6, "test": 2}
    assert rep["imbalance_ratio"] == {"train": 2.0, "test": 1.0}
    dup = rep["duplicates"]
    assert dup["within_split"]["train"] == {"images_in_duplicate_groups": 2, "groups": 1, "redundant_copies": 1}
    assert dup["within_split"]["test"] == {"images_in_duplicate_groups": 0, "groups": 0, "redundant_copies": 0}
    assert dup["across_splits"] == {"test_in_train": 1}
    assert len(rep["unreadable"]) == 1
    assert rep["unreadable"][0]["path"].endswith("broken.jpg") and rep["unreadable"][0]["reason"]
    assert rep["dropped"] == {} and rep["subjects"] == 0 and rep["synthetic"] == 0


def test_three_splits_and_groups(demo_ds):
    ds = demo_ds.subset(np.arange(len(demo_ds)))
    train = np.flatnonzero(ds.splits == "train")
    test = np.flatnonzero(ds.splits == "test")
    ds.splits[train[:10]] = "val"
    ds.images[train[20]] = ds.images[train[21]] = ds.images[train[22]] = ds.images[train[30]]  # a group of 4
    ds.images[test[0]] = ds.images[train[0]]  # a val image copied into test
    rep = duplicate_report(ds)
    assert rep["within_split"]["train"] == {"images_in_duplicate_groups": 4, "groups": 1, "redundant_copies": 3}
    assert rep["across_splits"] == {"test_in_train": 0, "val_in_train": 0, "test_in_val": 1}


def test_demo_imbalance(demo_ds):
    rep = inspect_dataset(demo_ds)
    assert rep["imbalance_ratio"]["train"] == 4.0  # 24 / 6
    assert rep["totals"]["train"] == len(demo_ds.split("train"))
    assert rep["duplicates"]["across_splits"] == {"test_in_train": 0}


def test_imbalance_ratio_edge_cases():
    assert imbalance_ratio({"a": 10, "b": 5}) == 2.0
    assert imbalance_ratio({"a": 10, "b": 0}) is None
    assert imbalance_ratio({}) is None


def test_plot_distribution_writes_png(dup_tree, tmp_path):
    rep = inspect_dataset(load_dataset(dup_tree, size=16))
    out = tmp_path / "plots" / "dist.png"
    plot_distribution(rep, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 1000


def test_plot_distribution_bad_suffix(dup_tree, tmp_path):
    rep = inspect_dataset(load_dataset(dup_tree, size=16))
    with pytest.raises(UserError, match="png"):
        plot_distribution(rep, tmp_path / "dist.txt")
    assert not (tmp_path / "dist.txt").exists()
    plot_distribution(rep, tmp_path / "dist.svg")
    assert b"<svg" in (tmp_path / "dist.svg").read_bytes()[:500]


@pytest.fixture
def mixed_tree(tmp_path):
    """A rebalanced-looking tree: train disgust 1 real + 2 synthetic (in manifest.csv), happy 3 real; test real."""
    from augment.core.manifest import synthetic_row, write_manifest

    rng = np.random.default_rng(1)
    root = tmp_path / "mixed"
    names = ["train/happy/h1.png", "train/happy/h2.png", "train/happy/h3.png", "train/disgust/d1.png"]
    names += ["train/disgust/gen_1.png", "train/disgust/syn_disgust_000002.png", "test/happy/t1.png"]
    for name in names:
        write_image(root / name, random_image(rng))
    rows = [synthetic_row(n, "disgust", "train", root, 5, 0, i) for i, n in enumerate(names[4:6])]
    write_manifest(root, rows)
    return root


def test_real_and_synthetic_counts_per_class(mixed_tree):
    rep = inspect_dataset(load_dataset(mixed_tree, size=16))
    assert rep["synthetic"] == 2
    assert rep["counts"]["train"] == {"happy": 3, "disgust": 3}
    assert rep["real_counts"] == {"train": {"happy": 3, "disgust": 1}, "test": {"happy": 1, "disgust": 0}}
    assert rep["synthetic_counts"] == {"train": {"happy": 0, "disgust": 2}, "test": {"happy": 0, "disgust": 0}}


def test_cli_table_and_json_show_real_and_synthetic(mixed_tree, capsys):
    import json

    from tests.conftest import run_cli

    code, out, err = run_cli(capsys, "inspect", mixed_tree, "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["real_counts"]["train"]["disgust"] == 1 and rep["synthetic_counts"]["train"]["disgust"] == 2
    code, out, err = run_cli(capsys, "inspect", mixed_tree)
    assert code == 0, err
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines() if line.startswith("│ ")}
    # columns: train, train real, train synthetic, test (real only: no extra columns)
    assert rows["disgust"][:7] == ["│", "3", "│", "1", "│", "2", "│"] and rows["disgust"][7] == "0"
    assert rows["happy"][:8] == ["│", "3", "│", "3", "│", "0", "│", "1"]
    assert "synthetic images: 2" in out
