"""compare's conditions: one table, what each adds to train (synthetic amounts, duplicates), the new ways
of using synthetic faces screened on validation, and budgets by images seen."""

from __future__ import annotations

import json
import re
from dataclasses import fields, replace

import numpy as np
import pytest

from augment import compare
from augment.compare import (
    Budget,
    condition_amounts,
    condition_data,
    condition_spec,
    oversample,
    prepare_data,
    run_compare,
    scheduler,
    synthetic_pool,
    take_synthetic,
)
from augment.compare import data as compare_data
from augment.core.errors import UserError
from augment.plan import capped, share
from tests.augment.compare.helpers import SEEDS, TINY, hashes, spec

pytestmark = pytest.mark.usefixtures("quiet")


def test_no_synthetic_image_reaches_val_or_test(compared, planted, tiny_gan_run):
    """The data steps called directly: every condition's training data around the shared real val."""
    report, _, _ = compared
    prepared = prepare_data(planted, spec())
    pool, _ = synthetic_pool(report, prepared, tiny_gan_run, spec(), "cpu", progress=False)  # the one kept
    assert pool is not None and pool.synthetic.all()
    real_val, test_hashes = hashes(prepared.val), hashes(prepared.test)
    assert real_val and not prepared.val.synthetic.any() and not test_hashes & hashes(prepared.train)
    train_counts = prepared.train.counts()
    wanted = prepared.wanted  # after carving val: disgust and contempt 5 real, shortfall 17; the others 0 (22 real)
    assert wanted["disgust"] == 17 and train_counts["disgust"] == 5
    # what each condition adds to disgust: (GAN samples, duplicates of real images)
    expected = {
        "baseline": (0, 0),
        "gan": (17, 0),
        "gan25": (4, 0),  # 4.25
        "gan50": (9, 0),  # 8.5, rounded half up
        "gan+weighted": (17, 0),
        "oversample": (0, 17),
        "weighted": (0, 0),
        "gan-cap": (5, 0),  # --max-ratio 1: at most the 5 real
        "gan-cap0.5": (3, 0),  # 2.5
        "gan-cap2": (10, 0),
        "gan-w": (17, 0),
        "gan+oversample": (9, 8),  # half GAN samples, the rest duplicates
        "gan-refit": (17, 0),
        "refit": (0, 0),
        "transfer": (17, 0),
        "transfer+oversample": (9, 8),
        "transfer-cap": (5, 0),
        "transfer-cap0.5": (3, 0),
    }
    assert set(compare.CONDITIONS) < set(expected)
    for cond, (n_syn, n_dup) in expected.items():
        r = condition_spec(cond, spec())
        synthetic, duplicates = condition_amounts(prepared, r)
        assert (synthetic["disgust"], duplicates["disgust"]) == (n_syn, n_dup), cond
        assert synthetic == {c: capped(share(r.synthetic, n), train_counts[c], r.max_ratio) for c, n in wanted.items()}
        for seed in range(SEEDS):
            part = condition_data(prepared, pool, r, seed)
            assert set(part.splits.tolist()) == {"train", "val"}, cond
            assert hashes(part.split("val")) == real_val and not part.synthetic[part.splits == "val"].any(), cond
            assert not hashes(part) & test_hashes, cond
            assert part.subset(part.synthetic).counts() == synthetic, cond
            added = {c: synthetic[c] + duplicates[c] for c in train_counts}
            assert part.counts("train") == {c: train_counts[c] + added[c] for c in train_counts}, cond
            real_train = part.subset((part.splits == "train") & ~part.synthetic)
            assert hashes(real_train) == hashes(prepared.train), cond  # duplicates are of real training images


def test_the_transfer_pool_translates_the_train_part_only(planted, tiny_transfer_run, tmp_path):
    """The transfer pool's sources are the comparison's real train part: never its validation or test faces."""
    from augment.compare.conditions import TRANSFER_POOL
    from augment.core.manifest import parse_source_face

    s = spec(conditions=["baseline", "transfer"])
    prepared = prepare_data(planted, s)
    pool, report = synthetic_pool(tmp_path, prepared, tiny_transfer_run, s, "cpu", False, TRANSFER_POOL)
    assert (tmp_path / "transfer.npz").exists() and not (tmp_path / "synthetic.npz").exists()
    assert pool.counts() == {c: n for c, n in prepared.wanted.items()} and report["recipe"] == "transfer"
    files = {parse_source_face(src)[1] for src in pool.sources.tolist()}
    assert files <= set(prepared.train.sources.tolist())
    assert not files & set(prepared.val.sources.tolist()) and not files & set(prepared.test.sources.tolist())
    noise, _ = synthetic_pool(tmp_path, prepared, tiny_transfer_run, s, "cpu", False)  # no condition draws on it
    assert noise is None


