"""GAN training on the tiny demo faces: run files, learning, determinism, exact resume (also after a kill)."""

from __future__ import annotations

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

import gan.train as gan_train
from augment.core.atomic import read_jsonl
from augment.core.errors import UserError
from augment.core.runtime import Dist, seed_everything
from gan.checkpoint import training_split
from gan.config import GanConfig
from gan.state import GanState, build_models, new_state
from gan.steps import d_step, ema_step, g_step, noise_batch
from gan.train import train_gan
from tests.conftest import run_cli, tiny_gan_config

pytestmark = pytest.mark.usefixtures("quiet")
ROOT = Path(__file__).resolve().parents[2]


def tiny_cfg(ds, recipe: str = "full", steps: int = 6, **kw) -> GanConfig:
    """The shared tiny config, 6 steps by default, with a metrics line every step."""
    return tiny_gan_config(ds, steps, recipe=recipe, **{"log_every": 1, **kw})


def ckpt(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


# --------------------------------------------------------------------------- one 40-step run, shared
@pytest.fixture(scope="module")
def run40(demo_ds, tmp_path_factory):
    run = tmp_path_factory.mktemp("gan") / "run40"
    cfg = tiny_cfg(demo_ds, steps=40, sample_every=20, checkpoint_every=20)
    summary = train_gan(demo_ds, run, cfg, progress=False)
    return run, cfg, summary


def test_run_files(run40, demo_ds):
    run, cfg, summary = run40
    assert summary["step"] == 40 and summary["steps_this_run"] == 40
    for name in ("checkpoint.pt", "config.json", "run.json", "metrics.jsonl", "losses.png"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*.tmp")), "atomic writes left temp files behind"

    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "gan"
    assert config["classes"] == demo_ds.classes
    assert config["g_width"] == 8 and config["steps"] == 40 and config["loss"] == "hinge"
    # The generator trains on train minus the validation split carved from it (10%, at least one face).
    assert config["val_fraction"] == 0.1 and config["val_counts"]["disgust"] == 1
    for c in ("disgust", "happy"):
        assert config["train_counts"][c] + config["val_counts"][c] == demo_ds.counts("train")[c]
    assert config["train_counts"]["disgust"] == 5 and config["train_counts"]["happy"] == 22
    assert config["data_fingerprint"]

    record = json.loads((run / "run.json").read_text())
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    assert {"numpy", "python"} <= record["versions"].keys()
    assert record["config"]["g_width"] == 8

    metrics = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in metrics] == list(range(1, 41))
    for r in metrics:
        assert {"d_loss", "g_loss", "d_real", "d_fake", "images_per_s"} <= r.keys()
        assert all(np.isfinite(r[k]) for k in ("d_loss", "g_loss", "d_real", "d_fake"))

    samples = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert samples == ["step_000020.png", "step_000040.png"]

    state = ckpt(run)  # weights_only: the checkpoint holds data, not code
    assert state["step"] == 40
    assert state["classes"] == demo_ds.classes
    assert state["g_ema"] is not None
    assert {"g", "d", "opt_g", "opt_d", "generator_kwargs", "config"} <= state.keys()


def test_losses_move_and_generator_learns(run40, demo_ds):
    run, cfg, _ = run40
    metrics = read_jsonl(run / "metrics.jsonl")
    assert len({round(r["d_loss"], 6) for r in metrics}) > 10  # not stuck
    last = metrics[-10:]
    # D tells real from fake on average over the last steps (hinge: real pushed up, fake down).
    assert np.mean([r["d_real"] for r in last]) > np.mean([r["d_fake"] for r in last])

    seed_everything(cfg.seed)
    g0, _ = build_models(cfg, len(demo_ds.classes))
    g1, _ = build_models(cfg, len(demo_ds.classes))
    g1.load_state_dict(ckpt(run)["g"])
    assert differs(g0.state_dict(), g1.state_dict())
    g0.train()
    g1.train()
    z = torch.randn(16, cfg.z_dim, generator=torch.Generator().manual_seed(1))
    y = torch.arange(16) % len(demo_ds.classes)
    with torch.no_grad():
        change = (g1(z, y) - g0(z, y)).abs().mean().item()
    assert change > 0.01, change


# --------------------------------------------------------------------------- the step functions
def tiny_state(ds, run: Path, recipe: str = "full") -> GanState:
    cfg = tiny_cfg(ds, recipe)
    return new_state(cfg, training_split(ds, cfg), Dist(), "cpu", run, {})


def params(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in m.named_parameters()}


def moved(before: dict[str, torch.Tensor], m: torch.nn.Module) -> set[str]:
    return {k for k, v in m.named_parameters() if not torch.equal(before[k], v)}


@pytest.mark.parametrize("recipe", ["full", "classic"])  # one [real | fake] batch; separate BN batches
def test_d_step_trains_only_d_and_g_step_only_g(demo_ds, tmp_path, recipe):
    st = tiny_state(demo_ds, tmp_path, recipe)
    g0, d0 = params(st.g), params(st.d)
    out = d_step(st, 0)
    assert out.keys() == {"d_loss", "d_real", "d_fake", "d_sign"} and all(torch.isfinite(v) for v in out.values())
    # Every D parameter moves; with hinge at init (all logits near 0) the real and fake gradients on the
    # logit's bias cancel exactly, so that one alone may stay.
    assert d0.keys() - moved(d0, st.d) <= ({"fc.bias"} if st.cfg.loss == "hinge" else set())
    assert moved(g0, st.g) == set()
    d1 = params(st.d)
    loss = g_step(st)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert moved(g0, st.g) == g0.keys()
    assert moved(d1, st.d) == set()  # D got gradients from the G step but no update


def test_ema_step_moves_ema_toward_g_by_the_decay(demo_ds, tmp_path):
    st = tiny_state(demo_ds, tmp_path)
    assert st.cfg.ema == 0.999 and st.g_ema is not None
    z, y = noise_batch(st, 0, 5)
    for step, decay in ((0, 0.1), (10**6, 0.999)):  # warm-up (1 + step) / (10 + step), then cfg.ema
        with torch.no_grad():  # G leaves its EMA copy behind: weights shifted, BN statistics updated
            for p in st.g.parameters():
                p.add_(0.5)
            st.g(z, y)
        st.step = step
        before = params(st.g_ema)
        ema_step(st)
        ema = dict(st.g_ema.named_parameters())
        for k, p in st.g.named_parameters():
            torch.testing.assert_close(ema[k], before[k] + (1 - decay) * (p - before[k]), rtol=0, atol=1e-6)
            assert (ema[k] - before[k]).abs().min() > 0.5 * (1 - decay) * 0.9, k
        for b_ema, b in zip(st.g_ema.buffers(), st.g.buffers(), strict=True):
            assert torch.equal(b_ema, b)


# --------------------------------------------------------------------------- determinism and resume
def test_same_seed_same_weights_other_seed_differs(demo_ds, tmp_path):
    train_gan(demo_ds, tmp_path / "a", tiny_cfg(demo_ds, seed=3), progress=False)
    train_gan(demo_ds, tmp_path / "b", tiny_cfg(demo_ds, seed=3), progress=False)
    train_gan(demo_ds, tmp_path / "c", tiny_cfg(demo_ds, seed=4), progress=False)
    a, b, c = ckpt(tmp_path / "a"), ckpt(tmp_path / "b"), ckpt(tmp_path / "c")
    for part in ("g", "d", "g_ema"):
        assert_same_weights(a[part], b[part])
    assert differs(a["g"], c["g"])
    assert differs(a["g_ema"], c["g_ema"])


def test_exact_resume(demo_ds, tmp_path):
    n = 8
    whole = train_gan(demo_ds, tmp_path / "whole", tiny_cfg(demo_ds, steps=n), progress=False)
    first = train_gan(demo_ds, tmp_path / "split", tiny_cfg(demo_ds, steps=n // 2), progress=False)
    second = train_gan(demo_ds, tmp_path / "split", tiny_cfg(demo_ds, steps=n), progress=False)
    assert (whole["step"], first["step"], second["step"]) == (n, n // 2, n)
    assert second["steps_this_run"] == n - n // 2
    a, b = ckpt(tmp_path / "whole"), ckpt(tmp_path / "split")
    assert a["step"] == b["step"] == n
    for part in ("g", "d", "g_ema"):
        assert_same_weights(a[part], b[part])
    steps = [r["step"] for r in read_jsonl(tmp_path / "split" / "metrics.jsonl")]
    assert steps == list(range(1, n + 1))  # both parts, no repeats
    history = json.loads((tmp_path / "split" / "run.json").read_text())["invocations"]
    assert len(history) == 2
    # Asking for fewer steps than done is a no-op, not a retrain.
    again = train_gan(demo_ds, tmp_path / "split", tiny_cfg(demo_ds, steps=n // 2), progress=False)
    assert again["step"] == n
    assert_same_weights(ckpt(tmp_path / "split")["g"], a["g"])


def test_resume_drops_metrics_logged_after_the_checkpoint(demo_ds, tmp_path):
    run = tmp_path / "run"
    train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4), progress=False)
    # What a kill leaves when it strikes between checkpoints: records of steps to be redone, a torn line.
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 5, "d_loss": 9.0, "g_loss": 9.0, "d_real": 0, "d_fake": 0}\n{"step": 6, "d_lo')
    train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=6), progress=False)
    records = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[4]["d_loss"] != 9.0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 6


def test_resume_after_kill(demo_dir, tmp_path, capsys):
    run = tmp_path / "killed"
    env = {**os.environ, "AUGMENT_QUIET": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    opts = "--g-width 8 --d-width 8 --batch-size 16 --checkpoint-every 5 --log-every 5 --device cpu".split()
    args = ["gan-train", str(demo_dir), "--out", str(run), *opts, "--steps"]
    cmd = [sys.executable, "-m", "augment", *args, "100000"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    # Logging every 5 steps: wait for the checkpoint at step 10 so there are metrics to keep.
    step, deadline = 0, time.monotonic() + 300
    try:
        while step < 10:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"no checkpoint at step 10 within 300 s (at {step})"
            if (run / "checkpoint.pt").exists():
                step = int(ckpt(run)["step"])
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed_at = int(ckpt(run)["step"])  # it may have written one more checkpoint before dying
    assert killed_at >= 10 and killed_at % 5 == 0
    before = read_jsonl(run / "metrics.jsonl")
    assert 10 in [r["step"] for r in before]

    target = killed_at + 5
    code, out, err = run_cli(capsys, *args, target)  # the same command, in this process (saves an interpreter start)
    assert code == 0, err
    assert f"trained to step {target}" in out
    assert ckpt(run)["step"] == target
    after = read_jsonl(run / "metrics.jsonl")
    steps = [r["step"] for r in after]
    assert steps[-1] == target
    assert [r for r in before if r["step"] <= killed_at] == after[: len(steps) - 1]  # earlier lines kept
    assert steps == sorted(set(steps))  # steps redone after the kill are not logged twice


# --------------------------------------------------------------------------- resume checks
def test_resume_with_other_identity_is_refused(demo_ds, tmp_path):
    run = tmp_path / "run"
    train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=2), progress=False)
    with pytest.raises(UserError) as e:
        train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4, g_width=16), progress=False)
    assert "g_width: was 8, now 16" in str(e.value) and "new --out" in str(e.value)
    with pytest.raises(UserError) as e:
        train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4, cond_bn=True), progress=False)
    assert "cond_bn" in str(e.value)
    # The discriminator's shape too: these used to pass the check and die in load_state_dict.
    for name, value in (("d_head", "sum"), ("minibatch_std", False), ("d_batchnorm", True)):
        with pytest.raises(UserError) as e:
            train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4, **{name: value}), progress=False)
        assert f"{name}: was {getattr(GanConfig(), name)!r}, now {value!r}" in str(e.value)
    other = demo_ds.subset(np.arange(len(demo_ds)) % 5 != 0)  # same classes, fewer images
    with pytest.raises(UserError) as e:
        train_gan(other, run, tiny_cfg(demo_ds, steps=4), progress=False)
    assert "data_fingerprint" in str(e.value)
    # What optimizer state restores, and what the run trains with, may not change either.
    for name, value in (("lr_g", 1e-4), ("lr_d", 1e-4), ("beta1", 0.5), ("ema", 0.0), ("seed", 1)):
        with pytest.raises(UserError) as e:
            train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4, **{name: value}), progress=False)
        assert f"{name}: was {getattr(tiny_cfg(demo_ds), name)!r}, now {value!r}" in str(e.value)
    assert ckpt(run)["step"] == 2  # nothing was touched
    assert len(json.loads((run / "run.json").read_text())["invocations"]) == 1
    # The step target and the logging cadence may change.
    cadence = {"log_every": 2, "sample_every": 3, "checkpoint_every": 3, "max_minutes": 5.0}
    assert train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=3, **cadence), progress=False)["step"] == 3


