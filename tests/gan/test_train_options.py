"""GAN training options on the tiny demo faces: recipe variants, refused settings, ADA, LeCam, the
conditioning ramp, mode seeking and exposure normalisation."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from augment.cli import main
from augment.core.atomic import read_jsonl
from augment.core.errors import UserError
from augment.core.runtime import Dist
from gan.checkpoint import training_split
from gan.config import ADA_IMAGES, ADA_INTERVAL, GanConfig
from gan.state import new_state
from gan.steps import ada_step, d_step, lecam_loss, mode_seeking_loss, paired_labels, real_batch
from gan.train import train_gan
from tests.gan.test_train import assert_same_weights, ckpt, moved, params, tiny_cfg, tiny_state

pytestmark = pytest.mark.usefixtures("quiet")


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
