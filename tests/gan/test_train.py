"""GAN training on the tiny demo faces: run files, learning, determinism, exact resume (also after a kill)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import gan.train as gan_train
from augment.cli import main
from augment.core.atomic import read_jsonl
from augment.core.errors import UserError
from augment.core.runtime import Dist, seed_everything
from gan.checkpoint import training_split
from gan.config import ADA_IMAGES, ADA_INTERVAL, GanConfig
from gan.state import GanState, build_models, new_state
from gan.steps import (
    ada_step,
    d_step,
    ema_step,
    g_step,
    lecam_loss,
    mode_seeking_loss,
    noise_batch,
    paired_labels,
    real_batch,
)
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


# --------------------------------------------------------------------------- variants
@pytest.mark.parametrize(
    "recipe,kw",
    [("classic", {}), ("full", {"cond_bn": True}), ("full", {"aux_weight": 0.5}), ("full", {"d_steps": 2})],
    ids=["classic", "cond_bn", "aux", "d_steps2"],
)
def test_variants_train(demo_ds, tmp_path, recipe, kw):
    cfg = tiny_cfg(demo_ds, recipe, steps=3, **kw)
    if recipe == "classic":
        assert (cfg.loss, cfg.conditioning, cfg.spectral_norm, cfg.ema) == ("bce", "concat", False, 0.0)
    summary = train_gan(demo_ds, tmp_path / "run", cfg, progress=False)
    assert summary["step"] == 3
    state = ckpt(tmp_path / "run")
    assert (state["g_ema"] is None) == (recipe == "classic")
    if recipe == "classic":
        assert not any("parametrizations" in k for k in state["d"])  # no spectral norm
    if kw.get("aux_weight"):
        assert any(k.startswith("cls.") for k in state["d"])
    if kw.get("cond_bn"):
        assert any("gamma" in k for k in state["g"])
    metrics = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in metrics] == [1, 2, 3]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in metrics)


def test_class_subset_and_cli_error(demo_ds, tmp_path, capsys):
    cfg = tiny_cfg(demo_ds, steps=2)
    cfg.classes = ["fear", "disgust"]
    train_gan(demo_ds, tmp_path / "sub", cfg, progress=False)
    assert ckpt(tmp_path / "sub")["classes"] == ["fear", "disgust"]  # canonical order, like the dataset
    config = json.loads((tmp_path / "sub" / "config.json").read_text())
    assert config["train_counts"] == {"fear": 22, "disgust": 5}  # the rest is the validation split
    assert config["val_counts"] == {"fear": 2, "disgust": 1}
    with pytest.raises(SystemExit) as e:
        main(["gan-train", str(tmp_path / "nope"), "--out", str(tmp_path / "r"), "--steps", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


@pytest.mark.parametrize(
    "name,value,option",
    [
        ("batch_size", 1, "--batch-size 1"),
        ("log_every", 0, "--log-every 0"),
        ("checkpoint_every", 0, "--checkpoint-every 0"),
        ("sample_every", 0, "--sample-every 0"),
        ("lr_g", -1.0, "--lr-g -1"),
        ("ema", 2.0, "--ema 2"),
        ("aux_weight", -1.0, "--aux-weight -1"),
        ("diffaugment", "colour", "--diffaugment colour"),
        ("color_p", 1.5, "--color-p 1.5"),
        ("ada_target", 1.0, "--ada-target 1"),
        ("lecam_weight", -0.1, "--lecam-weight -0.1"),
        ("cond_ramp", -5, "--cond-ramp -5"),
        ("color_p", 0.25, "--color-p 0.25 acts on DiffAugment's colour ops"),  # with --diffaugment translation
    ],
)
def test_impossible_settings_are_refused_before_anything_is_written(demo_ds, tmp_path, name, value, option):
    extra = {"diffaugment": "translation"} if "colour ops" in option else {}
    with pytest.raises(UserError) as e:
        train_gan(demo_ds, tmp_path / "run", tiny_cfg(demo_ds, **{name: value}, **extra), progress=False)
    assert str(e.value).startswith(option)
    assert not (tmp_path / "run").exists()


def test_the_default_colour_probability_is_moot_without_colour_ops_but_a_chosen_one_is_refused():
    GanConfig(diffaugment="translation").validate()  # color_p at its default (0.5): nothing the user chose is lost
    GanConfig(diffaugment="").validate()
    with pytest.raises(UserError, match="--color-p 1 acts on DiffAugment's colour ops"):
        GanConfig(diffaugment="translation", color_p=1.0).validate()


# --------------------------------------------------------------------------- exposure, LeCam, conditioning
def test_ada_raises_the_colour_probability_while_d_overfits_and_lowers_it_after(demo_ds, tmp_path):
    st = tiny_state(demo_ds, tmp_path)
    st.cfg.ada_target, st.color_p = 0.6, 0.5
    per_move = st.cfg.batch_size * ADA_INTERVAL / ADA_IMAGES
    for _ in range(ADA_INTERVAL):  # D sure of every real face: sign 1 > 0.6
        ada_step(st, torch.tensor(1.0))
    assert st.color_p == pytest.approx(0.5 + per_move)
    for _ in range(3 * ADA_INTERVAL):
        ada_step(st, torch.tensor(0.2))
    assert st.color_p == pytest.approx(0.5 - 2 * per_move)
    st.cfg.ada_target = 0.0  # off: p stays
    ada_step(st, torch.tensor(1.0))
    assert st.color_p == pytest.approx(0.5 - 2 * per_move)


def test_lecam_pulls_only_outputs_past_the_other_sides_average(demo_ds, tmp_path):
    st = tiny_state(demo_ds, tmp_path)
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([-3.0, 0.5])
    st.cfg.lecam_weight = 0.0
    assert lecam_loss(st, real, fake) == 0.0  # off at 0
    st.cfg.lecam_weight, st.lecam_ema = 0.5, [1.0, -2.0]  # averages: D(real) 1, D(fake) -2
    # real above the fake average: (2 + 2)^2 and (-1 + 2)^2; fake below the real average: (1 + 3)^2, (1 - 0.5)^2
    expected = 0.5 * ((16 + 1) / 2 + (16 + 0.25) / 2)
    assert float(lecam_loss(st, real, fake)) == pytest.approx(expected)


def test_cond_ramp_brings_the_class_terms_in_linearly(demo_ds, tmp_path):
    st = tiny_state(demo_ds, tmp_path)
    assert st.cond_scale == 1.0
    st.cfg.cond_ramp = 100
    st.step = 0
    assert st.cond_scale == 0.0
    st.step = 25
    assert st.cond_scale == 0.25
    st.step = 400
    assert st.cond_scale == 1.0
    x, y = torch.randn(4, 1, 48, 48), torch.tensor([0, 1, 2, 3])
    st.d.eval()
    with torch.no_grad():
        full, _ = st.d(x, y)
        none, _ = st.d(x, y, 0.0)
        half, _ = st.d(x, y, 0.5)
        proj = (st.d.embed(y) * st.d.hidden(x, y)).sum(1)
    torch.testing.assert_close(full - none, proj)
    torch.testing.assert_close(half - none, 0.5 * proj)


def test_new_options_train_log_and_resume_exactly(demo_ds, tmp_path):
    kw = {"color_p": 0.5, "ada_target": 0.6, "lecam_weight": 0.3, "cond_ramp": 4, "ms_weight": 1.0}
    kw["exposure_norm"] = True
    n, cut = 10, 6  # the cut falls between two ADA adjustments: the signs gathered so far must carry over
    train_gan(demo_ds, tmp_path / "whole", tiny_cfg(demo_ds, steps=n, **kw), progress=False)
    train_gan(demo_ds, tmp_path / "split", tiny_cfg(demo_ds, steps=cut, **kw), progress=False)
    assert len(ckpt(tmp_path / "split")["ada_signs"]) == cut % ADA_INTERVAL
    train_gan(demo_ds, tmp_path / "split", tiny_cfg(demo_ds, steps=n, **kw), progress=False)
    a, b = ckpt(tmp_path / "whole"), ckpt(tmp_path / "split")
    for part in ("g", "d", "g_ema"):
        assert_same_weights(a[part], b[part])
    assert a["color_p"] == b["color_p"] and a["lecam_ema"] == b["lecam_ema"] != [0.0, 0.0]
    whole, split = (read_jsonl(tmp_path / r / "metrics.jsonl") for r in ("whole", "split"))
    p = [r["color_p"] for r in whole]
    assert p == [r["color_p"] for r in split] and len(set(p)) > 1  # ADA moved p; the resume carried it on
    assert all(0 <= r["color_p"] <= 1 and -1 <= r["d_sign"] <= 1 for r in whole)


def test_mode_seeking_pairs_one_class_and_pushes_the_pair_apart():
    assert paired_labels(torch.tensor([0, 1, 2, 3, 4])).tolist() == [0, 1, 0, 1, 4]
    z = torch.tensor([[1.0, 1.0], [0.0, 0.0], [-1.0, 1.0], [2.0, 0.0]])  # pairs (0, 2) and (1, 3): |dz| 1
    face = torch.tensor([[-1.0, 1.0], [1.0, -1.0]]).expand(4, 1, 2, 2)
    assert float(mode_seeking_loss(face, z, 0.0)) == 0.0  # off
    assert float(mode_seeking_loss(face, z, 2.0)) == pytest.approx(2 / 1e-5)  # one face from two noises
    brighter = face.clone()
    brighter[2:] = 0.5 * face[2:] + 0.3  # the same face, dimmer and brighter: exposure is not variety
    assert float(mode_seeking_loss(brighter, z, 2.0)) > 1000
    other = face.clone()
    other[2:] = -face[2:]  # the mirror pattern: standardised pixels (±√3/2) √3 apart over a noise distance of 1
    assert float(mode_seeking_loss(other, z, 2.0)) == pytest.approx(2 / 3**0.5, rel=1e-2)
    y = face.clone()
    y[2:] = torch.tensor([[-1.0, 0.8], [1.0, -0.8]])
    y.requires_grad_(True)
    mode_seeking_loss(y, z, 1.0).backward()
    assert y.grad.abs().sum() > 0 and float(mode_seeking_loss(y - 0.1 * y.grad, z, 1.0)) < float(
        mode_seeking_loss(y, z, 1.0)
    )  # a step down the loss draws the pair apart


def test_options_that_would_do_nothing_are_refused(demo_ds, tmp_path):
    for kw, message in (
        ({"ada_target": 0.6, "diffaugment": ""}, "--ada-target 0.6 acts on DiffAugment's colour ops"),
        ({"cond_ramp": 100, "conditioning": "concat", "aux_weight": 0.0}, "--cond-ramp 100 ramps D's projection"),
    ):
        with pytest.raises(UserError, match=re.escape(message)):
            train_gan(demo_ds, tmp_path / "run", tiny_cfg(demo_ds, **kw), progress=False)
    assert not (tmp_path / "run").exists()


def test_the_ramp_holds_d_class_terms_still_while_it_is_near_zero(demo_ds, tmp_path):
    """In training, not only in D's forward: at scale ~0 the projection embedding and class head get no
    gradient (they stay in the graph for DDP); at full scale they move."""
    moved_by = {}
    for ramp in (0, 10**9):
        st = tiny_state(demo_ds, tmp_path)
        st.cfg.cond_ramp = ramp
        before = params(st.d)
        d_step(st, 0)
        moved_by[ramp] = moved(before, st.d)
    class_terms = {k for k in moved_by[0] if k.startswith(("embed.", "cls."))}
    assert class_terms  # they move at full conditioning...
    assert not class_terms & moved_by[10**9]  # ...and not at scale 1e-9 × step 0 = 0


def test_lecam_reaches_d_through_both_halves_with_a_batchnorm_d(demo_ds, tmp_path):
    """The textbook (BatchNorm) D runs real and fake as separate passes: LeCam's real half must reach D too."""
    grads = {}
    for weight in (0.0, 1.0):
        st = tiny_state(demo_ds, tmp_path, "classic")
        st.cfg.lecam_weight = weight
        st.lecam_ema = [-100.0, -100.0]  # only the real half is active: D(real) far above the fake average
        d_step(st, 0)
        grads[weight] = {k: p.detach().clone() for k, p in st.d.named_parameters()}
    assert any(not torch.equal(grads[0.0][k], grads[1.0][k]) for k in grads[0.0])


