"""The classifier training loop: it learns, writes its files, selects on validation only,
resumes exactly (after an interrupt, a kill, or with more epochs) and refuses bad resumes."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import classifier.validation as validation_mod
from augment.core.atomic import read_jsonl
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from classifier.config import TrainConfig
from classifier.data import AugmentedBatches, PlannedBatchSampler, to_input
from classifier.epoch import train_step
from classifier.models import build_model
from classifier.state import RunState
from classifier.train import train_classifier
from classifier.validation import select
from tests.conftest import tiny_classifier_config

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["happy", "sad"]


def bright_dark(
    n: int = 16, size: int = 16, seed: int = 0, minority: int | None = None, test: str | None = None
) -> FaceDataset:
    """Dark faces are 'happy', bright ones 'sad': a signal any CNN picks up in a few steps.

    ``test`` adds a test split: "noise" (random images, true-looking labels) or "shuffled"
    (bright/dark images with swapped labels), so runs differ only in what they must never see.
    """
    rng = np.random.default_rng(seed)
    m = n if minority is None else minority
    imgs = [rng.integers(0, 90, (n, 1, size, size)), rng.integers(166, 256, (m, 1, size, size))]
    labels = [0] * n + [1] * m
    splits = ["train"] * (n + m)
    if test == "noise":
        imgs.append(rng.integers(0, 256, (6, 1, size, size)))
        labels += [0, 1] * 3
        splits += ["test"] * 6
    elif test == "shuffled":
        imgs += [rng.integers(166, 256, (5, 1, size, size)), rng.integers(0, 90, (5, 1, size, size))]
        labels += [0] * 5 + [1] * 5
        splits += ["test"] * 10
    k = len(labels)
    return FaceDataset(np.concatenate(imgs).astype(np.uint8), labels, splits, ["x"] * k, [""] * k, CLASSES, name="bd")


def cfg(**kw) -> TrainConfig:
    return tiny_classifier_config(**{"batch_size": 8, "size": 16, "val_fraction": 0.25, "lr": 3e-3, "epochs": 2, **kw})


def train(ds: FaceDataset, run: Path, **kw) -> dict:
    return train_classifier(ds, run, cfg(**kw), progress=False)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def history(run: Path, timing: bool = False) -> list[dict]:
    recs = read_jsonl(run / "history.jsonl")
    return recs if timing else [{k: v for k, v in r.items() if k != "seconds"} for r in recs]


@pytest.fixture(autouse=True)
def no_curve_plots(request, monkeypatch):
    """Skip the per-epoch matplotlib figure (most of a tiny run's time) unless a test checks it."""
    if "bd_run" not in request.fixturenames:
        monkeypatch.setattr(validation_mod, "plot_curves", lambda history, path: None)


@pytest.fixture(scope="module")
def bd_run(tmp_path_factory) -> tuple[Path, dict]:
    run = tmp_path_factory.mktemp("bd") / "run"
    summary = train(bright_dark(), run, epochs=4)
    return run, summary


# --------------------------------------------------------------------------- learning and files
def test_a_few_epochs_lower_the_loss_and_separate_the_classes(bd_run):
    run, summary = bd_run
    h = history(run)
    assert [r["epoch"] for r in h] == [1, 2, 3, 4]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert h[-1]["val_acc"] >= 0.9
    assert summary["best_val"]["val_acc"] >= 0.9
    assert summary["epochs_done"] == 4 and summary["early_stopped"] is False


def test_run_folder_holds_every_output(bd_run):
    run, summary = bd_run
    for name in ("model.pt", "checkpoint.pt", "config.json", "run.json", "history.jsonl", "curves.png", "summary.json"):
        assert (run / name).is_file(), name
    best = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert best["classes"] == CLASSES and best["size"] == 16 and best["channels"] == 1
    assert best["model_kwargs"]["name"] == "simple-cnn"
    assert ckpt["epoch"] == 4 and ckpt["batch"] == 0 and {"model", "opt", "sched"} <= ckpt.keys()
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "classifier" and config["model"] == "simple-cnn" and config["classes"] == CLASSES
    record = json.loads((run / "run.json").read_text())
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]  # metadata drops the local "+cu..." tag
    assert record["config"]["data_fingerprint"] == config["data_fingerprint"]
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run / "summary.json").read_text())["best_epoch"] == summary["best_epoch"]


