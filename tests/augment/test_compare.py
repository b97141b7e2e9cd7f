"""``compare``: model × condition × seed on real test images, REPORT.md, resume, report-folder rules."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import fields, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from augment import compare
from augment.compare import (
    Budget,
    CompareSpec,
    RunClock,
    clean_test,
    condition_amounts,
    condition_data,
    oversample,
    prepare_data,
    recipe,
    run_compare,
    synthetic_pool,
    take_synthetic,
)
from augment.core.dataset import FaceDataset, concat
from augment.core.errors import UserError
from augment.plan import capped, share
from classifier.config import TrainConfig
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")
CONDITIONS = ["baseline", "gan", "oversample", "weighted"]
SEEDS = 2
TINY = Budget("tiny-test", epochs=1, epoch_samples=64, patience=0, widths={"simple-cnn": 0.25}, batch_size=32)


@pytest.fixture(autouse=True)
def _tiny_budget(monkeypatch):
    monkeypatch.setitem(compare.BUDGETS, TINY.name, TINY)


def spec(**kw) -> CompareSpec:
    args = dict(models=["simple-cnn"], conditions=CONDITIONS, seeds=SEEDS, budget=TINY.name, min_prob=0, device="cpu")
    return CompareSpec(**{**args, **kw})


@pytest.fixture(scope="module")
def planted(demo_ds) -> FaceDataset:
    """The demo faces plus one test image that is a copy of a training image."""
    dup = demo_ds.subset(np.flatnonzero(demo_ds.splits == "train")[:1])
    dup.splits[:] = "test"
    return concat([demo_ds, dup], name=demo_ds.name)


@pytest.fixture(scope="module")
def compared(planted, tiny_gan_run, tmp_path_factory):
    """One small comparison (1 model × 4 conditions × 2 seeds), with a spy on what each run is tested on."""
    report = tmp_path_factory.mktemp("cmp") / "report"
    seen: dict[str, list] = {"test": []}
    real_eval = compare._evaluate

    def spy_eval(run_dir, test, *args, **kwargs):
        seen["test"].append(test)
        return real_eval(run_dir, test, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(compare.BUDGETS, TINY.name, TINY)
        mp.setattr(compare, "_evaluate", spy_eval)
        summary = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    return report, summary, seen


def hashes(ds: FaceDataset) -> set[str]:
    return set(ds.pixel_hashes().tolist())


# --------------------------------------------------------------------------- the report
def test_report_has_every_section_and_its_pictures(compared):
    report, summary, _ = compared
    md = (report / "REPORT.md").read_text()
    for heading in ("## Verdict", "## Setup", "## Results", "### simple-cnn", "## Pictures", "## Files"):
        assert heading in md, heading
    order = [md.index(h) for h in ("## Verdict", "## Setup", "## Results", "## Pictures", "## Files")]
    assert order == sorted(order)
    assert "Paired differences against baseline" in md and "| condition | Δ macro-F1 |" in md
    assert "Per-class recall (all classes, minority first):" in md
    classes = list(summary["train_counts"])
    recall_head = next(ln for ln in md.splitlines() if ln.startswith("| condition | disgust"))
    assert set(recall_head.strip("| ").split(" | ")[1:]) == set(classes)
    for cond in CONDITIONS:
        assert re.search(rf"^\| {re.escape(cond)} \| \d\.\d{{3}} ", md, re.M), cond  # a recall row per condition
    for cond in CONDITIONS[1:]:
        diff = r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\] p="
        assert re.search(rf"^\| {re.escape(cond)} \| {diff}", md, re.M), cond  # a paired-difference row
    assert "judge filter off" in md and "None" not in md.split("## Results")[0]
    syn = summary["synthesis"]  # the generator's run, checkpoint and step, as the synthesis used them
    assert f"checkpoint, step {syn['checkpoint_step']:,}, sampling seed {syn['seed']})" in md
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert {"recall_by_condition.png", "confusion_simple-cnn.png", "train_distribution.png"} <= set(pictures)
    assert "synthetic_samples.png" in pictures
    for pic in pictures:
        assert (report / pic).is_file() and (report / pic).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", pic


def test_results_list_every_run(compared):
    report, summary, _ = compared
    saved = json.loads((report / "results.json").read_text())
    runs = saved["runs"]
    assert len(runs) == 8 == len(summary["runs"])
    assert {(r["model"], r["condition"], r["seed"]) for r in runs} == {
        ("simple-cnn", c, s) for c in CONDITIONS for s in range(SEEDS)
    }
    for r in runs:
        assert 0 <= r["macro_f1"] <= 1 and 0 <= r["accuracy"] <= 1
        assert set(r["recall"]) == set(summary["train_counts"])
        assert (report / "runs" / r["model"] / r["condition"] / f"seed{r['seed']}" / "result.json").is_file()
    base = saved["train_counts"]
    added = sum(saved["synthetic_plan"].values())
    assert added > 0
    by = {(r["condition"], r["seed"]): r for r in runs}
    for s in range(SEEDS):
        assert by[("baseline", s)]["train_images"] == sum(base.values()) == by[("weighted", s)]["train_images"]
        assert by[("gan", s)]["train_images"] == by[("oversample", s)]["train_images"] == sum(base.values()) + added
        assert by[("gan", s)]["synthetic_train_images"] == added
        for cond in ("baseline", "oversample", "weighted"):
            assert by[(cond, s)]["synthetic_train_images"] == 0


def test_test_duplicates_of_train_are_removed_and_counted(compared, demo_ds):
    report, summary, seen = compared
    assert summary["test_duplicates_removed"] == 1
    assert summary["test_images"] == int((demo_ds.splits == "test").sum())  # the planted copy is gone
    assert "after removing 1 that duplicate a training image" in (report / "REPORT.md").read_text()
    train_hashes = hashes(demo_ds.split("train"))
    assert len(seen["test"]) == 8
    for test in seen["test"]:
        assert not hashes(test) & train_hashes
        assert len(test) == summary["test_images"] and set(test.splits.tolist()) == {"test"}


def test_clean_test_by_hand(planted, demo_ds):
    test, n = clean_test(planted)
    assert n == 1 and len(test) == int((demo_ds.splits == "test").sum())
    with pytest.raises(UserError, match="test split"):
        clean_test(demo_ds.split("train"))


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
    }
    assert set(compare.CONDITIONS) < set(expected)
    for cond, (n_syn, n_dup) in expected.items():
        r = recipe(cond, spec())
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


def test_every_run_trained_on_the_real_val_with_the_budget(compared):
    report, summary, seen = compared
    configs = sorted((report / "runs").rglob("config.json"))
    assert len(configs) == 8
    for path in configs:
        cfg, cond = json.loads(path.read_text()), path.parts[-3]
        assert cfg["val_fraction"] == 0.0 and cfg["width"] == 0.25 and cfg["epochs"] == 1
        assert cfg["class_weighted"] == (cond == "weighted")
        assert (cfg["synthetic_train_images"] > 0) == (cond == "gan")
        assert cfg["val_counts"] == summary["val_counts"]  # the same real validation images for every run
    for test in seen["test"]:
        assert not test.synthetic.any()


def test_rerun_keeps_finished_runs(compared, planted, tiny_gan_run, monkeypatch):
    import augment.rebalance
    import classifier.train

    report, first, _ = compared
    results = sorted((report / "runs").rglob("result.json"))
    assert len(results) == 8
    stamps = {p: p.stat().st_mtime_ns for p in results}

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(classifier.train, "train_classifier", must_not_run)
    monkeypatch.setattr(augment.rebalance, "synthesize", must_not_run)  # the filtered pool is kept too
    again = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    assert {p: p.stat().st_mtime_ns for p in results} == stamps
    assert again["runs"] == first["runs"]
    assert (report / "REPORT.md").is_file()


def test_a_report_dir_with_other_settings_is_refused(compared, planted, tiny_gan_run, tmp_path):
    report, _, _ = compared
    before = (report / "compare.json").read_text()
    for other in (spec(min_prob=0.5), spec(target="median"), spec(budget="demo")):
        with pytest.raises(UserError, match="holds a comparison with other settings"):
            run_compare(planted, tiny_gan_run, report, other, progress=False)
    assert (report / "compare.json").read_text() == before

    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no comparison"):
        run_compare(planted, tiny_gan_run, stranger, spec(), progress=False)
    assert sorted(p.name for p in stranger.iterdir()) == ["notes.txt"]


def test_real_only_conditions_need_no_generator_and_a_later_one_adds_the_gan_runs(
    planted, tiny_gan_run, tmp_path, monkeypatch
):
    report = tmp_path / "r"
    with pytest.raises(UserError, match=r"--conditions gan uses GAN faces: pass --generator"):
        run_compare(planted, None, report, spec(seeds=1), progress=False)
    assert not report.exists()

    real_only = run_compare(planted, None, report, spec(seeds=1, conditions=["baseline", "oversample"]), progress=False)
    assert [r["condition"] for r in real_only["runs"]] == ["baseline", "oversample"]
    assert real_only["generator_run"] is None and not (report / "synthetic.npz").exists()
    assert "generator: none (real-only conditions)" in (report / "REPORT.md").read_text()
    assert json.loads((report / "compare.json").read_text())["generator_run"] is None
    stamps = {p: p.stat().st_mtime_ns for p in (report / "runs").rglob("result.json")}

    real_run = compare.one_run  # the real-only runs are kept; only the GAN condition trains
    trained = []
    monkeypatch.setattr(compare, "one_run", lambda cmp, key, slot: trained.append(key) or real_run(cmp, key, slot))
    grid3 = spec(seeds=1, conditions=["baseline", "oversample", "gan"])
    both = run_compare(planted, tiny_gan_run, report, grid3, progress=False)
    assert [k[1] for k in trained] == ["gan"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert both["runs"][:2] == real_only["runs"]
    assert json.loads((report / "compare.json").read_text())["generator_step"] is not None

    # once it has a generator, a call without one still reads the folder, and other settings are still refused
    again = run_compare(planted, None, report, spec(seeds=1, conditions=["baseline"]), progress=False)
    assert again["runs"] == real_only["runs"][:1]
    with pytest.raises(UserError, match=r"other settings \(target\)"):
        run_compare(planted, None, report, spec(seeds=1, conditions=["baseline"], target="median"), progress=False)


def test_a_finished_run_trained_otherwise_is_refused_not_kept(planted, tmp_path):
    report = tmp_path / "r"
    run_compare(planted, None, report, spec(seeds=1, conditions=["baseline"]), progress=False)
    result_file = next((report / "runs").rglob("result.json"))
    result = json.loads(result_file.read_text())
    result["config"]["epoch_samples"] = 999  # as if trained under an older budget
    result_file.write_text(json.dumps(result))
    with pytest.raises(UserError, match=r"was trained with other settings \(epoch_samples 999, now 64\)"):
        run_compare(planted, None, report, spec(seeds=1, conditions=["baseline"]), progress=False)


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"models": ["vgg"]}, "--models vgg"),
        ({"conditions": ["baseline", "smote"]}, "--conditions smote"),
        ({"budget": "huge"}, "--budget huge"),
        ({"seeds": 0}, "--seeds"),
        ({"gpus": [0, 1], "nproc": 2}, "either --gpus"),
    ],
)
def test_bad_specs(planted, tiny_gan_run, tmp_path, kw, message):
    with pytest.raises(UserError, match=re.escape(message)):
        run_compare(planted, tiny_gan_run, tmp_path / "r", spec(**kw), progress=False)
    assert not (tmp_path / "r").exists()


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


def test_gpus_entries_count_the_visible_gpus_not_the_machines():
    from augment.compare import child_visible_gpu

    assert child_visible_gpu(1, None) == "1"
    assert child_visible_gpu(0, "4,5") == "4" and child_visible_gpu(1, " 4, 5 ") == "5"
    with pytest.raises(UserError, match="only 2 GPU"):
        child_visible_gpu(2, "4,5")


def _changed(name: str, value):
    """A value of the same type as ``value`` that differs from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 3
    if isinstance(value, str):
        return value + "-x"
    if isinstance(value, list):
        return [*value, "x"]
    raise AssertionError(f"TrainConfig.{name}: teach this test a changed value for {type(value).__name__}")