def test_a_run_from_before_an_option_existed_resumes_only_with_what_it_did(demo_ds, tmp_path):
    run = tmp_path / "old"
    before = {"color_p": 1.0, "ms_weight": 0.0, "lecam_weight": 0.0}  # every face coloured, no mode seeking, no LeCam
    train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=2, checkpoint_every=1, **before), progress=False)
    config = json.loads((run / "config.json").read_text())
    del config["lecam_weight"], config["color_p"], config["ms_weight"]  # as written before these options
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"lecam_weight: was 0.0, now 0.3"):
        train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4, **{**before, "lecam_weight": 0.3}), progress=False)
    with pytest.raises(UserError, match=r"color_p: was 1.0, now 0.5; .*lecam_weight: was 0.0, now 0.3"):
        train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4), progress=False)  # today's defaults are not what it did
    assert train_gan(demo_ds, run, tiny_cfg(demo_ds, steps=4, **before), progress=False)["step"] == 4
    old = GanConfig.from_dict(config)
    assert (old.color_p, old.ms_weight, old.lecam_weight) == (1.0, 0.0, 0.0)


def test_exposure_norm_trains_on_one_exposure_and_samples_take_their_class_real_ones(demo_ds, tmp_path):
    from gan.metrics import exposure_and_spread
    from gan.models import exposure_stats
    from gan.sample import generate_images, load_generator

    cfg = tiny_cfg(demo_ds, steps=2, exposure_norm=True)
    train = training_split(demo_ds, cfg)
    st = new_state(cfg, train, Dist(), "cpu", tmp_path / "st", {})
    mean, spread = exposure_stats(real_batch(st, 0)[0])
    assert mean.abs().max() < 0.05 and (spread - 0.45).abs().max() < 0.05  # D sees one exposure
    train_gan(demo_ds, tmp_path / "run", cfg, progress=False)
    g, _ = load_generator(tmp_path / "run")
    assert g.exposure and torch.equal(g.exposure_pairs, st.g.exposure_pairs)  # kept in the checkpoint
    labels = np.repeat(np.arange(len(train.classes)), 200)
    faces = generate_images(g, labels, seed=5)
    spread_of = exposure_and_spread(faces, labels, train.images, train.labels, list(train.classes))
    ratios = [v["brightness_ratio"] for v in spread_of.values()]
    assert all(0.75 < r < 1.25 for r in ratios), ratios  # 2 steps in: brightness spread as real faces'