# --------------------------------------------------------------------------- the conditions' data
def test_synthetic_amounts_and_oversampling(demo_ds):
    train = demo_ds.split("train")
    pool = demo_ds.split("test").subset(np.arange(int((demo_ds.splits == "test").sum())))
    pool.synthetic[:] = True
    k = pool.classes.index("happy")
    small = take_synthetic(pool, {"happy": 2})
    large = take_synthetic(pool, {"happy": 4, "sad": 1})
    assert small.counts()["happy"] == 2 and large.counts()["happy"] == 4 and large.counts()["sad"] == 1
    happy_small = small.images[small.labels == k]
    happy_large = large.images[large.labels == k]
    assert np.array_equal(happy_small, happy_large[:2])  # a smaller amount is a prefix of a larger one

    more = oversample(train, {"disgust": 18, "contempt": 5}, seed=1)
    assert more.counts()["disgust"] == 24 and more.counts()["contempt"] == 11
    assert more.counts()["happy"] == train.counts()["happy"] and not more.synthetic.any()
    assert hashes(more) == hashes(train)  # duplicates of real training images only
    again = oversample(train, {"disgust": 18, "contempt": 5}, seed=1)
    assert np.array_equal(again.images, more.images)


# --------------------------------------------------------------------------- ways to use synthetic faces
NEW_CONDITIONS = ["baseline", "gan-cap0.5", "gan-w", "gan+oversample", "gan-refit", "refit"]


