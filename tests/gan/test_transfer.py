"""The expression-transfer recipe: its losses, networks, source draws, exact resume, refusals and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from augment.core.errors import UserError
from augment.core.resize import resize_dataset
from gan.checkpoint import setup
from gan.config import recipe_config
from gan.train import train_gan
from gan.transfer_models import TransferDiscriminator, TransferGenerator, blend
from gan.transfer_steps import cycle_loss, identity_loss, target_labels, transfer_batch
from tests.conftest import assert_one_line_error, run_cli, tiny_gan_config

pytestmark = pytest.mark.usefixtures("quiet")


@pytest.fixture(scope="module")
def faces32(demo_ds):
    return resize_dataset(demo_ds, 32, 1)


def tiny(ds, steps: int = 4, **kw):
    """A tiny transfer run; no guide classifier unless asked for (it would train a grading judge first)."""
    return tiny_gan_config(ds, steps, recipe="transfer", **{"log_every": 1, "res_blocks": 1, "guide_weight": 0.0, **kw})


# --------------------------------------------------------------------------- losses
class Shift(torch.nn.Module):
    """A stand-in G: the face plus ``shift`` wherever the asked class is not ``keep``."""

    def __init__(self, keep: int | None) -> None:
        super().__init__()
        self.keep = keep
        self.shift = torch.nn.Parameter(torch.tensor(0.25))

    def forward(self, x, y):
        moved = (y != self.keep).float().view(-1, 1, 1, 1) if self.keep is not None else 1.0
        return x + self.shift * moved


def test_cycle_and_identity_losses_are_zero_for_an_unchanging_generator():
    x, y = torch.rand(4, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0])
    same = lambda x, y: x  # noqa: E731
    assert cycle_loss(same, x, x, y).item() == 0.0
    assert identity_loss(same, x, y).item() == 0.0


def test_cycle_and_identity_losses_are_positive_with_gradients_otherwise():
    x, y = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])
    g = Shift(keep=None)
    cyc = cycle_loss(g, g(x, y + 1), x, y)
    idt = identity_loss(g, x, y)
    assert cyc.item() == pytest.approx(0.5) and idt.item() == pytest.approx(0.25)
    (cyc + idt).backward()
    assert g.shift.grad is not None and g.shift.grad.item() == pytest.approx(3.0)


def test_identity_loss_asks_for_the_source_class():
    x = torch.zeros(3, 1, 8, 8)
    g = Shift(keep=2)  # leaves class 2 alone, moves the others
    assert identity_loss(g, x, torch.full((3,), 2)).item() == 0.0
    assert identity_loss(g, x, torch.full((3,), 1)).item() == pytest.approx(0.25)


# --------------------------------------------------------------------------- networks
@pytest.mark.parametrize("upsample", ["transposed", "nearest"])
@pytest.mark.parametrize("size", [32, 48])
def test_generator_shape_range_and_discriminator_heads(size, upsample):
    g = TransferGenerator(5, size=size, width=8, res_blocks=2, upsample=upsample)
    d = TransferDiscriminator(5, size=size, width=8)
    transposed = any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert transposed == (upsample == "transposed")
    x, y = torch.rand(3, 1, size, size) * 2 - 1, torch.tensor([0, 4, 2])
    out, mask = g(x, y, with_mask=True)
    assert out.shape == x.shape and mask.shape == (3, 1, size, size)
    assert out.min() >= -1 and out.max() <= 1 and mask.min() >= 0 and mask.max() <= 1
    adv, cls = d(out)
    assert adv.shape == (3,) and cls.shape == (3, 5)


def test_an_all_ones_mask_returns_the_input():
    x, colour = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    assert torch.equal(blend(x, colour, torch.ones(2, 1, 8, 8)), x)
    g = TransferGenerator(3, size=32, width=8, res_blocks=1)
    with torch.no_grad():
        g.mask.weight.zero_()
        g.mask.bias.fill_(50.0)  # sigmoid(50) is 1.0 in float32
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    assert torch.equal(g(x, torch.tensor([1, 2])), x)


# --------------------------------------------------------------------------- draws
MARK = 255  # the top row of every val and test face; train faces have 0 there


def test_sources_come_only_from_the_real_train_split(faces32, tmp_path):
    splits = faces32.splits.copy()
    train = np.flatnonzero(splits == "train")
    splits[train[::5]] = "val"  # an explicit validation split the generator must not read
    images = faces32.images.copy()
    images[:, :, 0, :] = np.where((splits == "train")[:, None, None], 0, MARK)
    ds = replace(faces32, images=images, splits=splits)
    cfg = tiny(ds, batch_size=32)
    st = setup(ds, tmp_path / "run", cfg, progress=False)
    for s in range(30):
        x, y, t = transfer_batch(st, s)
        top = x[:, :, 0, :].flatten(1)
        assert (top == -1.0).all(), f"step key {s} drew a val or test face"
        assert not (t == y).any()  # targets are other classes than the source's


def test_targets_are_balanced_over_the_other_classes(faces32, tmp_path):
    st = setup(faces32, tmp_path / "run", tiny(faces32, batch_size=64), progress=False)
    k = len(st.classes)
    source = torch.zeros(64, dtype=torch.long)
    counts = torch.bincount(torch.cat([target_labels(st, s, source) for s in range(50)]), minlength=k)
    assert counts[0] == 0 and (counts[1:] > 0.5 * 64 * 50 / (k - 1)).all()


# --------------------------------------------------------------------------- runs
def test_exact_resume(faces32, tmp_path):
    whole = train_gan(faces32, tmp_path / "whole", tiny(faces32, steps=4), progress=False)
    train_gan(faces32, tmp_path / "split", tiny(faces32, steps=2), progress=False)
    resumed = train_gan(faces32, tmp_path / "split", tiny(faces32, steps=4), progress=False)
    assert resumed["steps_this_run"] == 2
    assert whole["parameter_digest"] == resumed["parameter_digest"]


def test_the_decoder_upsampling_is_the_runs_and_rebuilds_from_its_checkpoint(faces32, tmp_path):
    """--upsample nearest trains, is recorded, and the translator rebuilt from best.pt/checkpoint.pt has
    the same decoder; a bad value is refused before anything is written."""
    from gan.translate import load_translator

    with pytest.raises(UserError, match="--upsample bilinear: use transposed or nearest"):
        train_gan(faces32, tmp_path / "bad", tiny(faces32, steps=1, upsample="bilinear"), progress=False)
    assert not (tmp_path / "bad").exists()
    train_gan(faces32, tmp_path / "run", tiny(faces32, steps=1, upsample="nearest"), progress=False)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["upsample"] == "nearest"
    g = load_translator(tmp_path / "run", checkpoint="last")[0]
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in g.modules())
    assert any(isinstance(m, torch.nn.Upsample) for m in g.modules())


def test_a_changed_setting_is_refused_on_resume(faces32, tmp_path):
    train_gan(faces32, tmp_path / "run", tiny(faces32, steps=1), progress=False)
    before = (tmp_path / "run" / "config.json").read_text()
    with pytest.raises(UserError, match="cycle_weight"):
        train_gan(faces32, tmp_path / "run", tiny(faces32, steps=2, cycle_weight=3.0), progress=False)
    assert (tmp_path / "run" / "config.json").read_text() == before


@pytest.mark.parametrize(
    ("recipe", "option", "value"),
    [
        ("full", "cycle_weight", 10.0),
        ("classic", "res_blocks", 4),
        ("full", "upsample", "nearest"),
        ("transfer", "ms_weight", 0.5),
    ],
)
def test_an_option_of_the_other_family_is_refused(recipe, option, value):
    with pytest.raises(UserError, match="--" + option.replace("_", "-")):
        recipe_config(recipe, **{option: value}).validate()


def test_gan_train_transfer_through_the_cli(demo_dir, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["gan-train", demo_dir, "--recipe", "transfer", "--out", run, "--size", "32", "--steps", "3"]
    args += ["--batch-size", "16", "--g-width", "8", "--d-width", "8", "--res-blocks", "1", "--device", "cpu"]
    args += ["--guide-weight", "0"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "trained to step 3" in out
    assert (run / "checkpoint.pt").exists() and (run / "samples" / "step_000003.png").exists()
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["generator_kwargs"]["recipe"] == "transfer" and state["config"]["cycle_weight"] == 10.0
    code, _, err = run_cli(capsys, "gan-train", demo_dir, "--out", tmp_path / "noise", "--cycle-weight", "2")
    assert_one_line_error(code, err, "--cycle-weight")
    assert not (tmp_path / "noise").exists()
    code, _, err = run_cli(capsys, "generate", run, "--per-class", "2", "--out", tmp_path / "gen")
    assert_one_line_error(code, err, "transfer run", "--sources DATA")
    assert not (tmp_path / "gen").exists()


# --------------------------------------------------------------------------- best-checkpoint selection
def test_selection_keeps_the_best_translator_scored_on_validation_faces(faces32, tiny_judge_run, tmp_path, monkeypatch):
    """Selection translates validation faces (never train faces into a dataset), logs each score and keeps
    best.pt, which the commands load as the transfer run's ``best`` checkpoint."""
    import gan.translate
    from augment.core.atomic import read_jsonl
    from gan.translate import load_translator

    drawn_splits = []
    real_init = gan.translate.TransferSampler.__post_init__

    def spy(self):
        drawn_splits.append(set(self.pool.splits.tolist()))
        real_init(self)

    monkeypatch.setattr(gan.translate.TransferSampler, "__post_init__", spy)
    cfg = tiny(faces32, steps=4, select_every=2, select_per_class=4, judge=str(tiny_judge_run))
    train_gan(faces32, tmp_path / "run", cfg, progress=False)
    records = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if "selection" in r]
    assert [r["step"] for r in records] == [2, 4] and drawn_splits == [{"val"}, {"val"}]
    assert all(0 <= v["assignment"] <= 1 for r in records for v in r["selection"]["per_class"].values())
    best = max(records, key=lambda r: r["selection"]["score"])
    _, meta = load_translator(tmp_path / "run", checkpoint="best")
    assert meta["checkpoint"] == "best" and meta["step"] == best["step"]