@pytest.mark.parametrize("gpu, visible, nproc", [(None, None, 4), (1, "4,5", 1)])
def test_a_child_run_trains_with_every_setting_of_its_parent(
    demo_ds, tmp_path, monkeypatch, capsys, gpu, visible, nproc
):
    """compare --nproc / --gpus: the child command is run here, in-process, and must train with every
    TrainConfig field as the parent set it (each one away from its default), the device as plain "cuda"
    (each torchrun rank takes its LOCAL_RANK's GPU, never the parent's cuda:1)."""
    import classifier.train

    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"not read: training is faked")
    special = {"model": "resnet18", "pretrained": str(weights), "device": "cuda:1"}
    defaults = TrainConfig()
    sent = TrainConfig(
        **{f.name: special.get(f.name, _changed(f.name, getattr(defaults, f.name))) for f in fields(TrainConfig)}
    )
    assert all(getattr(sent, f.name) != getattr(defaults, f.name) for f in fields(TrainConfig))
    trained, launched = [], []

    def fake_train(data, run_dir, cfg, progress=True):
        trained.append((data, Path(run_dir), cfg))
        return {}

    def child_in_process(cmd, env):
        launched.append((cmd, env))
        code, _, err = run_cli(capsys, *cmd[cmd.index("augment") + 1 :])
        assert code == 0, err
        return SimpleNamespace(returncode=code)

    monkeypatch.setattr(classifier.train, "train_classifier", fake_train)
    monkeypatch.setattr(compare.subprocess, "run", child_in_process)
    # every field away from its default cannot also be a valid setting (pretrained needs resnet18, which has
    # no width): the rules are tested in test_bad_input.py; here only the hand-over is
    monkeypatch.setattr(TrainConfig, "validate", lambda self: None)
    if visible:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    part = demo_ds.subset(np.arange(8))
    spec = CompareSpec(models=["resnet18"], conditions=["baseline"], seeds=1, nproc=nproc)
    compare._train_subprocess(part, tmp_path / "runs" / "run", sent, spec, gpu)

    [(data, run_dir, got)] = trained
    expected = replace(sent, device="cuda")
    for f in fields(TrainConfig):
        assert getattr(got, f.name) == getattr(expected, f.name), f.name
    assert run_dir == tmp_path / "runs" / "run" and np.array_equal(data.images, part.images)
    [(cmd, env)] = launched
    if gpu is None:
        assert "torch.distributed.run" in cmd and "--nproc_per_node=4" in cmd
    else:
        assert env["CUDA_VISIBLE_DEVICES"] == "5"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == []  # the handed-over files are cleaned up