# --------------------------------------------------------------------------- the loop's steps
def test_train_step_updates_the_model_and_reports_the_batch():
    torch.manual_seed(0)
    model = build_model("simple-cnn", num_classes=2, image_size=16, width=0.25)
    model.train()
    criterion = torch.nn.CrossEntropyLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    ds = bright_dark(n=8)
    x, y = to_input(torch.from_numpy(ds.images)), torch.from_numpy(ds.labels)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    reference = copy.deepcopy(model)
    torch.manual_seed(1)  # the same dropout masks in the reference forward pass and in the step
    with torch.no_grad():
        ref_logits = reference(x)
    torch.manual_seed(1)
    stats = train_step(model, criterion, opt, x, y, sched=sched)
    assert stats.n == 16
    assert np.isfinite(stats.loss) and stats.loss == pytest.approx(float(criterion(ref_logits, y)), rel=1e-5)
    assert stats.correct == int((ref_logits.argmax(1) == y).sum())
    unchanged = [k for k, p in model.named_parameters() if torch.equal(p.detach(), before[k])]
    assert unchanged == []  # one AdamW step moves every parameter
    assert sched.last_epoch == 1 and opt.param_groups[0]["lr"] < 3e-3  # the cosine stepped once
    losses = [train_step(model, criterion, opt, x, y).loss for _ in range(15)]
    assert losses[-1] < stats.loss / 2  # repeated steps fit the bright/dark batch


def test_select_keeps_the_strictly_better_score_and_stops_after_patience():
    state = RunState()
    assert select(state, 0.4, patience=2) is True and (state.best, state.bad_epochs, state.stopped) == (0.4, 0, False)
    assert select(state, 0.4, patience=2) is False  # a tie is not an improvement
    assert (state.best, state.bad_epochs, state.stopped) == (0.4, 1, False)
    assert select(state, 0.7, patience=2) is True and (state.best, state.bad_epochs) == (0.7, 0)
    assert select(state, 0.5, patience=2) is False and not state.stopped
    assert select(state, 0.6, patience=2) is False
    assert (state.best, state.bad_epochs, state.stopped) == (0.7, 2, True)
    never = RunState(best=0.9)
    for _ in range(20):
        assert select(never, 0.1, patience=0) is False
    assert never.bad_epochs == 20 and not never.stopped  # patience 0: never stop


