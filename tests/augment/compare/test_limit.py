"""``--limit``: a comparison and a generator on N real training faces of some classes, and the refusal of a
generator trained on other data."""

from __future__ import annotations

import json

import pytest

from augment.compare import run_compare, scheduler
from augment.compare.identity import check_generator_limit
from augment.core.errors import UserError
from augment.core.limits import apply_limit
from gan.config import GanConfig
from tests.augment.compare.helpers import spec
from tests.conftest import assert_one_line_error, quiet_env, run_cli, tiny_gan_config

pytestmark = pytest.mark.usefixtures("quiet")
LIMIT = {"fear": 10, "disgust": 3}


@pytest.fixture(scope="module")
def limited_gan(demo_ds, tmp_path_factory):
    """A tiny generator trained with --limit fear=10,disgust=3 (gan-train's --limit is this field)."""
    from gan.train import train_gan

    run = tmp_path_factory.mktemp("limited_gan") / "run"
    with quiet_env():
        train_gan(demo_ds, run, tiny_gan_config(demo_ds, limit=dict(LIMIT)), progress=False)
    return run


def _kept(demo_ds, cls):
    ds = apply_limit(demo_ds, LIMIT, GanConfig.val_fraction)
    return set(ds.subset((ds.splits == "train") & (ds.labels == ds.classes.index(cls))).pixel_hashes().tolist())


def test_gan_train_records_the_limit_and_refuses_another_on_resume(limited_gan, demo_ds):
    from gan.train import train_gan

    config = json.loads((limited_gan / "config.json").read_text())
    assert config["limit"] == LIMIT
    assert config["train_counts"]["fear"] == 10 and config["train_counts"]["disgust"] == 3
    full = json.loads((limited_gan / "config.json").read_text())["val_counts"]
    assert full["fear"] > 0  # validation carved before the limit: an unlimited run's
    before = sorted(p.name for p in limited_gan.iterdir())
    cfg = tiny_gan_config(demo_ds, steps=20, limit={"fear": 11, "disgust": 3})
    with pytest.raises(UserError, match="limit: was"):
        train_gan(demo_ds, limited_gan, cfg, progress=False)
    assert sorted(p.name for p in limited_gan.iterdir()) == before


def test_compare_refuses_a_generator_trained_on_other_data(planted, tiny_gan_run, limited_gan, tmp_path):
    report = tmp_path / "report"
    with pytest.raises(UserError, match="trained on the full train split .*--limit disgust=3,fear=10"):
        run_compare(planted, tiny_gan_run, report, spec(limit={"disgust": 3, "fear": 10}), progress=False)
    with pytest.raises(UserError, match=r"trained with --limit fear=10,disgust=3, but this comparison has no --limit"):
        run_compare(planted, limited_gan, report, spec(), progress=False)
    with pytest.raises(UserError, match="trained with --limit fear=10,disgust=3, but this comparison has --limit"):
        run_compare(planted, limited_gan, report, spec(limit={"fear": 9, "disgust": 3}), progress=False)
    assert not report.exists()  # refused before anything was written
    check_generator_limit("run", {"limit": {"fear": 10}}, {"fear": 10})
    check_generator_limit("run", {}, {})  # a run from before --limit trained on the full split


def test_no_limited_class_gains_real_faces_in_any_condition(planted, limited_gan, tmp_path, monkeypatch):
    parts = {}
    real = scheduler.condition_data

    def spy(data, pool, cs, seed):
        part = real(data, pool, cs, seed)
        parts[(cs.synthetic, cs.duplicates, str(cs.train), seed)] = part
        return part

    monkeypatch.setattr(scheduler, "condition_data", spy)
    report = tmp_path / "report"
    summary = run_compare(planted, limited_gan, report, spec(limit=dict(LIMIT), seeds=1), progress=False)
    assert len(parts) == 4 and any(k[0] for k in parts) and any(k[1] for k in parts)  # gan and oversample ran
    for cls, n in LIMIT.items():
        kept = _kept(planted, cls)
        assert len(kept) == n
        for key, part in parts.items():
            faces = part.subset((part.splits == "train") & ~part.synthetic & (part.labels == part.classes.index(cls)))
            assert set(faces.pixel_hashes().tolist()) <= kept, (cls, key)  # duplicates of the N, never others
        assert summary["train_counts"][cls] == n
    assert json.loads((report / "compare.json").read_text())["limit"] == LIMIT
    for r in summary["runs"]:
        result = json.loads((report / "runs" / r["model"] / r["condition"] / "seed0" / "result.json").read_text())
        assert result["limit"] == LIMIT
    assert summary["spec"]["limit"] == LIMIT


@pytest.mark.parametrize(
    ("limit", "words"),
    [
        ("boredom=3", ["--limit boredom=3", "not a class"]),
        ("disgust=0", ["--limit disgust=0", "at least 1"]),
        ("fear=-2", ["--limit fear=-2", "at least 1"]),
        ("disgust=999", ["--limit disgust=999", "only 5 real disgust faces"]),
    ],
)
def test_a_bad_limit_is_one_line_and_writes_nothing(demo_dir, tmp_path, capsys, limit, words):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "compare", demo_dir, "--out", out, "--limit", limit, "--seeds", "1")
    assert_one_line_error(code, err, *words)
    assert not out.exists()
    code, _, err = run_cli(capsys, "gan-train", demo_dir, "--out", out, "--limit", limit, "--steps", "1")
    assert_one_line_error(code, err, *words)
    assert not out.exists()


def test_the_limit_keeps_the_same_faces_in_gan_train_and_compare(demo_ds, limited_gan):
    """The generator's training faces are the comparison's: one seeded choice, one carve."""
    from gan.checkpoint import training_split

    cfg = tiny_gan_config(demo_ds, limit=dict(LIMIT))
    train = training_split(demo_ds, cfg)
    for cls in LIMIT:
        faces = train.subset(train.labels == train.classes.index(cls))
        assert set(faces.pixel_hashes().tolist()) == _kept(demo_ds, cls)


def test_gan_eval_measures_a_limited_generator_against_the_faces_it_saw(demo_ds, limited_gan):
    from gan.evaluate import eval_splits, limited_as_trained
    from gan.sample import load_generator

    g, meta = load_generator(limited_gan)
    train, val, notes = eval_splits(limited_as_trained(demo_ds, meta["config"]), meta, g)
    assert train.counts()["fear"] == 10 and train.counts()["disgust"] == 3
    assert notes == []  # its validation faces are the ones gan-train held out
    assert limited_as_trained(demo_ds, {}) is demo_ds
