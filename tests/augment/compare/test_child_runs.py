"""Runs handed to other processes (--gpus, --nproc): the GPU a child sees, the TrainConfig it trains with
(read back through ``classifier.config.read_train_config``), and the time left printed as runs finish."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from augment import compare
from augment.compare import CompareSpec, RunClock, scheduler
from augment.core.errors import UserError
from classifier.config import TrainConfig
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")


def test_gpus_entries_count_the_visible_gpus_not_the_machines():
    assert scheduler.child_visible_gpu(1, None) == "1"
    assert scheduler.child_visible_gpu(0, "4,5") == "4" and scheduler.child_visible_gpu(1, " 4, 5 ") == "5"
    with pytest.raises(UserError, match="only 2 GPU"):
        scheduler.child_visible_gpu(2, "4,5")


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
    monkeypatch.setattr(scheduler.subprocess, "run", child_in_process)
    # every field away from its default cannot also be a valid setting (pretrained needs resnet18, which has
    # no width): the rules are tested in test_bad_input.py; here only the hand-over is
    monkeypatch.setattr(TrainConfig, "validate", lambda self: None)
    if visible:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    part = demo_ds.subset(np.arange(8))
    spec = CompareSpec(models=["resnet18"], conditions=["baseline"], seeds=1, nproc=nproc)
    scheduler.train_subprocess(part, tmp_path / "runs" / "run", sent, spec, gpu)

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


# --------------------------------------------------------------------------- the time left
def test_the_time_left_is_printed_from_the_durations_of_finished_runs(monkeypatch):
    printed = []
    monkeypatch.setattr(scheduler.console, "print", lambda text, *a, **k: printed.append(str(text)))
    durations = iter([120.0, 120.0, 30.0])
    monkeypatch.setattr(scheduler, "one_run", lambda cmp, key, slot: {"seconds": next(durations)})
    cmp = SimpleNamespace(spec=SimpleNamespace(gpus=[]), progress=True)
    todo = [("m", "gan", s) for s in range(3)]
    clock = RunClock.for_grid({("m", "baseline", 0): {"seconds": 60.0}}, todo, 1)  # an earlier call's run: 60 s
    scheduler.run_grid(cmp, todo, finished=1, total=4, clock=clock)
    assert printed == [
        "[bold]run 2/4[/bold]: m · gan · seed 0 (time left: about 3 min (3 m run(s) × 60 s))",
        "[bold]run 3/4[/bold]: m · gan · seed 1 (time left: about 3 min (2 m run(s) × 90 s))",
        "[bold]run 4/4[/bold]: m · gan · seed 2 (time left: about 2 min (1 m run(s) × 100 s))",
    ]
    assert clock.left == {"m": 0} and clock.line() is None
    assert RunClock({}, {"m": 5}).line() is None  # nothing measured yet: no guess
    assert RunClock({"m": [3600.0]}, {"m": 4}, parallel=2).line() == (
        "time left: about 2 h 00 min (4 m run(s) × 3600 s over 2 GPUs)"
    )


def test_the_time_left_counts_each_model_at_its_own_speed():
    """Mixed models: each at its own mean duration; one with no finished run is named, not guessed."""
    done = {("fast", "baseline", 0): {"seconds": 60.0}, ("slow", "baseline", 0): {"seconds": 600.0}}
    todo = [(m, "oversample", s) for m in ("fast", "slow", "new") for s in range(2)]
    clock = RunClock.for_grid(done, todo, 1)
    assert clock.line() == (
        "time left: about 22 min (2 fast run(s) × 60 s, 2 slow run(s) × 600 s); and new, with no finished run yet"
    )
    clock.finished("new", 300.0)
    clock.finished("new", 300.0)
    assert clock.line() == "time left: about 22 min (2 fast run(s) × 60 s, 2 slow run(s) × 600 s)"


def test_a_child_reads_its_config_through_the_classifier_layer(tmp_path):
    """``augment train --config`` reads the file compare writes with ``classifier.config.read_train_config``:
    every field back as written, the ones left out at their defaults."""
    from classifier.config import read_train_config

    sent = scheduler.child_config(TrainConfig(epochs=2, lr=0.01, class_weighted=True, device="cuda:1"), None)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(sent.to_dict()))
    assert read_train_config(path) == sent
    path.write_text('{"epochs": 2, "lr": 1}')  # an int stands for a float
    assert read_train_config(path) == replace(TrainConfig(), epochs=2, lr=1.0)
    assert "read_train_config" not in vars(compare)  # the child never climbs back up to the compare layer