def test_a_child_config_keeps_a_cpu_device():
    assert compare.child_config(TrainConfig(device="cpu"), None).device == "cpu"
    assert compare.child_config(TrainConfig(device="cuda:0"), None).device == "cuda"
    assert compare.child_config(TrainConfig(device="cpu"), 0).device == "cuda"


def test_train_with_a_config_file(demo_ds, tmp_path, capsys):
    cache = tmp_path / "faces.npz"
    demo_ds.save(cache)
    cfg = TrainConfig(epochs=1, epoch_samples=16, batch_size=8, width=0.25, device="cpu", val_fraction=0.2, seed=4)
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(cfg.to_dict()))
    code, _, err = run_cli(capsys, "train", cache, "--out", tmp_path / "run", "--config", config)
    assert code == 0, err
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert {k: written[k] for k in ("epochs", "epoch_samples", "width", "seed", "val_fraction")} == {
        "epochs": 1,
        "epoch_samples": 16,
        "width": 0.25,
        "seed": 4,
        "val_fraction": 0.2,
    }
    assert (tmp_path / "run" / "model.pt").is_file()


@pytest.mark.parametrize(
    "text, extra, fragments",
    [
        (
            '{"epochs": 1}',
            ["--epochs", "3", "--no-amp"],
            ["gives every training setting", "--epochs", "--amp/--no-amp"],
        ),
        ('{"epoch": 1}', [], ["unknown setting(s) epoch"]),
        ('{"epochs": "1"}', [], ["epochs must be int"]),
        ('{"model": "vgg"}', [], ["--model vgg"]),
        ("[1, 2]", [], ["JSON object"]),
        ("epochs=1", [], ["not a JSON file"]),
    ],
)
def test_train_config_file_errors(tmp_path, capsys, text, extra, fragments):
    config = tmp_path / "cfg.json"
    config.write_text(text)
    code, _, err = run_cli(capsys, "train", tmp_path / "no-data", "--out", tmp_path / "run", "--config", config, *extra)
    assert_one_line_error(code, err, f"--config {config}", *fragments)
    assert not (tmp_path / "run").exists()