@pytest.fixture(scope="module")
def screened(planted, tiny_gan_run, tmp_path_factory):
    """The new conditions, one seed, screened on validation: a spy on what is scored, and test must never
    be cleaned (read) at all."""
    report = tmp_path_factory.mktemp("screen") / "report"
    scored = []
    real_eval = scheduler.score_run

    def spy_eval(run_dir, test, *args, **kwargs):
        scored.append(test)
        return real_eval(run_dir, test, *args, **kwargs)

    def no_test(*args, **kwargs):
        raise AssertionError("--eval-split val read the test split")

    screen = spec(conditions=NEW_CONDITIONS, seeds=1, eval_split="val", refit_epochs=1, synthetic_weight=0.3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(compare.BUDGETS, TINY.name, TINY)
        mp.setattr(scheduler, "score_run", spy_eval)
        mp.setattr(compare_data, "clean_test", no_test)
        summary = run_compare(planted, tiny_gan_run, report, screen, progress=False)
    return report, summary, scored, screen


def test_screening_scores_on_validation_and_never_on_test(screened, planted):
    report, summary, scored, screen = screened
    val = prepare_data(planted, screen).val
    test_hashes = hashes(planted.split("test"))
    assert len(scored) == len(NEW_CONDITIONS)
    for images in scored:
        assert hashes(images) <= hashes(val) and not hashes(images) & test_hashes
        assert len(images) == summary["test_images"] and not images.synthetic.any()
    assert summary["test_counts"] == val.counts()
    saved = json.loads((report / "results.json").read_text())
    assert saved["eval_split"] == "val" and saved["scored_on"] == "validation (screening)"
    assert json.loads((report / "compare.json").read_text())["eval_split"] == "val"
    md = (report / "REPORT.md").read_text()
    assert "(screening on validation)" in md.splitlines()[0]
    assert "Scored on: **validation (screening)**" in md and "The test split is never used" in md
    assert "rests on few real validation images" in md and "test image" not in md.split("## Setup")[0]


def test_screening_needs_no_test_split_and_the_final_grid_does(demo_ds):
    no_test = demo_ds.subset(demo_ds.splits != "test")
    prepared = prepare_data(no_test, spec(eval_split="val"))
    assert prepared.eval_split == "val" and len(prepared.test) and hashes(prepared.test) <= hashes(prepared.val)
    with pytest.raises(UserError, match="test split"):
        prepare_data(no_test, spec())


def test_screening_and_final_runs_never_share_a_folder(screened, planted, tiny_gan_run):
    report, _, _, screen = screened
    with pytest.raises(UserError, match=r'\(--eval-split was "val", now "test"\)'):
        run_compare(planted, tiny_gan_run, report, replace(screen, eval_split="test"), progress=False)


def test_each_condition_trains_with_its_condition_spec_and_records_it(screened):
    report, summary, _, _ = screened
    n_real = sum(summary["train_counts"].values())
    plan = summary["synthetic_plan"]
    by = {r["condition"]: r for r in summary["runs"]}
    for cond, r in by.items():
        cfg = json.loads((report / "runs" / "simple-cnn" / cond / "seed0" / "config.json").read_text())
        assert r["config"]["synthetic_weight"] == cfg["synthetic_weight"] == (0.3 if cond == "gan-w" else 1.0), cond
        refit = 1 if cond in ("gan-refit", "refit") else 0
        assert r["config"]["refit_head_epochs"] == cfg["refit_head_epochs"] == refit, cond
        assert r["config"]["max_minutes"] == 0 and r["seconds"] > 0, cond
        assert r["recipe"] == {k: v for k, v in summary["conditions"][cond].items() if k != "about"}, cond
    cap = {c: min(n, share(0.5, summary["train_counts"][c])) for c, n in plan.items()}
    assert by["gan-cap0.5"]["synthetic_train_images"] == sum(cap.values()) > 0
    assert by["gan-cap0.5"]["synthetic_train_images"] < sum(plan.values())
    half = sum(share(0.5, n) for n in plan.values())
    assert by["gan+oversample"]["synthetic_train_images"] == half
    assert by["gan+oversample"]["train_images"] == n_real + sum(plan.values())
    for cond in ("gan-w", "gan-refit"):
        assert by[cond]["synthetic_train_images"] == sum(plan.values()), cond
    assert by["refit"]["synthetic_train_images"] == 0 == by["baseline"]["synthetic_train_images"]
    md = (report / "REPORT.md").read_text()
    assert "- `gan-cap0.5`: GAN samples fill 100% of each class's shortfall to the target, at most 0.5 × " in md
    assert (
        "- `gan-w`: GAN samples fill 100% of each class's shortfall to the target; each synthetic face's loss × 0.3"
        in md
    )
    assert "- `gan+oversample`: GAN samples fill 50% of each class's shortfall to the target; random duplicates" in md
    assert "- `refit`: then the head re-fitted for 1 epochs on class-balanced real faces, body frozen." in md


def test_a_changed_condition_setting_is_refused_on_rerun(screened, planted, tiny_gan_run, monkeypatch):
    import classifier.train

    report, _, _, screen = screened
    monkeypatch.setattr(classifier.train, "train_classifier", lambda *a, **k: pytest.fail("trained again"))
    with pytest.raises(UserError, match="gan-w now means .*loss × 0.7.*--synthetic-weight"):
        run_compare(planted, tiny_gan_run, report, replace(screen, synthetic_weight=0.7), progress=False)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"conditions": ["gan-cap0"]}, "--conditions gan-cap0: the cap must be above 0"),
        ({"conditions": ["gan-cap"], "max_ratio": 0.0}, "--conditions gan-cap: the cap must be above 0"),
        ({"conditions": ["gan-capx"]}, "--conditions gan-capx"),
        ({"conditions": ["refit"], "refit_epochs": 0}, "--refit-epochs 0"),
        ({"synthetic_weight": -1.0}, "--synthetic-weight -1"),
        ({"eval_split": "train"}, "--eval-split train"),
    ],
)
def test_bad_condition_settings(planted, tiny_gan_run, tmp_path, kw, message):
    with pytest.raises(UserError, match=re.escape(message)):
        run_compare(planted, tiny_gan_run, tmp_path / "r", spec(**kw), progress=False)
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- budgets by images seen
def test_budgets_count_images_seen_never_minutes():
    assert "max_minutes" not in {f.name for f in fields(Budget)}
    for b in compare.BUDGETS.values():
        for model in b.default_models():
            cfg = compare.budget_train_config(model, b, 0, condition_spec("baseline", spec()), "cpu")
            assert cfg.max_minutes == 0, b.name
            per_epoch = b.epoch_samples_for(model)
            assert b.images_seen(model, 5000) == b.epochs * (per_epoch or 5000), b.name
    gpu = compare.BUDGETS["gpu-small"]
    assert gpu.epoch_samples > 0 and gpu.images_seen("resnet18", 10**6) == gpu.epochs * gpu.epoch_samples