# --------------------------------------------------------------------------- the guide classifier
def test_the_guide_pulls_translations_toward_their_target(faces32, tiny_judge_run, tmp_path):
    """With --guide-weight, G's loss includes a frozen classifier's cross-entropy on its translations (logged as
    g_guide); training steps change G's weights in the guide's direction and never the guide's."""
    from augment.core.atomic import read_jsonl
    from gan.checkpoint import prepare_training, setup
    from gan.transfer_steps import guide_loss, transfer_batch, transfer_g_step

    cfg = tiny(faces32, steps=3, guide_weight=1.0, guide=str(tiny_judge_run))
    train_gan(faces32, tmp_path / "run", cfg, progress=False)
    rows = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if "g_guide" in r]
    assert len(rows) == 3 and all(r["g_guide"] > 0 for r in rows)
    assert not (tmp_path / "run" / "judge-guide").exists()  # --guide was given: nothing trained
    st = setup(faces32, tmp_path / "more", replace(cfg, steps=3), progress=False)
    prepare_training(st)
    assert st.guide is not None and not any(p.requires_grad for p in st.guide[0].parameters())
    before = {k: v.clone() for k, v in st.guide[0].state_dict().items()}
    g_before = [p.detach().clone() for p in st.g.parameters()]
    x, _, t = transfer_batch(st, 0)
    loss = guide_loss(st, st.g(x, t), t, 0)
    loss.backward()
    assert loss.item() > 0 and any(p.grad is not None and p.grad.abs().sum() > 0 for p in st.g.parameters())
    for s in range(2):
        transfer_g_step(st, s)
    assert all(torch.equal(before[k], v) for k, v in st.guide[0].state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, st.g.parameters(), strict=True))


