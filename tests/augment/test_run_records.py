"""Records that lie and interrupts, through the CLI: a resume that changes a learning rate is
refused, config.json keeps what the run trains with, bad options write nothing and a folder without a
checkpoint starts again, a broken model.pt is repaired or reported, Ctrl-C says where it stopped, and
the temp files of a kill are cleaned by the next run."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import classifier.epoch as clf_epoch
import classifier.validation as clf_validation
import gan.train as gan_train
from classifier.data import AugmentedBatches
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")

GAN = ("--g-width", 8, "--d-width", 8, "--batch-size", 16, "--device", "cpu", "--log-every", 1)
GAN += ("--checkpoint-every", 1000, "--sample-every", 1000)
CLF = ("--model", "simple-cnn", "--width", 0.25, "--batch-size", 16, "--device", "cpu", "--size", 24)


def gan_args(data: Path, run: Path, *extra) -> list:
    return ["gan-train", data, "--out", run, *GAN, *extra]


def clf_args(data: Path, run: Path, *extra) -> list:
    return ["train", data, "--out", run, *CLF, *extra]


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes: what a refused command must leave as it was."""
    if not root.exists():
        return {}
    files = (p for p in root.rglob("*") if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def last_epoch_not_best(monkeypatch):
    """Selection that sees no improvement after epoch 1: the last epoch is not the best one."""
    real = clf_validation.select
    calls = [0]

    def select(state, score, patience):
        calls[0] += 1
        return real(state, score if calls[0] == 1 else -1.0, patience)

    monkeypatch.setattr(clf_validation, "select", select)


# --------------------------------------------------------------------------- bad commands: one line, nothing written
def _prior_gan(capsys, data, run, monkeypatch):
    assert run_cli(capsys, *gan_args(data, run, "--steps", 2))[0] == 0


def _prior_clf(capsys, data, run, monkeypatch):
    assert run_cli(capsys, *clf_args(data, run, "--epochs", 1))[0] == 0


def _prior_clf_truncated_model(capsys, data, run, monkeypatch):
    with monkeypatch.context() as m:
        last_epoch_not_best(m)
        assert run_cli(capsys, *clf_args(data, run, "--epochs", 2))[0] == 0
    truncate(run / "model.pt")


BAD_COMMANDS = {
    # a resume that changes a learning rate, which the optimizer state would silently restore
    "resume-lr-g": (_prior_gan, lambda d, r: gan_args(d, r, "--steps", 4, "--lr-g", 1e-4), ["lr_g: was 0.0002"]),
    "resume-lr-d": (_prior_gan, lambda d, r: gan_args(d, r, "--steps", 4, "--lr-d", 1e-3), ["lr_d: was 0.0002"]),
    "resume-lr": (_prior_clf, lambda d, r: clf_args(d, r, "--epochs", 2, "--lr", 0.01), ["lr: was 0.001"]),
    # a mistyped option is refused before the run folder exists
    "train-batch-size-0": (None, lambda d, r: clf_args(d, r, "--epochs", 1, "--batch-size", 0), ["--batch-size 0"]),
    "gan-batch-size-0": (None, lambda d, r: gan_args(d, r, "--steps", 2, "--batch-size", 0), ["--batch-size"]),
    "gan-log-every-0": (None, lambda d, r: gan_args(d, r, "--steps", 2, "--log-every", 0), ["--log-every 0"]),
    # model.pt is broken and the checkpoint is not the best epoch's: reported, not accepted
    "truncated-model": (
        _prior_clf_truncated_model,
        lambda d, r: clf_args(d, r, "--epochs", 2),
        ["model.pt", "--epochs above 2"],
    ),
}


@pytest.mark.parametrize("case", BAD_COMMANDS, ids=list(BAD_COMMANDS))
def test_bad_command_gives_one_line_and_writes_nothing(case, demo_dir, tmp_path, capsys, monkeypatch):
    prior, args, fragments = BAD_COMMANDS[case]
    run = tmp_path / "run"
    if prior is not None:
        prior(capsys, demo_dir, run, monkeypatch)
    before = tree(tmp_path)
    code, _, err = run_cli(capsys, *args(demo_dir, run))
    assert_one_line_error(code, err, *fragments)
    assert tree(tmp_path) == before
    assert prior is not None or not run.exists()


# --------------------------------------------------------------------------- what config.json and run.json say
def test_config_json_keeps_the_step_target_the_run_trained_to(demo_dir, tmp_path, capsys):
    run = tmp_path / "run"
    for steps in (2, 4, 2):  # the last one has nothing to do
        code, out, err = run_cli(capsys, *gan_args(demo_dir, run, "--steps", steps))
        assert code == 0, err
    assert "already trained to step 4" in err or "trained to step 4" in out
    config = json.loads((run / "config.json").read_text())
    assert config["steps"] == 4 == torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    runs = json.loads((run / "run.json").read_text())["invocations"]
    assert [r["changed"] for r in runs] == [{}, {"steps": {"was": 2, "now": 4}}]


# --------------------------------------------------------------------------- a start that never checkpointed
@pytest.mark.parametrize("command", ["gan-train", "train"])
def test_a_folder_without_checkpoint_takes_the_corrected_command(command, demo_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    args = gan_args if command == "gan-train" else clf_args
    target = ("--steps", 2) if command == "gan-train" else ("--epochs", 1)
    with monkeypatch.context() as m:  # the first try dies in its first step (out of memory, say)
        boom = RuntimeError("out of memory")
        m.setattr(gan_train, "g_step", lambda *a: (_ for _ in ()).throw(boom))
        m.setattr(clf_epoch, "train_step", lambda *a, **k: (_ for _ in ()).throw(boom))
        with pytest.raises(RuntimeError, match="out of memory"):
            run_cli(capsys, *args(demo_dir, run, *target, "--seed", 7))
    assert (run / "config.json").exists() and not (run / "checkpoint.pt").exists()
    code, _, err = run_cli(capsys, *args(demo_dir, run, *target))  # another seed: accepted
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["seed"] == 0
    assert (run / "checkpoint.pt").exists()


# --------------------------------------------------------------------------- verify what is reported
def test_truncated_model_is_rebuilt_from_the_checkpoint(demo_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, *clf_args(demo_dir, run, "--epochs", 1))[0] == 0
    good = torch.load(run / "model.pt", weights_only=True)
    truncate(run / "model.pt")
    code, out, err = run_cli(capsys, *clf_args(demo_dir, run, "--epochs", 1))
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning:") and "rebuilt" in lines[0] and "model.pt" in lines[0]
    assert "best epoch 1" in out
    rebuilt = torch.load(run / "model.pt", weights_only=True)
    assert rebuilt["epoch"] == good["epoch"] and rebuilt["val"] == good["val"]
    assert all(torch.equal(rebuilt["model"][k], v) for k, v in good["model"].items())


def test_truncated_model_with_epochs_left_is_selected_again(demo_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        last_epoch_not_best(m)
        assert run_cli(capsys, *clf_args(demo_dir, run, "--epochs", 2))[0] == 0
    truncate(run / "model.pt")
    code, out, err = run_cli(capsys, *clf_args(demo_dir, run, "--epochs", 3))
    assert code == 0, err
    assert "selected again from epoch 3" in err
    assert torch.load(run / "model.pt", weights_only=True)["epoch"] == 3
    assert "best epoch 3" in out  # what model.pt holds, not the lost epoch 1
    assert json.loads((run / "summary.json").read_text())["best_epoch"] == 3


# --------------------------------------------------------------------------- interrupts
def interrupt_gan_at(step: int, real=gan_train.g_step):
    def g_step(st):
        if st.step == step:
            raise KeyboardInterrupt
        return real(st)

    return g_step


def interrupt_batch(n: int, real=AugmentedBatches.__getitem__):
    calls = [0]

    def getitem(self, idx):
        calls[0] += 1
        if calls[0] == n:
            raise KeyboardInterrupt
        return real(self, idx)

    return getitem


@pytest.mark.parametrize(
    "command,message",
    [
        ("gan-train", "interrupted at step 3; rerun the same command to resume"),
        ("train", "interrupted in epoch 1 after batch 3; rerun the same command to resume"),
    ],
)
def test_ctrl_c_says_where_it_stopped_and_exits_130(command, message, demo_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    args = gan_args(demo_dir, run, "--steps", 5) if command == "gan-train" else clf_args(demo_dir, run, "--epochs", 1)
    with monkeypatch.context() as m:
        if command == "gan-train":
            m.setattr(gan_train, "g_step", interrupt_gan_at(3))
        else:
            m.setattr(AugmentedBatches, "__getitem__", interrupt_batch(4))
        code, _, err = run_cli(capsys, *args)
    assert code == 130
    assert err.strip().splitlines() == [message]
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3 if command == "gan-train" else (ckpt["epoch"], ckpt["batch"]) == (0, 3)
    code, _, err = run_cli(capsys, *args)  # the same command resumes and finishes
    assert code == 0, err


@pytest.mark.parametrize("command", ["gan-train", "train"])
def test_next_run_removes_the_temp_files_of_a_kill(command, demo_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = gan_args(demo_dir, run, "--steps", 2) if command == "gan-train" else clf_args(demo_dir, run, "--epochs", 1)
    assert run_cli(capsys, *args)[0] == 0
    # What a kill in the middle of atomic writes leaves, and files that only look alike.
    stale = [run / ".checkpoint.pt.k2j4h5g6.tmp", run / "sub" / ".step_000002.png.a_b1c2d3.tmp"]
    kept = [run / "sub" / "notes.tmp", run / ".tmp", run / "sub" / ".x.tmp"]
    for p in stale + kept:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"half")
    code, _, err = run_cli(capsys, *args)  # the same command: nothing left to train, temps cleaned all the same
    assert code == 0, err
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    shutil.rmtree(run / "sub")