def test_config_keeps_what_the_run_trains_with_and_run_json_what_changed(demo_ds, tmp_path):
    run = tmp_path / "run"
    train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4), progress=False)
    train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=6, log_every=2), progress=False)
    config = json.loads((run / "config.json").read_text())
    assert (config["steps"], config["log_every"]) == (6, 2)
    assert ckpt(run)["config"] == {k: v for k, v in config.items() if k != "kind"}
    runs = json.loads((run / "run.json").read_text())["invocations"]
    assert [(r["resumed"], r["changed"]) for r in runs] == [
        (False, {}),
        (True, {"steps": {"was": 4, "now": 6}, "log_every": {"was": 1, "now": 2}}),
    ]
    # A rerun with a lower target trains nothing, so it records nothing: config.json keeps steps 6.
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=2), progress=False)["step"] == 6
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_run_folder_without_checkpoint_starts_again(demo_ds, tmp_path, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as m:  # a crash before the first checkpoint (out of memory, say)
        m.setattr(gan_train, "g_step", lambda st: (_ for _ in ()).throw(RuntimeError("out of memory")))
        with pytest.raises(RuntimeError, match="out of memory"):
            train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4, batch_size=32), progress=False)
    assert (run / "config.json").is_file() and not (run / "checkpoint.pt").exists()
    # Other settings are fine: there is nothing to resume, so nothing to protect.
    assert train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4), progress=False)["step"] == 4
    assert json.loads((run / "config.json").read_text())["batch_size"] == 16
    last = json.loads((run / "run.json").read_text())["invocations"][-1]
    assert last["resumed"] is False and last["changed"]["batch_size"] == {"was": 32, "now": 16}