def test_the_guide_sees_translations_under_the_noise_it_trained_with(faces32, tiny_judge_run, tmp_path):
    """A guide trained with input noise (train_noise in its model file) is applied under that noise, drawn from
    the step key: the same key gives the same loss (an exact resume), another key another one; without
    noise the key does not matter."""
    from gan.checkpoint import prepare_training, setup
    from gan.transfer_steps import guide_loss, transfer_batch

    cfg = tiny(faces32, steps=3, guide_weight=1.0, guide=str(tiny_judge_run))
    st = setup(faces32, tmp_path / "run", cfg, progress=False)
    prepare_training(st)
    x, _, t = transfer_batch(st, 0)
    with torch.no_grad():
        fake = st.g(x, t)
        plain = [guide_loss(st, fake, t, k).item() for k in (0, 1)]
        st.guide = (st.guide[0], {**st.guide[1], "train_noise": 0.5})
        noisy = [guide_loss(st, fake, t, k).item() for k in (0, 0, 1)]
    assert plain[0] == plain[1]
    assert noisy[0] == noisy[1] and noisy[0] != noisy[2] and noisy[0] != plain[0]


def test_the_default_guide_trains_under_input_noise():
    from classifier.judge import guide_config

    cfg = guide_config(20_000)
    assert cfg.model == "fer-cnn" and cfg.noise > 0 and cfg.epoch_samples == 16384
    assert guide_config(500).epoch_samples == 500


def test_the_guide_is_never_the_judge_that_grades(faces32, tiny_judge_run, tmp_path):
    cfg = tiny(faces32, steps=2, guide_weight=1.0, guide=str(tiny_judge_run), judge=str(tiny_judge_run))
    with pytest.raises(UserError, match="--guide and --judge are both"):
        train_gan(faces32, tmp_path / "run", cfg, progress=False)
    assert not (tmp_path / "run").exists()
