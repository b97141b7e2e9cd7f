"""Judging a generator by usefulness: KID, precision/recall, the sample confusion matrix, CAS, the validation
split the generator never sees (and test, which nothing here reads), and the best checkpoint."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from augment.core.atomic import read_jsonl
from augment.core.errors import UserError
from augment.core.manifest import read_manifest
from gan.config import EVAL_CAS_SEEDS, EVAL_SEED, GanConfig
from gan.metrics import kernel_inception_distance, precision_recall, sample_confusion
from tests.conftest import TINY_GAN_STEPS, run_cli, tiny_gan_config

pytestmark = pytest.mark.usefixtures("quiet")


def poisoned_test(ds):
    """``ds`` with every test face replaced by noise and every test label moved to another class: a figure
    that does not change under this never read the test split."""
    out = ds.subset(np.arange(len(ds)))
    test = out.splits == "test"
    rng = np.random.default_rng(99)
    out.images[test] = rng.integers(0, 256, out.images[test].shape, dtype=np.uint8)
    out.labels[test] = (out.labels[test] + 1) % len(out.classes)
    return out


def hashes(images: np.ndarray) -> set[bytes]:
    return {im.tobytes() for im in images}


# --------------------------------------------------------------------------- KID, precision/recall, confusion
def test_kid_is_near_zero_for_real_against_real_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(250, 16))  # two draws of one distribution
    same = kernel_inception_distance(a, b)
    shifted = [kernel_inception_distance(a, b + s) for s in (0.5, 1.0, 2.0)]
    assert abs(same) < 0.01 < shifted[0] < shifted[1] < shifted[2]
    # Unbiased: small draws still centre on 0 (the Fréchet distance of the same draws does not).
    small = [kernel_inception_distance(rng.normal(size=(20, 16)), rng.normal(size=(20, 16))) for _ in range(30)]
    assert abs(np.mean(small)) < 0.02 and min(small) < 0 < max(small)
    # Sets larger than a subset are scored on subsets: still near 0 for real against real.
    big = kernel_inception_distance(rng.normal(size=(500, 16)), rng.normal(size=(400, 16)), subset=100, subsets=20)
    assert abs(big) < 0.02
    assert kernel_inception_distance(a[:1], b) is None


def test_kid_by_hand_on_two_points_each():
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [2.0, 0.0]])

    def k(p, q):
        return (np.dot(p, q) / 2 + 1) ** 3

    want = 2 * k(x[0], x[1]) / 2 + 2 * k(y[0], y[1]) / 2 - 2 * np.mean([k(p, q) for p in x for q in y])
    assert kernel_inception_distance(x, y) == pytest.approx(want)


def test_recall_falls_for_a_collapsed_generator_precision_for_an_off_target_one():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(200, 8))
    good = precision_recall(real, rng.normal(size=(200, 8)))
    collapsed = precision_recall(real, np.repeat(real[:2], 100, axis=0) + rng.normal(0, 1e-3, (200, 8)))
    off = precision_recall(real, rng.normal(4.0, 1.0, size=(200, 8)))
    assert good["precision"] > 0.6 and good["recall"] > 0.6
    assert collapsed["precision"] == 1.0  # every sample is (nearly) a real face...
    assert collapsed["recall"] < 0.1  # ...but they cover almost none of the real ones
    assert off["precision"] < 0.1
    assert precision_recall(real[:3], real) is None and precision_recall(real, real[:3]) is None  # k = 3 needs 4+


def test_spread_catches_exposure_banding_and_collapse():
    from gan.metrics import exposure_and_spread, mean_pairwise_distance

    rng = np.random.default_rng(0)
    real = rng.integers(60, 200, size=(300, 1, 12, 12)).astype(np.uint8)
    labels = np.zeros(300, dtype=np.int64)
    same = exposure_and_spread(real[:150], labels[:150], real[150:], labels[150:], ["a"])["a"]
    assert 0.7 < same["brightness_ratio"] < 1.4 and 0.9 < same["pairwise_ratio"] < 1.1  # two draws of one set
    banded = np.clip(real[:150].astype(int) + rng.choice([-55, 55], size=(150, 1, 1, 1)), 0, 255).astype(np.uint8)
    assert exposure_and_spread(banded, labels[:150], real[150:], labels[150:], ["a"])["a"]["brightness_ratio"] > 5
    collapsed = np.repeat(real[:1], 150, axis=0)
    out = exposure_and_spread(collapsed, labels[:150], real[150:], labels[150:], ["a"])["a"]
    assert out["pairwise_ratio"] == 0 and out["brightness_ratio"] < 1e-9
    assert mean_pairwise_distance(real[:1]) is None
    pair = np.stack([np.zeros((1, 2, 2)), np.full((1, 2, 2), 10)]).astype(np.uint8)
    assert mean_pairwise_distance(pair) == pytest.approx(10.0)  # RMS over pixels


def test_recall_falls_for_a_collapsed_generator_in_judge_features(tiny_judge_run, demo_ds):
    from classifier.inference import load_classifier
    from gan.validation import judge_features

    judge = load_classifier(tiny_judge_run)
    train = demo_ds.split("train")
    happy = train.images[train.labels == demo_ds.classes.index("happy")]
    real, diverse = happy[:12], happy[12:]
    one_face = np.repeat(happy[12:13], len(diverse), axis=0)  # one prototype face, drawn again and again
    f_real = judge_features(judge, real, "cpu")
    wide = precision_recall(f_real, judge_features(judge, diverse, "cpu"))
    narrow = precision_recall(f_real, judge_features(judge, one_face, "cpu"))
    assert narrow["recall"] < wide["recall"]
    assert narrow["recall"] <= 1 / len(real) + 1e-9  # a single point's ball is a point: it covers nothing much


def test_sample_confusion_counts_intended_against_judged():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.0, 0.3, 0.7], [0.1, 0.6, 0.3]])
    labels = np.array([0, 0, 1, 2, 2])
    assert sample_confusion(probs, labels, 3).tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 1]]


def test_grading_judge_has_no_class_weights_and_the_filter_judge_keeps_them():
    from classifier.judge import JUDGE_KINDS, default_judge_config, grading_judge_config

    grading, filtering = grading_judge_config(5000), default_judge_config(5000)
    assert (grading.class_weighted, grading.balanced_sampler) == (False, False)
    assert filtering.class_weighted is True
    assert (grading.model, grading.epochs, grading.epoch_samples) == (filtering.model, filtering.epochs, 5000)
    assert JUDGE_KINDS["grading"][0] != JUDGE_KINDS["filter"][0]  # kept in different folders


# --------------------------------------------------------------------------- the validation split
def test_the_generator_never_trains_on_the_validation_split(demo_ds, tmp_path):
    from gan.checkpoint import setup
    from gan.validation import real_splits

    cfg = tiny_gan_config(demo_ds, 2)
    st = setup(demo_ds, tmp_path / "run", cfg, progress=False)
    train, val = real_splits(demo_ds, cfg.val_fraction)
    assert len(val) == 14 and val.counts()["disgust"] == 1
    trained_on = hashes(st.images.numpy())
    assert not trained_on & hashes(val.images)  # not one validation face
    assert trained_on == hashes(train.images) and len(st.images) == len(train)
    assert len(st.images) + len(val) == len(demo_ds.split("train"))
    assert not trained_on & hashes(demo_ds.split("test").images)
    # The same faces every time (deterministic), and the judge's training carves the same ones.
    from classifier.state import prepare_splits
    from tests.conftest import tiny_classifier_config

    _, judge_val = prepare_splits(demo_ds, tiny_classifier_config())
    assert hashes(judge_val.images) == hashes(val.images) == hashes(real_splits(demo_ds, 0.1)[1].images)


def test_an_existing_val_split_is_used_as_is(demo_ds):
    from gan.validation import real_splits

    ds = demo_ds.subset(np.arange(len(demo_ds)))
    first = np.flatnonzero(ds.splits == "train")[:5]
    ds.splits[first] = "val"
    train, val = real_splits(ds, 0.1)
    assert hashes(val.images) == hashes(ds.images[first])
    assert len(train) == int((ds.splits == "train").sum())


def test_gan_eval_holds_out_the_faces_gan_train_held_out_for_a_class_subset(demo_ds, tmp_path):
    from gan.evaluate import eval_splits
    from gan.sample import load_generator
    from gan.train import train_gan
    from gan.validation import real_splits, val_fingerprint

    run = tmp_path / "run"
    train_gan(demo_ds, run, tiny_gan_config(demo_ds, 1, classes=["fear", "disgust"]), progress=False)
    g, meta = load_generator(run)
    train, val, notes = eval_splits(demo_ds, meta, g)
    config = json.loads((run / "config.json").read_text())
    assert val_fingerprint(val) == config["val_fingerprint"] and val.counts() == config["val_counts"]
    assert not [n for n in notes if "held out" in n or "validation" in n]  # nothing to say about the split
    # carved on all classes, then the two picked: the faces the judge and an all-class GAN hold out too
    assert hashes(val.images) == hashes(real_splits(demo_ds, 0.1)[1].with_classes(["fear", "disgust"]).images)
    # Other data (a few training faces fewer): not the faces gan-train held out, and gan-eval says so.
    fewer = demo_ds.subset(np.arange(len(demo_ds)) != np.flatnonzero(demo_ds.splits == "train")[30])
    assert any("not the ones gan-train held out" in n for n in eval_splits(fewer, meta, g)[2])


# --------------------------------------------------------------------------- best checkpoint
def selection_cfg(ds, judge: Path, steps: int = 6) -> GanConfig:
    """Six tiny steps scored at steps 3 and 6 by the shared tiny judge."""
    return tiny_gan_config(ds, steps, select_every=3, select_per_class=8, judge=str(judge))


@pytest.fixture(scope="module")
def selected_run(demo_ds, tiny_judge_run, tmp_path_factory):
    from gan.train import train_gan

    run = tmp_path_factory.mktemp("sel") / "run"
    train_gan(demo_ds, run, selection_cfg(demo_ds, tiny_judge_run), progress=False)
    return run


def test_selection_keeps_the_best_checkpoint_and_logs_it(selected_run, demo_ds, tiny_judge_run):
    from gan.sample import BEST, load_generator

    records = [r for r in read_jsonl(selected_run / "metrics.jsonl") if "selection" in r]
    assert [r["step"] for r in records] == [3, 6]
    assert {r["judge"] for r in records} == {str(tiny_judge_run)}  # which judge scored it
    for r in records:
        sel = r["selection"]
        assert sel["seed"] == GanConfig.select_seed != EVAL_SEED and sel["samples_per_class"] == 8
        assert set(sel["per_class"]) == set(demo_ds.classes)
        for v in sel["per_class"].values():
            assert 0 <= v["assignment"] <= 1
            # two validation faces of most classes: too few for k = 3 manifolds, so recall is not measured
            assert v["recall"] is None
        assert sel["score"] == pytest.approx(np.mean([v["assignment"] for v in sel["per_class"].values()]))
    scores = [r["selection"]["score"] for r in records]
    best_step = [3, 6][int(np.argmax(scores))]
    assert [r["best"] for r in records] == [True, scores[1] > scores[0]]
    state = torch.load(selected_run / BEST, map_location="cpu", weights_only=True)
    assert state["step"] == best_step and state["selection"]["score"] == max(scores)
    assert (selected_run / "selection.png").is_file() and (selected_run / "losses.png").is_file()

    g_best, meta_best = load_generator(selected_run)  # best is the default
    _, meta_last = load_generator(selected_run, checkpoint="last")
    assert (meta_best["checkpoint"], meta_best["step"], meta_best["note"]) == ("best", best_step, "")
    assert (meta_last["checkpoint"], meta_last["step"]) == ("last", 6)
    assert all(torch.equal(v, state["g_ema"][k]) for k, v in g_best.state_dict().items())


def test_selection_also_scores_the_last_step():
    from gan.selection import selection_due

    cfg = GanConfig(steps=900, select_every=500)
    assert [s for s in range(1, 901) if selection_due(cfg, s)] == [500, 900]
    assert [s for s in range(1, 1001) if selection_due(GanConfig(steps=1000, select_every=500), s)] == [500, 1000]
    assert not any(selection_due(GanConfig(steps=400, select_every=500), s) for s in range(1, 401))
    assert not any(selection_due(GanConfig(steps=900, select_every=0), s) for s in range(1, 901))


def test_a_run_stopped_by_its_time_budget_is_scored_where_it_stopped(demo_ds, tiny_judge_run, tmp_path, monkeypatch):
    import gan.train as gan_train
    from gan.train import train_gan

    monkeypatch.setattr(gan_train, "out_of_time", lambda st, log, progress: st.step == 2)
    train_gan(demo_ds, tmp_path / "run", selection_cfg(demo_ds, tiny_judge_run), progress=False)
    records = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if "selection" in r]
    assert [r["step"] for r in records] == [2]  # not 3 or 6: the run stopped at 2


def test_selection_resumes_with_its_best_score(selected_run, demo_ds, tiny_judge_run, tmp_path):
    from gan.train import train_gan

    run = shutil.copytree(selected_run, tmp_path / "run")
    best_before = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    train_gan(demo_ds, run, selection_cfg(demo_ds, tiny_judge_run, steps=9), progress=False)
    records = [r for r in read_jsonl(run / "metrics.jsonl") if "selection" in r]
    assert [r["step"] for r in records] == [3, 6, 9]
    best_after = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    if records[2]["selection"]["score"] > best_before["selection"]["score"]:
        assert best_after["step"] == 9 and records[2]["best"]
    else:  # the resumed run compares against the best of the first part, not against nothing
        assert best_after["step"] == best_before["step"] and not records[2]["best"]


@pytest.mark.parametrize(
    ("setting", "value", "option"),
    [
        ("val_fraction", 1.0, "--val-fraction 1"),
        ("val_fraction", -0.1, "--val-fraction -0.1"),
        ("select_every", -1, "--select-every -1"),
        ("select_per_class", 0, "--select-per-class 0"),
        ("select_seed", EVAL_SEED, f"--select-seed {EVAL_SEED}"),
    ],
)
def test_selection_settings_are_checked(setting, value, option):
    cfg = GanConfig(**{setting: value})
    with pytest.raises(UserError, match=option):
        cfg.validate()


def test_a_resume_may_change_the_selection_cadence_not_the_validation_split(
    selected_run, demo_ds, tiny_judge_run, tmp_path
):
    from gan.train import train_gan

    run = shutil.copytree(selected_run, tmp_path / "run")
    cfg = selection_cfg(demo_ds, tiny_judge_run, steps=8)
    with pytest.raises(UserError, match="val_fraction"):
        train_gan(demo_ds, run, replace(cfg, val_fraction=0.2), progress=False)
    train_gan(demo_ds, run, replace(cfg, select_every=4), progress=False)
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl") if "selection" in r] == [3, 6, 8]


def test_selection_and_training_never_read_test(selected_run, demo_ds, tiny_judge_run, tmp_path):
    from gan.train import train_gan

    run = tmp_path / "poisoned"
    train_gan(poisoned_test(demo_ds), run, selection_cfg(demo_ds, tiny_judge_run), progress=False)

    def selection(r):
        return [x for x in read_jsonl(r / "metrics.jsonl") if "selection" in x]

    assert selection(run) == selection(selected_run)
    a = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    b = torch.load(selected_run / "best.pt", map_location="cpu", weights_only=True)
    assert a["step"] == b["step"] and all(torch.equal(a["g_ema"][k], b["g_ema"][k]) for k in a["g_ema"])


def test_selection_trains_the_grading_judge_when_given_none(demo_ds, tmp_path, monkeypatch):
    import classifier.judge
    from classifier.judge import GRADING_JUDGE_DIR
    from gan.train import train_gan
    from tests.conftest import tiny_classifier_config

    # the judge recipe made tiny, class-weighted like the filter judge: the grading one must drop the weights
    monkeypatch.setattr(
        classifier.judge, "default_judge_config", lambda n: tiny_classifier_config(epochs=1, class_weighted=True)
    )
    run = tmp_path / "run"
    train_gan(demo_ds, run, tiny_gan_config(demo_ds, 2, select_every=2, select_per_class=4), progress=False)
    config = json.loads((run / GRADING_JUDGE_DIR / "config.json").read_text())
    assert (config["class_weighted"], config["balanced_sampler"]) == (False, False)
    assert not (run / "judge").exists()  # the filter judge is rebalance's, not trained here
    records = [r for r in read_jsonl(run / "metrics.jsonl") if "selection" in r]
    assert [(r["step"], r["judge"], r["best"]) for r in records] == [(2, str(run / GRADING_JUDGE_DIR), True)]
    assert (run / "best.pt").is_file()


def test_no_validation_split_no_selection(demo_ds, tiny_judge_run, tmp_path):
    from gan.train import train_gan

    run = tmp_path / "run"
    cfg = tiny_gan_config(demo_ds, 2, select_every=1, judge=str(tiny_judge_run), val_fraction=0.0)
    train_gan(demo_ds, run, cfg, progress=False)
    assert json.loads((run / "config.json").read_text())["train_counts"] == demo_ds.counts("train")  # all of train
    assert not (run / "best.pt").exists() and not [r for r in read_jsonl(run / "metrics.jsonl") if "selection" in r]


def test_no_best_checkpoint_falls_back_to_last_with_a_note(tiny_gan_run, tmp_path, capsys):
    from gan.sample import load_generator

    _, meta = load_generator(tiny_gan_run)  # a 10-step run: selection never ran
    assert meta["checkpoint"] == "last" and "no best.pt" in meta["note"] and meta["step"] == TINY_GAN_STEPS
    with pytest.raises(UserError, match="--checkpoint newest: use best or last"):
        load_generator(tiny_gan_run, checkpoint="newest")
    out = tmp_path / "gen"
    code, stdout, err = run_cli(capsys, "generate", tiny_gan_run, "--per-class", 1, "--out", out, "--classes", "fear")
    assert code == 0, err
    text = " ".join(stdout.split())  # rich wraps long lines
    assert "no best.pt" in text and "last checkpoint, step" in text
    assert json.loads((out / "generate.json").read_text())["checkpoint"] == "last"


def test_generate_records_the_checkpoint_it_used(selected_run, tmp_path, capsys):
    best = torch.load(selected_run / "best.pt", map_location="cpu", weights_only=True)["step"]
    for choice, step in (("best", best), ("last", 6)):
        out = tmp_path / choice
        code, stdout, err = run_cli(
            capsys, "generate", selected_run, "--per-class", 1, "--out", out, "--checkpoint", choice
        )
        assert code == 0, err
        summary = json.loads((out / "generate.json").read_text())
        assert (summary["checkpoint"], summary["checkpoint_step"]) == (choice, step)
        assert f"{choice} checkpoint, step {step}" in " ".join(stdout.split())
        assert {r["checkpoint_step"] for r in read_manifest(out)} == {str(step)}


# --------------------------------------------------------------------------- gan-eval
@pytest.fixture(scope="module")
def evaluated(selected_run, tiny_judge_run, demo_ds, tmp_path_factory):
    from gan.evaluate import evaluate_gan

    hub = tmp_path_factory.mktemp("hub")
    run = shutil.copytree(selected_run, tmp_path_factory.mktemp("ev") / "run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "get_dir", lambda: str(hub))
        report = evaluate_gan(run, demo_ds, judge_dir=tiny_judge_run, per_class=8, progress=False)
    return run, report


def test_gan_eval_reports_usefulness_per_class(evaluated, demo_ds, tiny_judge_run):
    from gan.validation import real_splits, val_fingerprint

    run, report = evaluated
    classes = demo_ds.classes
    for name in ("metrics.json", "judge.png", "confusion.png", "usefulness.png", "nearest.png"):
        assert (run / "eval" / name).is_file(), name
    saved = json.loads((run / "eval" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(report))
    best = torch.load(run / "best.pt", map_location="cpu", weights_only=True)["step"]
    assert (saved["checkpoint"], saved["checkpoint_step"], saved["seed"]) == ("best", best, EVAL_SEED)

    judge = saved["judge"]
    assert judge["run"] == str(tiny_judge_run) and judge["class_weighted"] is False
    assert judge["leans_to_small_classes"] is False
    cm = np.array(judge["sample_confusion"])
    assert cm.shape == (8, 8) and (cm.sum(1) == 8).all() and judge["classes"] == classes
    assert np.diag(cm).tolist() == [round(8 * judge["sample_assignment"][c]) for c in classes]

    cas = saved["cas"]
    assert cas["train_per_class"] == 8 and cas["val_counts"] == real_splits(demo_ds, 0.1)[1].counts()
    assert saved["splits"]["val_fingerprint"] == val_fingerprint(real_splits(demo_ds, 0.1)[1])
    for c in classes:
        v = cas["per_class"][c]
        assert 0 <= v["synthetic_recall"] <= 1 and 0 <= v["real_recall"] <= 1
        assert v["ratio"] == (v["synthetic_recall"] / v["real_recall"] if v["real_recall"] else None)
    assert 0 <= cas["synthetic_macro_f1"] <= 1 and 0 <= cas["real_macro_f1"] <= 1
    assert set(saved["kid"]["per_class"]) == set(classes) and "judge" in saved["kid"]["space"]
    assert all(np.isfinite(v) for v in saved["kid"]["per_class"].values())
    assert set(saved["frechet"]["per_class"]) == set(classes) and "not FID" in saved["frechet"]["space"]
    assert "validation" in saved["precision_recall"]["reference"]
    assert set(saved["usefulness"]) == set(classes)
    for c, u in saved["usefulness"].items():
        assert u["assignment"] == judge["sample_assignment"][c] and u["cas_ratio"] == cas["per_class"][c]["ratio"]
        spread = saved["spread"]["per_class"][c]
        assert u["brightness_ratio"] == pytest.approx(spread["brightness_std"] / spread["real_brightness_std"])
        assert spread["real_pairwise"] > 0 and spread["pairwise"] >= 0


def test_gan_eval_gives_the_cas_over_sample_seeds(evaluated, demo_ds):
    from gan.evaluate import cas_over_seeds, eval_splits, evaluate_gan, sample_seeds
    from gan.sample import generate_images, load_generator

    run, report = evaluated
    over = report["cas_over_seeds"]
    assert over["seeds"] == [EVAL_SEED + i for i in range(EVAL_CAS_SEEDS)] and EVAL_CAS_SEEDS == 3
    f1 = over["synthetic_macro_f1"]
    assert len(f1) == 3 and f1[0] == report["cas"]["synthetic_macro_f1"] and all(0 <= f <= 1 for f in f1)
    assert over["mean"] == pytest.approx(np.mean(f1)) and over["sd"] == pytest.approx(np.std(f1, ddof=1))
    assert over["real_macro_f1"] == report["cas"]["real_macro_f1"]
    # a seed's CAS is its samples': the same seed again gives the first seed's figure, by the shorter path
    g, meta = load_generator(run, checkpoint="best")
    _, val, _ = eval_splits(demo_ds, meta, g)
    labels = np.repeat(np.arange(len(meta["classes"])), 8)
    draw = lambda s: generate_images(g, labels, seed=s)  # noqa: E731
    again = cas_over_seeds(draw, labels, val, report["cas"], [EVAL_SEED, EVAL_SEED], "cpu")
    assert again["synthetic_macro_f1"] == [f1[0], f1[0]] and again["sd"] == 0
    # the selection seed is never one of them, and at least one seed is asked for
    select = meta["config"]["select_seed"]
    assert sample_seeds(select - 1, 3, meta) == [select - 1, select + 1, select + 2]
    with pytest.raises(UserError, match="--cas-seeds 0"):
        evaluate_gan(run, demo_ds, per_class=2, progress=False, cas_seeds=0)


def test_gan_eval_cas_never_reads_test(evaluated, demo_ds, tiny_judge_run, empty_hub, tmp_path):
    from gan.evaluate import evaluate_gan

    run, report = evaluated
    again = shutil.copytree(run, tmp_path / "run")
    poisoned = evaluate_gan(again, poisoned_test(demo_ds), judge_dir=tiny_judge_run, per_class=8, progress=False)
    for part in ("cas", "precision_recall", "kid", "frechet", "splits"):
        assert poisoned[part] == report[part], part
    # the judge's real test recall does read test (a report, nothing is chosen on it): the poison shows there
    assert poisoned["judge"]["real_test_recall"] != report["judge"]["real_test_recall"]


def test_gan_eval_refuses_the_selection_seed(selected_run, demo_ds, tiny_judge_run, tmp_path):
    from gan.evaluate import evaluate_gan

    run = shutil.copytree(selected_run, tmp_path / "run")
    with pytest.raises(UserError, match="selection does not grade itself"):
        evaluate_gan(run, demo_ds, judge_dir=tiny_judge_run, per_class=2, seed=GanConfig.select_seed)


def test_cli_gan_eval_with_last_checkpoint(selected_run, demo_dir, tiny_judge_run, empty_hub, tmp_path, capsys):
    run = shutil.copytree(selected_run, tmp_path / "run")
    args = ["gan-eval", run, demo_dir, "--judge", tiny_judge_run, "--per-class", 4, "--device", "cpu"]
    code, stdout, err = run_cli(capsys, *args, "--checkpoint", "last")
    assert code == 0, err
    text = " ".join(stdout.split())
    assert "last checkpoint at step 6" in text and "ratio = CAS / real" in text and "no class weights" in text
    assert f"CAS macro-F1 over {EVAL_CAS_SEEDS} sample seed(s)" in text
    header = next(line for line in stdout.splitlines() if "class" in line and "ratio" in line)
    assert all(col in header for col in ("assign", "CAS", "prec", "recall", "KID", "FD")), header
    assert json.loads((run / "eval" / "metrics.json").read_text())["checkpoint"] == "last"
    code, _, err = run_cli(capsys, *args, "--checkpoint", "final")
    assert code == 2 and "--checkpoint final" in err