def test_the_cpu_budget_trains_fer_cnn_by_the_recipe():
    cpu = compare.BUDGETS["cpu"]
    assert cpu.default_models() == ["fer-cnn"] and compare.budget_models("cpu") == ["fer-cnn"]
    assert compare.budget_models("cpu-small") == list(compare.DEFAULT_MODELS)
    cfg = compare.budget_train_config("fer-cnn", cpu, 2, condition_spec("gan-w", spec(synthetic_weight=0.4)), "cpu")
    assert (cfg.model, cfg.width, cfg.batch_size, cfg.lr) == ("fer-cnn", 0.5, 128, 3e-3)
    assert (cfg.optimizer, cfg.weight_decay, cfg.schedule) == ("adamw", 5e-4, "onecycle")
    assert cfg.flip and cfg.affine and cfg.epoch_samples == 0 and cfg.epochs == cpu.epochs
    assert cfg.synthetic_weight == 0.4 and cfg.seed == 2 and not cfg.class_weighted
    assert cfg.head_width == 0.0  # fer-cnn has no MLP head; ResEmoteNet keeps the published head
    rem = compare.budget_train_config("resemotenet", cpu, 0, condition_spec("baseline", spec()), "cpu")
    assert (rem.width, rem.head_width, rem.size) == (0.25, 1.0, 48)
    # full epochs count real training images: a condition that adds images trains no longer than baseline
    for cond, per_epoch in (("oversample", 25839), ("gan-cap0.5", 25839), ("weighted", 0), ("refit", 0)):
        cfg = compare.budget_train_config("fer-cnn", cpu, 2, condition_spec(cond, spec()), "cpu", 25839)
        assert cfg.epoch_samples == per_epoch, cond


# --------------------------------------------------------------------------- the table
def test_a_condition_is_one_entry_of_the_table(planted, monkeypatch):
    """A toy condition added to the table (oversample to half the shortfall) is known everywhere: its
    spec, its words, its help, whether it is real-only, its data and the checks of a spec."""
    from augment.compare import Condition, condition_help, conditions, describe, real_only, validate_spec

    toy = Condition(
        "oversample-half",
        "duplicates of real images for half the shortfall",
        "random duplicates of real images fill {duplicates:.0%} of the shortfall",
        duplicates=0.5,
    )
    with pytest.raises(UserError, match=r"--conditions oversample-half: use some of .*gan-capR, e.g. gan-cap0.5"):
        condition_spec("oversample-half", spec())
    monkeypatch.setitem(conditions.CONDITIONS, toy.name, toy)
    cs = condition_spec("oversample-half", spec())
    assert (cs.synthetic, cs.max_ratio, cs.duplicates, cs.train) == (0.0, 0.0, 0.5, {})
    assert describe("oversample-half", cs) == "random duplicates of real images fill 50% of the shortfall"
    assert "oversample-half (duplicates of real images for half the shortfall)" in condition_help()
    assert real_only(["baseline", "gan", "oversample-half"]) == ["baseline", "oversample-half"]
    validate_spec(spec(conditions=["baseline", "oversample-half"]), None)  # real-only: no generator needed
    prepared = prepare_data(planted, spec())
    synthetic, duplicates = condition_amounts(prepared, cs)
    assert duplicates == {c: share(0.5, n) for c, n in prepared.wanted.items()} and not any(synthetic.values())
    table_entry = compare.condition_table(spec(conditions=["oversample-half"]))["oversample-half"]
    assert table_entry == {
        "about": describe("oversample-half", cs),
        "synthetic": 0.0,
        "max_ratio": 0.0,
        "duplicates": 0.5,
        "train": {},
    }


def test_every_entry_says_what_it_does_and_the_cli_help_lists_it():
    from augment.compare import CONDITION_HELP, CONDITIONS, describe

    for name, c in CONDITIONS.items():
        cs = condition_spec(name, spec())
        assert c.real_only == (cs.synthetic == 0) and describe(name, cs), name
        assert name in CONDITION_HELP, name