# --------------------------------------------------------------------------- validation-only selection
def test_test_split_never_influences_training(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(bright_dark(test="noise"), a, epochs=3)
    train(bright_dark(test="shuffled"), b, epochs=3)
    assert_same_weights(a / "model.pt", b / "model.pt")
    assert_same_weights(a / "checkpoint.pt", b / "checkpoint.pt")
    assert history(a) == history(b)
    fp = [json.loads((r / "config.json").read_text())["data_fingerprint"] for r in (a, b)]
    assert fp[0] == fp[1]


def test_model_file_is_the_best_epoch_on_validation(demo_ds, tmp_path):
    run = tmp_path / "run"
    summary = train_classifier(
        demo_ds,
        run,
        cfg(size=24, batch_size=16, epochs=4, lr=2e-3, val_fraction=0.15, patience=0),
        progress=False,
    )
    h = history(run)
    scores = [r["val_macro_f1"] for r in h]
    best_epoch = h[int(np.argmax(scores))]["epoch"]  # first maximum: later ties do not replace it
    best = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    assert best["epoch"] == best_epoch == summary["best_epoch"]
    assert best["val"]["macro_f1"] == pytest.approx(max(scores))
    running = -1.0
    for r in h:  # 'improved' marks a strictly better validation score
        assert r["improved"] == (r["val_macro_f1"] > running)
        running = max(running, r["val_macro_f1"])


def test_early_stop_when_validation_cannot_improve(tmp_path):
    base = bright_dark()
    # validation: one grey face labelled happy and the same pixels labelled sad. Any model gives
    # both the same class, so val macro-F1 is 1/3 and accuracy 1/2 whatever it learns.
    grey = np.full((2, 1, 16, 16), 128, dtype=np.uint8)
    ds = FaceDataset(
        np.concatenate([base.images, grey]),
        np.concatenate([base.labels, [0, 1]]),
        np.concatenate([base.splits, ["val", "val"]]),
        ["x"] * (len(base) + 2),
        [""] * (len(base) + 2),
        CLASSES,
        name="bd",
    )
    summary = train(ds, tmp_path / "run", epochs=6, patience=1)
    h = history(tmp_path / "run")
    assert summary["early_stopped"] is True
    assert summary["epochs_done"] == len(h) == 2 < 6
    assert [r["val_macro_f1"] for r in h] == pytest.approx([1 / 3, 1 / 3])
    assert [r["improved"] for r in h] == [True, False]
    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["epoch"] == 1
    # rerunning a stopped run does not train on
    again = train(ds, tmp_path / "run", epochs=6, patience=1)
    assert again["epochs_done"] == 2 and len(history(tmp_path / "run")) == 2


# --------------------------------------------------------------------------- exact resume
@pytest.mark.parametrize("schedule", ["none", "plateau"])
def test_more_epochs_on_the_same_folder_continue_exactly(tmp_path, schedule):
    ds = bright_dark()
    train(ds, tmp_path / "once", epochs=2, schedule=schedule)
    train(ds, tmp_path / "twice", epochs=1, schedule=schedule)
    train(ds, tmp_path / "twice", epochs=2, schedule=schedule)
    assert_same_weights(tmp_path / "once" / "checkpoint.pt", tmp_path / "twice" / "checkpoint.pt")
    assert_same_weights(tmp_path / "once" / "model.pt", tmp_path / "twice" / "model.pt")
    assert history(tmp_path / "once") == history(tmp_path / "twice")
    runs = json.loads((tmp_path / "twice" / "run.json").read_text())
    assert len(runs["invocations"]) == 2


def test_more_epochs_stretch_the_cosine_schedule_to_the_new_end(tmp_path):
    # a cosine run of 1 epoch ends at lr 0; extended to 3 it must anneal to the new end, not
    # climb back up the periodic cosine to the full learning rate
    ds = bright_dark()
    train(ds, tmp_path / "run", epochs=1, schedule="cosine")
    train(ds, tmp_path / "run", epochs=3, schedule="cosine")
    lrs = [r["lr"] for r in history(tmp_path / "run")]
    assert len(lrs) == 3
    assert lrs[0] == pytest.approx(0.0, abs=1e-9)
    assert 0 < lrs[1] < 3e-3 / 2
    assert lrs[2] == pytest.approx(0.0, abs=1e-9)


def interrupt_on_call(fn, n: int):
    """``fn``, except that its n-th call raises KeyboardInterrupt (Ctrl-C)."""
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            raise KeyboardInterrupt
        return fn(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("where", ["mid-epoch", "epoch-end"])
def test_interrupted_run_resumes_exactly(tmp_path, monkeypatch, where):
    ds = bright_dark()  # 24 train images: 3 batches of 8 per epoch
    kw = dict(epochs=3, schedule="cosine", checkpoint_every=2)
    train(ds, tmp_path / "ref", **kw)
    with monkeypatch.context() as m:
        if where == "mid-epoch":  # Ctrl-C while fetching the 2nd batch of epoch 2
            m.setattr(AugmentedBatches, "__getitem__", interrupt_on_call(AugmentedBatches.__getitem__, 5))
        else:  # Ctrl-C after epoch 1's history line, before its checkpoint
            m.setattr(validation_mod, "plot_curves", interrupt_on_call(validation_mod.plot_curves, 1))
        with pytest.raises(KeyboardInterrupt):
            train(ds, tmp_path / "cut", **kw)
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["batch"]) == ((1, 1) if where == "mid-epoch" else (0, 2))
    summary = train(ds, tmp_path / "cut", **kw)
    # a resumed run records its whole training time, not only its last part's
    epochs = history(tmp_path / "cut", timing=True)
    assert summary["seconds"] == pytest.approx(sum(r["seconds"] for r in epochs))
    assert len(epochs) == 3 and "invocation_seconds" in summary
    assert_same_weights(tmp_path / "ref" / "checkpoint.pt", tmp_path / "cut" / "checkpoint.pt")
    assert_same_weights(tmp_path / "ref" / "model.pt", tmp_path / "cut" / "model.pt")
    assert history(tmp_path / "ref") == history(tmp_path / "cut")


def _checkpoint_epoch(run: Path) -> int | None:
    try:
        return int(torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # noqa: BLE001 - not written yet
        return None


def test_cli_run_resumes_after_sigkill(demo_dir, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "AUGMENT_QUIET": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "augment", "train", str(demo_dir), "--out", str(run), "--model", "simple-cnn"]
    cmd += ["--width", "0.25", "--batch-size", "8", "--device", "cpu", "--patience", "0"]
    with open(tmp_path / "first.log", "wb") as log:
        proc = subprocess.Popen(cmd + ["--epochs", "50"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 150
            while (_checkpoint_epoch(run) or 0) < 1:
                assert proc.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline, "no checkpoint after 150 s"
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = _checkpoint_epoch(run)
    assert done is not None and done >= 1
    epochs = done + 1
    res = subprocess.run(cmd + ["--epochs", str(epochs)], env=env, cwd=ROOT, capture_output=True, timeout=150)
    assert res.returncode == 0, res.stderr.decode()
    h = history(run)
    assert [r["epoch"] for r in h] == list(range(1, epochs + 1))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_done"] == epochs
    assert _checkpoint_epoch(run) == epochs
    assert len(json.loads((run / "run.json").read_text())["invocations"]) == 2


# --------------------------------------------------------------------------- options and refusals
def test_resume_with_other_model_or_data_is_refused(tmp_path):
    run = tmp_path / "run"
    train(bright_dark(), run, epochs=1)
    with pytest.raises(UserError, match="model"):
        train(bright_dark(), run, epochs=2, model="simple-deep-cnn")
    with pytest.raises(UserError, match="data_fingerprint"):
        train(bright_dark(seed=1), run, epochs=2)
    with pytest.raises(UserError, match="batch_size"):
        train(bright_dark(), run, epochs=2, batch_size=4)
    # The optimizer and schedule state would bring back the old learning rate: refused by name, like
    # every setting the run trains with.
    for name, value in (("lr", 0.01), ("weight_decay", 0.0), ("patience", 3), ("label_smoothing", 0.1)):
        with pytest.raises(UserError, match=f"{name}: was {getattr(cfg(), name)!r}, now {value!r}"):
            train(bright_dark(), run, epochs=2, **{name: value})
    assert len(history(run)) == 1  # refused runs left the run untouched
    assert len(json.loads((run / "run.json").read_text())["invocations"]) == 1
    # The epoch target, the checkpoint cadence and the time budget may change.
    train(bright_dark(), run, epochs=2, checkpoint_every=1, max_minutes=10.0)
    assert len(history(run)) == 2
    changed = json.loads((run / "run.json").read_text())["invocations"][-1]["changed"]
    assert set(changed) == {"epochs", "checkpoint_every", "max_minutes"}
    assert json.loads((run / "config.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(
    "name,value,option",
    [
        ("batch_size", 0, "--batch-size 0"),
        ("epochs", -1, "--epochs -1"),
        ("lr", -1.0, "--lr -1"),
        ("width", 0.0, "--width 0"),
        ("head_width", -1.0, "--head-width -1"),
        ("head_width", 1.0, "--head-width 1"),  # simple-cnn has no MLP head to widen
        ("workers", -1, "--workers -1"),
        ("size", 100000, "--size 100000"),
        ("val_fraction", 1.0, "--val-fraction 1"),
        ("optimizer", "adam", "--optimizer adam"),
        ("pretrained", "missing.pth", "--pretrained missing.pth"),
    ],
)
def test_impossible_settings_are_refused_before_anything_is_written(tmp_path, name, value, option):
    with pytest.raises(UserError) as e:
        train(bright_dark(), tmp_path / "run", **{name: value})
    assert str(e.value).startswith(option)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "options",
    [{"class_weighted": True}, {"balanced_sampler": True}, {"focal_gamma": 2.0, "class_weighted": True}],
    ids=["class-weighted", "balanced-sampler", "focal"],
)
def test_imbalance_options_train(tmp_path, options):
    summary = train(bright_dark(n=20, minority=6), tmp_path / "run", epochs=1, **options)
    h = history(tmp_path / "run")
    assert summary["epochs_done"] == 1 and len(h) == 1
    assert np.isfinite(h[0]["train_loss"]) and h[0]["train_loss"] > 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert all(config[k] == v for k, v in options.items())


def test_input_noise_is_seeded_and_recorded_in_the_model_file(tmp_path):
    """--noise adds Gaussian noise of that deviation to each training face (the same under the same batch
    seed), and model.pt records it for whoever applies the model as trained (a transfer guide)."""
    import torch

    from classifier.data import AugmentedBatches, train_transform

    images = np.full((64, 1, 16, 16), 128, dtype=np.uint8)
    labels = np.zeros(64, dtype=np.int64)
    plain = AugmentedBatches(images, labels, train_transform(False, False))[(5, list(range(64)))][0]
    noisy = AugmentedBatches(images, labels, train_transform(False, False, noise=0.5))
    x, again = noisy[(5, list(range(64)))][0], noisy[(5, list(range(64)))][0]
    assert torch.equal(x, again) and not torch.equal(x, noisy[(6, list(range(64)))][0])
    assert float((x - plain).std()) == pytest.approx(0.5, rel=0.05) and abs(float((x - plain).mean())) < 0.02
    train(bright_dark(n=20, minority=6), tmp_path / "run", epochs=1, noise=0.3)
    assert torch.load(tmp_path / "run" / "model.pt", weights_only=True)["train_noise"] == 0.3


def test_balanced_sampler_draws_classes_equally():
    labels = np.array([0] * 90 + [1] * 10)
    drawn = np.concatenate(
        [labels[idx] for _, idx in PlannedBatchSampler(labels, 10, seed=0, epoch=0, balanced=True, epoch_samples=2000)]
    )
    assert abs(drawn.mean() - 0.5) < 0.05
    plain = np.concatenate([labels[idx] for _, idx in PlannedBatchSampler(labels, 10, seed=0, epoch=0)])
    assert plain.mean() == pytest.approx(0.1)


def test_batch_plan_resumes_mid_epoch():
    labels = np.arange(40) % 4
    full = list(PlannedBatchSampler(labels, 8, seed=3, epoch=2))
    rest = list(PlannedBatchSampler(labels, 8, seed=3, epoch=2, start_batch=2))
    assert rest == full[2:] and len(full) == 5
    assert full != list(PlannedBatchSampler(labels, 8, seed=3, epoch=3))


def test_synthetic_images_in_validation_are_refused(tmp_path):
    ds = bright_dark()
    ds.splits = np.where(np.arange(len(ds)) % 8 == 0, "val", "train").astype("<U5")
    ds.synthetic = np.arange(len(ds)) == 8  # one of the val images
    with pytest.raises(UserError, match="synthetic"):
        train(ds, tmp_path / "run", epochs=1)
    assert not (tmp_path / "run").exists()


def test_synthetic_training_images_stay_out_of_the_carved_validation(tmp_path):
    ds = bright_dark()
    ds.synthetic = np.arange(len(ds)) % 2 == 0  # half of train is "GAN output"
    train(ds, tmp_path / "run", epochs=1)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["synthetic_train_images"] == 16
    assert sum(config["val_counts"].values()) > 0
    assert sum(config["train_counts"].values()) + sum(config["val_counts"].values()) == 32


def test_time_budget_before_the_first_validation_still_leaves_a_model(tmp_path):
    run = tmp_path / "r"
    summary = train(bright_dark(n=32), run, epochs=3, max_minutes=1e-9)  # out of time after the first batch
    assert (run / "model.pt").is_file()
    assert summary["epochs_done"] == 1 and summary["best_epoch"] == 1
    assert len(history(run)) == 1
    # with a validated model on disk, the budget stops mid-epoch again and keeps it resumable
    summary = train(bright_dark(n=32), run, epochs=3, max_minutes=1e-9)
    assert summary["epochs_done"] == 1 and len(history(run)) == 1
