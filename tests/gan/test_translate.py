"""Translating real faces with a transfer run: the spreading rule, where sources come from, the sampler
interface both families share, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from augment.core.errors import UserError
from augment.core.manifest import parse_source_face, parse_synthetic_source
from gan.translate import NoiseSampler, TransferSampler, load_sampler, load_translator, spread

pytestmark = pytest.mark.usefixtures("quiet")


# --------------------------------------------------------------------------- the spreading rule
def test_no_source_repeats_until_every_one_is_used():
    order = spread(7, seed=3, label=2, count=21)
    for r in range(3):
        assert sorted(order[7 * r : 7 * (r + 1)].tolist()) == list(range(7))
    assert not np.array_equal(order[:7], order[7:14])  # each round is its own permutation


def test_the_order_is_seeded_and_extends_rather_than_changes():
    whole = spread(50, seed=1, label=4, count=120)
    assert np.array_equal(spread(50, seed=1, label=4, count=30, offset=45), whole[45:75])
    assert np.array_equal(spread(50, seed=1, label=4, count=120), whole)
    assert not np.array_equal(spread(50, seed=2, label=4, count=50), whole[:50])
    assert not np.array_equal(spread(50, seed=1, label=5, count=50), whole[:50])


# --------------------------------------------------------------------------- sources
MARK = 255


def poisoned(demo_ds):
    """The demo faces with a val split carved from train; every val and test face has a white top row."""
    ds = demo_ds.subset(np.arange(len(demo_ds)))
    train = np.flatnonzero(ds.splits == "train")
    ds.splits[train[::4]] = "val"
    ds.images[:, :, 0, :] = np.where((ds.splits == "train")[:, None, None], 0, MARK)
    return ds


def test_sources_never_come_from_val_or_test(demo_ds, tiny_transfer_run):
    ds = poisoned(demo_ds)
    sampler, meta = load_sampler(tiny_transfer_run, ds, seed=0)
    assert isinstance(sampler, TransferSampler) and meta["recipe"] == "transfer"
    train_files = set(ds.sources[ds.splits == "train"].tolist())
    for name in ("disgust", "fear"):
        cand = sampler.draw(name, len(sampler.eligible(name)) + 5, 0)
        assert (cand.source_images[:, :, 0, :] == 0).all(), "a val or test face was a source"
        files = [parse_source_face(s)[1] for s in cand.sources]
        assert set(files) <= train_files
        assert name not in cand.source_classes  # by default, every class but the target
        assert [parse_synthetic_source(s)[2] for s in cand.sources] == list(range(len(files)))


def test_the_sampler_refuses_anything_but_real_train_faces(demo_ds, tiny_transfer_run):
    g, meta = load_translator(tiny_transfer_run)
    with pytest.raises(ValueError, match="real faces of the train split"):
        TransferSampler(g, meta["classes"], demo_ds)  # holds test faces
    train = demo_ds.split("train")
    fake = train.subset(np.arange(len(train)))
    fake.synthetic[:3] = True
    with pytest.raises(ValueError, match="real faces"):
        TransferSampler(g, meta["classes"], fake)


def test_a_translated_face_is_its_source_redrawn(demo_ds, tiny_transfer_run):
    """Candidate i is G(source i, target): the same on every draw, and reproducible from its source file."""
    train = demo_ds.split("train")
    sampler, _ = load_sampler(tiny_transfer_run, train, seed=5)
    a, b = sampler.draw("fear", 12, 0), sampler.draw("fear", 4, 8)
    assert np.array_equal(a.images[8:], b.images) and a.sources[8:] == b.sources
    from gan.translate import translate

    row = int(np.flatnonzero(train.sources == parse_source_face(a.sources[3])[1])[0])
    again = translate(sampler.g, train.images[row : row + 1], sampler.classes.index("fear"))
    assert np.array_equal(again[0], a.images[3])


def test_named_source_classes_and_their_refusals(demo_ds, tiny_transfer_run):
    train = demo_ds.split("train")
    sampler, _ = load_sampler(tiny_transfer_run, train, from_classes=["happy", "neutral"])
    assert set(sampler.draw("disgust", 30, 0).source_classes) == {"happy", "neutral"}
    with pytest.raises(UserError, match="--source-classes pride"):
        load_sampler(tiny_transfer_run, train, from_classes=["pride"])
    no_happy = train.subset(train.labels != train.classes.index("happy"))
    sampler, _ = load_sampler(tiny_transfer_run, no_happy, from_classes=["happy"])
    with pytest.raises(UserError, match="disgust: no real training face among --source-classes happy"):
        sampler.draw("disgust", 3, 0)


def test_each_family_refuses_the_other(demo_ds, tiny_gan_run, tiny_transfer_run):
    from gan.sample import load_generator

    with pytest.raises(UserError, match="needs a --recipe transfer run"):
        load_translator(tiny_gan_run)
    with pytest.raises(UserError, match="full or classic"):
        load_generator(tiny_transfer_run)
    with pytest.raises(UserError, match="--source-classes"):
        load_sampler(tiny_gan_run, demo_ds, from_classes=["happy"])
    sampler, meta = load_sampler(tiny_gan_run, None, seed=1)
    assert isinstance(sampler, NoiseSampler) and meta["recipe"] == "full"
    assert sampler.draw("disgust", 3, 0).source_classes is None


# --------------------------------------------------------------------------- generate
def test_generate_with_a_transfer_run_names_each_source_and_resumes(
    demo_dir, demo_ds, tiny_transfer_run, tmp_path, capsys
):
    from augment.core.manifest import check_folder, read_manifest
    from tests.conftest import assert_one_line_error, run_cli

    out = tmp_path / "gen"
    args = ["generate", tiny_transfer_run, "--per-class", "5", "--classes", "disgust,fear", "--out", out]
    code, _, err = run_cli(capsys, *args, "--sources", demo_dir, "--source-classes", "happy,sad")
    assert code == 0, err
    rows = read_manifest(out)
    assert check_folder(out) == [] and len(rows) == 10
    train_files = set(demo_ds.sources[demo_ds.splits == "train"].tolist())
    assert {r["source_class"] for r in rows} <= {"happy", "sad"} and {r["source_file"] for r in rows} <= train_files
    assert len({r["source_file"] for r in rows if r["label"] == "disgust"}) == 5
    first = {p.name: p.read_bytes() for p in out.rglob("*.png")}
    (out / "fear" / "syn_fear_000002.png").unlink()  # an interrupted run: the rerun writes what is missing
    code, _, err = run_cli(capsys, *args, "--sources", demo_dir, "--source-classes", "happy,sad")
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in out.rglob("*.png")} == first
    code, _, err = run_cli(capsys, *args, "--sources", demo_dir, "--source-classes", "happy")
    assert_one_line_error(code, err, "--source-classes")  # other sources are another output
    code, _, err = run_cli(capsys, *args[:-1], tmp_path / "x", "--source-classes", "happy")
    assert_one_line_error(code, err, "--source-classes goes with --sources")
    assert not (tmp_path / "x").exists()


def test_generate_refuses_sources_for_a_noise_run(demo_dir, tiny_gan_run, tmp_path, capsys):
    from tests.conftest import assert_one_line_error, run_cli

    code, _, err = run_cli(
        capsys, "generate", tiny_gan_run, "--per-class", "2", "--out", tmp_path / "g", "--sources", demo_dir
    )
    assert_one_line_error(code, err, "--sources", "draws from noise")
    assert not (tmp_path / "g").exists()
