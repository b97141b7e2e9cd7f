"""``compare``'s grid: REPORT.md and results.json of one small comparison, resume, what a report folder is
tied to, and the settings compare refuses."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from augment.compare import check_report_dir, clean_test, identity, run_compare, scheduler
from augment.compare import run as run_module
from augment.core.errors import UserError
from tests.augment.compare.helpers import CONDITIONS, SEEDS, hashes, spec

pytestmark = pytest.mark.usefixtures("quiet")


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

    real_run = scheduler.one_run  # the real-only runs are kept; only the GAN condition trains
    trained = []
    monkeypatch.setattr(scheduler, "one_run", lambda cmp, key, slot: trained.append(key) or real_run(cmp, key, slot))
    grid3 = spec(seeds=1, conditions=["baseline", "oversample", "gan"])
    both = run_compare(planted, tiny_gan_run, report, grid3, progress=False)
    assert [k[1] for k in trained] == ["gan"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert both["runs"][:2] == real_only["runs"]
    assert json.loads((report / "compare.json").read_text())["generator_step"] is not None

    # once it has a generator, a call without one still reads the folder, and other settings are still refused
    again = run_compare(planted, None, report, spec(seeds=1, conditions=["baseline"]), progress=False)
    assert again["runs"] == real_only["runs"][:1]
    with pytest.raises(UserError, match=r'other settings \(--target was "max", now "median"\); use a new --out'):
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


# --------------------------------------------------------------------------- what a report folder is tied to
def test_a_changed_judge_is_refused(planted, tiny_gan_run, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    check_report_dir(report, identity(planted, tiny_gan_run, spec(min_prob=0.3)))
    before = (report / "compare.json").read_text()
    with pytest.raises(
        UserError, match=re.escape(f'other settings (--judge was null, now "{(tmp_path / "judge").resolve()}")')
    ):
        run_compare(planted, tiny_gan_run, report, spec(min_prob=0.3, judge=tmp_path / "judge"), progress=False)
    assert (report / "compare.json").read_text() == before
    # with the filter off no judge is used, so naming one changes nothing
    assert identity(planted, tiny_gan_run, spec(judge=tmp_path / "judge"))["judge"] is None


def test_a_generator_trained_further_is_refused(planted, tiny_gan_run, tmp_path):
    from augment.core.rundir import CHECKPOINT, load_checkpoint, save_checkpoint

    gen = tmp_path / "gan"
    shutil.copytree(tiny_gan_run, gen)
    report = tmp_path / "report"
    report.mkdir()
    check_report_dir(report, identity(planted, gen, spec()))
    before = (report / "compare.json").read_text()
    assert json.loads(before)["generator_step"] == load_checkpoint(gen / CHECKPOINT)["step"]
    state = load_checkpoint(gen / CHECKPOINT)
    step = state["step"]
    state["step"] += 5  # the same run folder, trained further
    save_checkpoint(gen, state)
    with pytest.raises(
        UserError, match=re.escape(f"other settings (--generator's checkpoint step was {step}, now {step + 5})")
    ):
        run_compare(planted, gen, report, spec(), progress=False)
    assert (report / "compare.json").read_text() == before


def test_a_rerun_estimates_from_the_durations_its_finished_runs_recorded(compared, planted, tiny_gan_run, monkeypatch):
    report, summary, _ = compared
    seen = []

    def stop(cmp, todo, finished, total, clock):
        seen.append((dict(clock.seconds), dict(clock.left)))
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "run_grid", stop)
    with pytest.raises(KeyboardInterrupt):
        run_compare(planted, tiny_gan_run, report, spec(seeds=SEEDS + 1), progress=False)
    [(seconds, left)] = seen
    [model] = {r["model"] for r in summary["runs"]}
    assert seconds == {model: [r["seconds"] for r in summary["runs"]]} and all(s > 0 for s in seconds[model])
    assert left == {model: len(CONDITIONS)}  # the third seed of each condition