def test_budget_help_lists_every_budget():
    import typer

    from augment.cli import app

    command = typer.main.get_command(app).commands["compare"]
    [budget] = [p for p in command.params if p.name == "budget"]
    for b in compare.BUDGETS.values():
        if b.name == TINY.name:  # added by this module's fixture, after the help was made
            continue
        assert b.about and f"{b.name} ({b.about})" in budget.help, b.name


# --------------------------------------------------------------------------- what a report folder is tied to
def test_a_changed_judge_is_refused(planted, tiny_gan_run, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    compare._check_report_dir(report, compare.identity(planted, tiny_gan_run, spec(min_prob=0.3)))
    before = (report / "compare.json").read_text()
    with pytest.raises(UserError, match=r"other settings \(judge\)"):
        run_compare(planted, tiny_gan_run, report, spec(min_prob=0.3, judge=tmp_path / "judge"), progress=False)
    assert (report / "compare.json").read_text() == before
    # with the filter off no judge is used, so naming one changes nothing
    assert compare.identity(planted, tiny_gan_run, spec(judge=tmp_path / "judge"))["judge"] is None


def test_a_generator_trained_further_is_refused(planted, tiny_gan_run, tmp_path):
    from augment.core.rundir import CHECKPOINT, load_checkpoint, save_checkpoint

    gen = tmp_path / "gan"
    shutil.copytree(tiny_gan_run, gen)
    report = tmp_path / "report"
    report.mkdir()
    compare._check_report_dir(report, compare.identity(planted, gen, spec()))
    before = (report / "compare.json").read_text()
    assert json.loads(before)["generator_step"] == load_checkpoint(gen / CHECKPOINT)["step"]
    state = load_checkpoint(gen / CHECKPOINT)
    state["step"] += 5  # the same run folder, trained further
    save_checkpoint(gen, state)
    with pytest.raises(UserError, match=r"other settings \(generator_step\)"):
        run_compare(planted, gen, report, spec(), progress=False)
    assert (report / "compare.json").read_text() == before


def test_headline_classes_are_the_smallest_three_and_the_worst_recognised_other():
    from augment.report import focus_classes

    counts = {"happy": 700, "sad": 480, "fear": 400, "surprise": 310, "angry": 390, "disgust": 40}
    recall = {"happy": 0.8, "sad": 0.3, "fear": 0.05, "surprise": 0.5, "angry": 0.2, "disgust": 0.1}

    def agg() -> dict:
        return {"m": {"baseline": {"recall": {c: (r, 0.0, [r]) for c, r in recall.items()}}}}

    assert focus_classes({"train_counts": counts}, agg()) == ["disgust", "surprise", "angry", "fear"]
    recall["fear"] = 0.9  # the fourth is the worst recognised outside the three smallest
    assert focus_classes({"train_counts": counts}, agg()) == ["disgust", "surprise", "angry", "sad"]
    assert focus_classes({"train_counts": counts}, {}) == ["disgust", "surprise", "angry"]  # no baseline


# --------------------------------------------------------------------------- statistics that hold with few seeds
def _intervals(stats: dict):
    """Every (kind, entry) of results.json's statistics: figures ("figure") and paired differences ("diff")."""
    for conds in stats["models"].values():
        for entry in conds.values():
            for f in ("accuracy", "macro_f1", "balanced_accuracy"):
                yield "figure", entry[f]
            yield from (("figure", e) for e in entry["recall"].values())
            for diffs in entry["vs"].values():
                yield from (("diff", diffs[f]) for f in ("accuracy", "macro_f1", "balanced_accuracy"))
                yield from (("diff", e) for e in diffs["recall"].values())


def test_no_interval_leaves_0_1_and_two_seeds_claim_nothing(compared):
    report, summary, _ = compared
    saved = json.loads((report / "results.json").read_text())
    assert saved["stats"] == summary["stats"] and saved["stats"]["resamples"] == 2000
    entries = list(_intervals(saved["stats"]))
    assert len(entries) == 4 * 11 + 4 * 3 * 11  # 4 conditions × (3 figures + 8 recalls), each against 3 others
    for kind, e in entries:
        if kind == "figure":
            assert 0 <= e["lo"] <= e["mean"] <= e["hi"] <= 1, e
        else:
            assert -1 <= e["lo"] <= e["diff"] <= e["hi"] <= 1, e
            assert e["significant"] is False and e["untested"] == "2 seeds" and e["seeds"] == SEEDS, e
    md = (report / "REPORT.md").read_text()
    results = md.split("## Results")[1].split("## Pictures")[0]
    shown = re.findall(r"([+-]?\d\.\d{3}) \[([+-]?\d\.\d{3}), ([+-]?\d\.\d{3})\]", results)
    # the means, the differences against baseline, and gan's against the best real-only fix
    assert len(shown) == 4 * 6 + 3 * 6 + 1 * 6
    for mean, lo, hi in shown:
        low = -1 if mean.startswith(("+", "-")) or lo.startswith(("+", "-")) else 0
        assert low <= float(lo) <= float(mean) <= float(hi) <= 1
    assert "**✓**" not in md and "**✗**" not in md
    assert results.count("untested: 2 seeds") == 4 * 6
    assert "With 2 seed(s) no difference is tested" in md


def test_each_run_keeps_its_predictions_of_the_test_images(compared):
    from classifier.metrics import classification_metrics

    report, summary, seen = compared
    test = seen["test"][0]
    for r in summary["runs"]:
        with np.load(report / "runs" / r["model"] / r["condition"] / f"seed{r['seed']}" / compare.PREDICTIONS) as f:
            pred, labels = f["pred"], f["labels"]
            assert f["classes"].tolist() == r["classes"] == test.classes
        assert pred.dtype == np.uint8 and len(pred) == summary["test_images"]
        assert np.array_equal(labels, test.labels)
        m = classification_metrics(labels, pred, r["classes"])
        assert (m["accuracy"], m["macro_f1"]) == (r["accuracy"], r["macro_f1"])
        assert m["confusion_matrix"] == r["confusion_matrix"]
        stats = summary["stats"]["models"][r["model"]][r["condition"]]
        assert stats["seeds"] == SEEDS
    base = [r for r in summary["runs"] if r["condition"] == "baseline"]
    assert summary["stats"]["models"]["simple-cnn"]["baseline"]["accuracy"]["mean"] == pytest.approx(
        np.mean([r["accuracy"] for r in base])
    )


def test_runs_of_an_older_report_without_predictions(compared, planted, tiny_gan_run, tmp_path, monkeypatch):
    """Predictions missing: tested again from the run's model; model gone too: rebuilt from the confusion matrix,
    with a note. Nothing is trained again."""
    import augment.rebalance
    import classifier.train

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(classifier.train, "train_classifier", must_not_run)
    monkeypatch.setattr(augment.rebalance, "synthesize", must_not_run)
    source, first, _ = compared
    report = tmp_path / "report"
    shutil.copytree(source, report)
    kept = sorted((report / "runs").rglob(compare.PREDICTIONS))
    assert len(kept) == 8
    for p in kept:
        p.unlink()
    again = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    assert again["stats"] == first["stats"] and again["runs"] == first["runs"]
    assert all(p.is_file() for p in kept)  # kept for the next time

    gone = report / "runs" / "simple-cnn" / "gan" / "seed1"
    (gone / compare.PREDICTIONS).unlink()
    (gone / "model.pt").unlink()
    third = run_compare(planted, tiny_gan_run, report, spec(), progress=False)
    [note] = third["stats"]["notes"]
    assert "simple-cnn/gan/seed1" in note and "confusion matri" in note
    assert note in (report / "REPORT.md").read_text()
    assert third["stats"]["models"]["simple-cnn"]["gan"]["accuracy"]["mean"] == pytest.approx(
        first["stats"]["models"]["simple-cnn"]["gan"]["accuracy"]["mean"]
    )
    for kind, e in _intervals(third["stats"]):
        assert (0 if kind == "figure" else -1) <= e["lo"] <= e["hi"] <= 1


def test_the_verdict_names_the_test_images_of_the_minority_classes(compared, planted):
    from augment.report import aggregate, focus_classes, minority_counts_line

    report, summary, _ = compared
    dups = summary["test_duplicates_by_class"]
    dup_class = planted.classes[planted.labels[-1]]  # the planted copy of a training image
    assert dups == {c: int(c == dup_class) for c in summary["train_counts"]}
    verdict = (report / "REPORT.md").read_text().split("## Setup")[0]
    for c in focus_classes(summary, aggregate(summary)):
        n = summary["test_counts"][c]
        assert f"{c}: {n} test image{'s' if n != 1 else ''}" in verdict, c
    fer = {"test_counts": {"disgust": 80, "fear": 1018}, "test_duplicates_by_class": {"disgust": 31, "fear": 0}}
    line = minority_counts_line(fer, ["disgust", "fear"])
    assert "disgust: 80 test images after removing 31 that duplicate a training face; fear: 1,018 test images." in line


def _summary_of(labels: np.ndarray, preds: dict[str, np.ndarray], classes: list[str]) -> dict:
    """A results.json as compare gathers it, from given predictions (3 seeds)."""
    from augment.stats import BootstrapConfig, compare_conditions
    from classifier.metrics import classification_metrics

    runs = []
    for cond, by_seed in preds.items():
        for seed, pred in enumerate(by_seed):
            m = classification_metrics(labels, pred, classes)
            recall = {c: v["recall"] for c, v in m["per_class"].items()}
            runs.append({"model": "m", "condition": cond, "seed": seed, "recall": recall, **m})
    stats = compare_conditions(labels, preds, classes, BootstrapConfig(resamples=500))
    cfg = BootstrapConfig(resamples=500).__dict__
    counts = {c: int((labels == k).sum()) for k, c in enumerate(classes)}
    return {
        "runs": runs,
        "stats": {**cfg, "notes": [], "models": {"m": stats}},
        "spec": {"conditions": list(preds), "seeds": 3},
        "train_counts": counts,
        "test_counts": counts,
        "test_duplicates_by_class": {},
    }


def _guesses(seed: int):
    """1,500 labels of 4 classes, and ``right(p)``: 3 seeds of predictions, each right with probability p."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=1500)

    def right(p: float) -> np.ndarray:
        return np.stack([np.where(rng.random(len(labels)) < p, labels, (labels + 1) % 4) for _ in range(3)])

    return rng, labels, right


def test_three_seeds_mark_significance_and_zero_variance_in_the_report():
    from augment.report import aggregate, model_results, verdict

    rng, labels, right = _guesses(0)
    classes = ["angry", "disgust", "fear", "happy"]
    base = right(0.4)
    shifted = base.copy()
    for j in range(3):  # exactly 150 more right answers in every seed: the same difference three times
        fix = rng.choice(np.flatnonzero(base[j] != labels), size=150, replace=False)
        shifted[j, fix] = labels[fix]
    summary = _summary_of(labels, {"baseline": base, "gan": right(0.7), "oversample": shifted}, classes)
    agg = aggregate(summary)
    md = "\n".join(model_results(summary, agg, "m"))
    gan_row = next(ln for ln in md.splitlines() if ln.startswith("| gan | +"))
    assert gan_row.count("**✓**") >= 3 and "untested" not in gan_row  # macro-F1, accuracy and recalls
    over_row = next(ln for ln in md.splitlines() if ln.startswith("| oversample | +"))
    accuracy = over_row.split(" | ")[2]  # the same accuracy gain in every seed; the other figures vary
    assert accuracy.startswith("+0.100 [") and accuracy.endswith("untested: zero variance") and "✓" not in accuracy
    text = "\n".join(verdict(summary, agg))
    assert "GAN rebalancing beat baseline (+0." in text and "beat oversample" in text
    assert "no difference is tested" not in text
    assert "- **m**: gan beat the baseline and the best real-only fix, oversample (macro-F1 0." in text


def test_the_verdict_says_when_no_synthetic_strategy_beats_the_best_real_only_fix():
    from augment.report import aggregate, model_results, verdict

    _, labels, right = _guesses(1)
    classes = ["angry", "disgust", "fear", "happy"]
    preds = {"baseline": right(0.4), "oversample": right(0.7), "weighted": right(0.45), "gan+oversample": right(0.55)}
    summary = _summary_of(labels, preds, classes)
    agg = aggregate(summary)
    text = "\n".join(verdict(summary, agg))
    # every synthetic condition is set against the baseline and every real-only fix; the aim is judged once
    assert "`gan+oversample` beat baseline" in text and "was worse than oversample" in text and "weighted (" in text
    assert "no way of adding synthetic faces (gan+oversample) beat the baseline and the best real-only fix, " in text
    best = agg["m"]["oversample"]["macro_f1"][0]
    assert f"oversample (macro-F1 {best:.3f})" in text and "GAN rebalancing" not in text
    md = "\n".join(model_results(summary, agg, "m"))
    assert "against the best real-only fix, oversample:" in md
    row = md.split("best real-only fix, oversample:")[1].split("| gan+oversample | ")[1].splitlines()[0]
    assert row.startswith("-0.") and "**✗**" in row


# --------------------------------------------------------------------------- ways to use synthetic faces
NEW_CONDITIONS = ["baseline", "gan-cap0.5", "gan-w", "gan+oversample", "gan-refit", "refit"]


@pytest.fixture(scope="module")
def screened(planted, tiny_gan_run, tmp_path_factory):
    """The new conditions, one seed, screened on validation: a spy on what is scored, and test must never
    be cleaned (read) at all."""
    report = tmp_path_factory.mktemp("screen") / "report"
    scored = []
    real_eval = compare._evaluate

    def spy_eval(run_dir, test, *args, **kwargs):
        scored.append(test)
        return real_eval(run_dir, test, *args, **kwargs)

    def no_test(*args, **kwargs):
        raise AssertionError("--eval-split val read the test split")

    screen = spec(conditions=NEW_CONDITIONS, seeds=1, eval_split="val", refit_epochs=1, synthetic_weight=0.3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(compare.BUDGETS, TINY.name, TINY)
        mp.setattr(compare, "_evaluate", spy_eval)
        mp.setattr(compare, "clean_test", no_test)
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
    with pytest.raises(UserError, match="eval_split"):
        run_compare(planted, tiny_gan_run, report, replace(screen, eval_split="test"), progress=False)


def test_each_condition_trains_with_its_recipe_and_records_it(screened):
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
            cfg = compare.budget_train_config(model, b, 0, recipe("baseline", spec()), "cpu")
            assert cfg.max_minutes == 0, b.name
            per_epoch = b.epoch_samples_for(model)
            assert b.images_seen(model, 5000) == b.epochs * (per_epoch or 5000), b.name
    gpu = compare.BUDGETS["gpu-small"]
    assert gpu.epoch_samples > 0 and gpu.images_seen("resnet18", 10**6) == gpu.epochs * gpu.epoch_samples


def test_the_cpu_budget_trains_fer_cnn_by_the_recipe():
    cpu = compare.BUDGETS["cpu"]
    assert cpu.default_models() == ["fer-cnn"] and compare.budget_models("cpu") == ["fer-cnn"]
    assert compare.budget_models("cpu-small") == list(compare.DEFAULT_MODELS)
    cfg = compare.budget_train_config("fer-cnn", cpu, 2, recipe("gan-w", spec(synthetic_weight=0.4)), "cpu")
    assert (cfg.model, cfg.width, cfg.batch_size, cfg.lr) == ("fer-cnn", 0.5, 128, 3e-3)
    assert (cfg.optimizer, cfg.weight_decay, cfg.schedule) == ("adamw", 5e-4, "onecycle")
    assert cfg.flip and cfg.affine and cfg.epoch_samples == 0 and cfg.epochs == cpu.epochs
    assert cfg.synthetic_weight == 0.4 and cfg.seed == 2 and not cfg.class_weighted
    # full epochs count real training images: a condition that adds images trains no longer than baseline
    for cond, per_epoch in (("oversample", 25839), ("gan-cap0.5", 25839), ("weighted", 0), ("refit", 0)):
        cfg = compare.budget_train_config("fer-cnn", cpu, 2, recipe(cond, spec()), "cpu", 25839)
        assert cfg.epoch_samples == per_epoch, cond


def test_compare_cli_takes_the_budgets_models_and_the_condition_options(
    demo_dir, tiny_gan_run, tmp_path, capsys, monkeypatch
):
    got = []
    monkeypatch.setattr(compare, "run_compare", lambda data, gen, out, s: got.append(s) or {"runs": []})
    base = ("compare", demo_dir, "--generator", tiny_gan_run, "--out", tmp_path / "r")
    code, _, err = run_cli(
        capsys,
        *base,
        "--budget",
        "cpu",
        "--conditions",
        "gan-cap0.5,gan-w,refit",
        "--eval-split",
        "val",
        "--synthetic-weight",
        "0.3",
        "--refit-epochs",
        "2",
        "--max-ratio",
        "2",
    )
    assert code == 0, err
    s = got[-1]
    assert s.models == ["fer-cnn"] and s.conditions == ["baseline", "gan-cap0.5", "gan-w", "refit"]
    assert (s.eval_split, s.synthetic_weight, s.refit_epochs, s.max_ratio) == ("val", 0.3, 2, 2.0)
    code, _, err = run_cli(capsys, *base, "--budget", "cpu-small")
    assert code == 0, err
    assert got[-1].models == list(compare.DEFAULT_MODELS) and got[-1].eval_split == "test"

    # without --generator the default conditions shrink to the real-only ones; a named GAN condition stays
    # (and run_compare refuses it)
    no_gen = ("compare", demo_dir, "--out", tmp_path / "r2")
    code, out, err = run_cli(capsys, *no_gen)
    assert code == 0, err
    assert got[-1].conditions == ["baseline", "oversample", "weighted"] and "no --generator" in out
    code, _, err = run_cli(capsys, *no_gen, "--conditions", "baseline,gan")
    assert code == 0, err
    assert got[-1].conditions == ["baseline", "gan"]


# --------------------------------------------------------------------------- the time left
def test_the_time_left_is_printed_from_the_durations_of_finished_runs(monkeypatch):
    printed = []
    monkeypatch.setattr(compare.console, "print", lambda text, *a, **k: printed.append(str(text)))
    durations = iter([120.0, 120.0, 30.0])
    monkeypatch.setattr(compare, "one_run", lambda cmp, key, slot: {"seconds": next(durations)})
    cmp = SimpleNamespace(spec=SimpleNamespace(gpus=[]), progress=True)
    todo = [("m", "gan", s) for s in range(3)]
    clock = RunClock([60.0], left=3)  # one run an earlier call finished took 60 s
    compare.run_grid(cmp, todo, finished=1, total=4, clock=clock)
    assert printed == [
        "[bold]run 2/4[/bold]: m · gan · seed 0 (time left: about 3 min (3 run(s) × 60 s))",
        "[bold]run 3/4[/bold]: m · gan · seed 1 (time left: about 3 min (2 run(s) × 90 s))",
        "[bold]run 4/4[/bold]: m · gan · seed 2 (time left: about 2 min (1 run(s) × 100 s))",
    ]
    assert clock.left == 0 and clock.line() is None
    assert RunClock([], left=5).line() is None  # nothing measured yet: no guess
    assert (
        RunClock([3600.0], left=4, parallel=2).line() == "time left: about 2 h 00 min (4 run(s) × 3600 s over 2 GPUs)"
    )


def test_a_rerun_estimates_from_the_durations_its_finished_runs_recorded(compared, planted, tiny_gan_run, monkeypatch):
    report, summary, _ = compared
    seen = []

    def stop(cmp, todo, finished, total, clock):
        seen.append((list(clock.seconds), clock.left))
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "run_grid", stop)
    with pytest.raises(KeyboardInterrupt):
        run_compare(planted, tiny_gan_run, report, spec(seeds=SEEDS + 1), progress=False)
    [(seconds, left)] = seen
    assert seconds == [r["seconds"] for r in summary["runs"]] and all(s > 0 for s in seconds)
    assert left == len(CONDITIONS)  # the third seed of each condition
