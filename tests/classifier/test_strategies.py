"""Ways to use synthetic faces on the classifier side: the synthetic loss weight, the real-only head refit;
and the one-cycle schedule of the CPU budget."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import classifier.validation as validation_mod
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from classifier.config import TrainConfig
from classifier.data import AugmentedBatches
from classifier.epoch import train_step
from classifier.losses import FocalLoss, WeightedCrossEntropy, make_loss, sample_weights
from classifier.models import MODEL_NAMES, build_model, classifier_head
from classifier.refit import FrozenBody
from classifier.state import make_scheduler
from tests.classifier.test_train import assert_same_weights, bright_dark, history, interrupt_on_call, train, weights
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_curve_plots(monkeypatch):
    monkeypatch.setattr(validation_mod, "plot_curves", lambda history, path: None)


def with_synthetic(ds: FaceDataset, every: int = 4, pixels: int | None = None) -> FaceDataset:
    """``ds`` with every ``every``-th image marked synthetic; ``pixels`` repaints those images."""
    out = ds.subset(np.arange(len(ds)))
    out.synthetic = np.arange(len(out)) % every == 0
    if pixels is not None:
        out.images = out.images.copy()
        out.images[out.synthetic] = pixels
    return out


# --------------------------------------------------------------------------- the synthetic loss weight
def _batch(n_real: int = 6, n_syn: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_real + n_syn, 1, 16, 16, generator=g)
    y = torch.tensor([0, 1, 2] * ((n_real + n_syn) // 3))
    syn = torch.arange(n_real + n_syn) >= n_real
    return x, y, syn


def _stepped(criterion, x, y, weight=None) -> dict[str, torch.Tensor]:
    """The parameters after one SGD step from a fixed start (eval mode: no dropout; simple-cnn has no BN)."""
    torch.manual_seed(0)
    model = build_model("simple-cnn", num_classes=3, image_size=16, width=0.25).eval()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    train_step(model, criterion, opt, x, y, weight=weight)
    return {k: v.detach().clone() for k, v in model.named_parameters()}


CRITERIA = {
    "cross-entropy": dict(class_weighted=False, focal_gamma=0.0, label_smoothing=0.1),
    "class-weighted": dict(class_weighted=True, focal_gamma=0.0, label_smoothing=0.0),
    "focal": dict(class_weighted=True, focal_gamma=2.0, label_smoothing=0.0),
}


@pytest.mark.parametrize("loss", CRITERIA, ids=list(CRITERIA))
def test_synthetic_weight_zero_leaves_the_update_of_the_real_faces(loss):
    x, y, syn = _batch()
    criterion = make_loss(np.array([0, 0, 0, 0, 1, 1, 2]), 3, **CRITERIA[loss])
    real_only = _stepped(criterion, x[~syn], y[~syn])
    ignored = _stepped(criterion, x, y, sample_weights(syn, 0.0))
    counted = _stepped(criterion, x, y, sample_weights(syn, 0.5))
    for k in real_only:
        torch.testing.assert_close(ignored[k], real_only[k], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(counted[k], real_only[k]) for k in real_only)


@pytest.mark.parametrize("loss", CRITERIA, ids=list(CRITERIA))
def test_synthetic_weight_scales_a_face_like_repeating_it(loss):
    x, y, syn = _batch()
    criterion = make_loss(np.array([0, 0, 0, 0, 1, 1, 2]), 3, **CRITERIA[loss])
    twice = torch.cat([torch.arange(len(y)), torch.nonzero(syn).flatten()])  # each synthetic face twice, weight 1
    repeated = _stepped(criterion, x[twice], y[twice])
    weighted = _stepped(criterion, x, y, sample_weights(syn, 2.0))
    for k in repeated:
        torch.testing.assert_close(weighted[k], repeated[k], rtol=1e-5, atol=1e-6)


def test_sample_weights_and_the_weighted_losses():
    syn = torch.tensor([False, True, True, False])
    assert sample_weights(syn, 1.0) is None  # the default trains exactly as before
    assert sample_weights(syn, 0.3).tolist() == pytest.approx([1.0, 0.3, 0.3, 1.0])
    logits = torch.tensor([[2.0, 0.1, -1.0], [0.0, 1.0, 0.5], [0.3, 0.2, 0.1], [1.0, -1.0, 0.0]])
    y = torch.tensor([0, 1, 2, 0])
    w = torch.tensor([1.0, 0.3, 0.3, 1.0])
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    plain = make_loss(np.array([0, 1, 2]), 3, False, 0.0, 0.0)
    assert isinstance(plain, WeightedCrossEntropy)
    assert plain(logits, y, w).item() == pytest.approx(float((w * ce).sum() / w.sum()))
    assert plain(logits, y, torch.ones(4)).item() == pytest.approx(plain(logits, y).item())
    focal = FocalLoss(0.0)  # gamma 0: cross-entropy, so the weighted means agree
    assert focal(logits, y, w).item() == pytest.approx(plain(logits, y, w).item())
    zero = plain(logits.requires_grad_(), y, torch.zeros(4))  # a batch of ignored faces: no gradient
    zero.backward()
    assert zero.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_batches_carry_the_synthetic_flag():
    ds = with_synthetic(bright_dark(n=4), every=3)
    batches = AugmentedBatches(ds.images, ds.labels, None, ds.synthetic)
    x, y, syn = batches[(0, [0, 1, 3, 6])]
    assert x.shape == (4, 1, 16, 16) and syn.tolist() == [True, False, True, True]
    assert AugmentedBatches(ds.images, ds.labels)[(0, [0, 1])][2].tolist() == [False, False]


def test_training_with_weight_zero_ignores_what_the_synthetic_faces_show(tmp_path):
    dark, bright = with_synthetic(bright_dark(), pixels=0), with_synthetic(bright_dark(), pixels=255)
    train(dark, tmp_path / "dark", epochs=2, synthetic_weight=0.0)
    train(bright, tmp_path / "bright", epochs=2, synthetic_weight=0.0)
    assert_same_weights(tmp_path / "dark" / "checkpoint.pt", tmp_path / "bright" / "checkpoint.pt")
    train(dark, tmp_path / "dark-half", epochs=2, synthetic_weight=0.5)
    train(bright, tmp_path / "bright-half", epochs=2, synthetic_weight=0.5)
    a, b = weights(tmp_path / "dark-half" / "checkpoint.pt"), weights(tmp_path / "bright-half" / "checkpoint.pt")
    assert any(not torch.equal(a[k], b[k]) for k in a)
    config = json.loads((tmp_path / "dark-half" / "config.json").read_text())
    assert config["synthetic_weight"] == 0.5
    with pytest.raises(UserError, match="synthetic_weight"):  # a resume may not change it
        train(dark, tmp_path / "dark-half", epochs=3, synthetic_weight=1.0)
    with pytest.raises(UserError, match="--synthetic-weight -1"):
        train(dark, tmp_path / "negative", epochs=1, synthetic_weight=-1.0)


# --------------------------------------------------------------------------- the head refit
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_frozen_body_trains_the_head_only(name):
    torch.manual_seed(0)
    model = build_model(name, 3, width=1.0 if name == "resnet18" else 0.125)
    head = classifier_head(model)
    head_keys = {k for k, p in model.named_parameters() if any(p is q for q in head.parameters())}
    assert len(head_keys) == 2 and {k.split(".")[-1] for k in head_keys} == {"weight", "bias"}
    before = copy.deepcopy(model.state_dict())
    net = FrozenBody(model).train()
    assert head.training and not any(m.training for m in model.modules() if m is not head)
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 64 if name == "resemotenet" else 48, 64 if name == "resemotenet" else 48, generator=g)
    train_step(net, torch.nn.CrossEntropyLoss(), opt, x, torch.tensor([0, 1, 2] * 2))
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == head_keys  # BatchNorm statistics included: nothing else moved


def refit_data() -> FaceDataset:
    """bright/dark faces, a quarter of them synthetic and painted mid-grey: recognisable wherever they go."""
    return with_synthetic(bright_dark(n=24), pixels=128)


def test_refit_changes_only_the_head_and_sees_no_synthetic_face(tmp_path, monkeypatch):
    ds, run = refit_data(), tmp_path / "run"
    kw = dict(model="fer-cnn", epochs=2, schedule="onecycle")
    train(ds, run, **kw)
    main_model = weights(run / "model.pt")
    fetched: list[tuple[int, bool]] = []  # (images in the batch source, a grey synthetic face among them)
    getitem = AugmentedBatches.__getitem__

    def spy(self, spec):
        fetched.append((len(self), bool((self.images[spec[1]] == 128).all(dim=(1, 2, 3)).any())))
        return getitem(self, spec)

    monkeypatch.setattr(AugmentedBatches, "__getitem__", spy)
    summary = train(ds, run, refit_head_epochs=2, **kw)  # the finished run goes on with the refit
    refit = weights(run / "model.pt")
    changed = {k for k in refit if not torch.equal(refit[k], main_model[k])}
    assert changed == {"head.weight", "head.bias"}
    config = json.loads((run / "config.json").read_text())
    real_train = sum(config["train_counts"].values()) - config["synthetic_train_images"]
    assert {n for n, _ in fetched} == {real_train} and not any(grey for _, grey in fetched)
    assert len(fetched) == 2 * (real_train // 8)  # two epochs of batches, all of them real
    assert [(r["epoch"], r["stage"]) for r in history(run)] == [(1, "main"), (2, "main"), (3, "refit"), (4, "refit")]
    assert summary["stage"] == "refit" and summary["best_epoch"] in (3, 4)
    assert summary["refit"]["from_epoch"] == 2 and summary["refit"]["real_images"] == real_train
    assert summary["refit"]["main_best_val"]["stage"] == "main"
    best = torch.load(run / "model.pt", weights_only=True)
    assert best["stage"] == "refit" and best["epoch"] == summary["best_epoch"]


def test_the_main_stage_does_see_the_synthetic_faces(tmp_path, monkeypatch):
    """The spy of the refit test can fail: in the main stage it finds the grey faces."""
    seen = []
    getitem = AugmentedBatches.__getitem__
    monkeypatch.setattr(
        AugmentedBatches,
        "__getitem__",
        lambda self, spec: (
            seen.append(bool((self.images[spec[1]] == 128).all(dim=(1, 2, 3)).any())) or getitem(self, spec)
        ),
    )
    train(refit_data(), tmp_path / "run", epochs=1)
    assert any(seen)


@pytest.mark.parametrize("where", ["mid-refit", "refit-epoch-end"])
def test_a_run_cut_in_the_refit_resumes_in_the_refit_exactly(tmp_path, monkeypatch, where):
    ds = refit_data()  # 28 real and 12 synthetic training faces: 5 batches of 8 a main epoch, 3 a refit epoch
    kw = dict(model="fer-cnn", epochs=2, refit_head_epochs=2, checkpoint_every=1)
    train(ds, tmp_path / "ref", **kw)
    with monkeypatch.context() as m:
        if where == "mid-refit":  # Ctrl-C fetching the 2nd batch of the refit's 2nd epoch
            m.setattr(AugmentedBatches, "__getitem__", interrupt_on_call(AugmentedBatches.__getitem__, 5 + 5 + 3 + 2))
        else:  # after the refit's 1st history line, before its checkpoint
            m.setattr(validation_mod, "plot_curves", interrupt_on_call(lambda history, path: None, 3))
        with pytest.raises(KeyboardInterrupt):
            train(ds, tmp_path / "cut", **kw)
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert ckpt["stage"] == "refit" and ckpt["refit_from"] == 2
    assert (ckpt["epoch"], ckpt["batch"]) == ((3, 1) if where == "mid-refit" else (2, 3))
    summary = train(ds, tmp_path / "cut", **kw)
    assert_same_weights(tmp_path / "ref" / "checkpoint.pt", tmp_path / "cut" / "checkpoint.pt")
    assert_same_weights(tmp_path / "ref" / "model.pt", tmp_path / "cut" / "model.pt")
    assert history(tmp_path / "ref") == history(tmp_path / "cut")
    assert summary["stage"] == "refit" and summary["epochs_done"] == 4


def test_refit_options_are_checked(tmp_path):
    with pytest.raises(UserError, match="--refit-epochs -1"):
        train(refit_data(), tmp_path / "a", epochs=1, refit_head_epochs=-1)
    few_real = bright_dark()  # 6 real faces per class, half of them carved off for validation
    few_real.synthetic = (np.arange(32) % 16) >= 6
    with pytest.raises(UserError, match="--refit-epochs: fewer real training faces than one batch"):
        train(few_real, tmp_path / "b", epochs=1, refit_head_epochs=1, val_fraction=0.5)
    assert len(history(tmp_path / "b")) == 1  # the main stage trained on its 6 real and 20 synthetic faces


# --------------------------------------------------------------------------- one-cycle schedule, fer-cnn
def test_onecycle_peaks_at_the_learning_rate_and_resumes_exactly(tmp_path, monkeypatch):
    ds = bright_dark()  # 24 training faces: 3 batches of 8 per epoch
    kw = dict(epochs=3, schedule="onecycle", checkpoint_every=2, lr=3e-3)
    ref = train(ds, tmp_path / "ref", **kw)
    sched = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=True)["sched"]
    assert sched["total_steps"] == 9 and sched["last_epoch"] == 9 and sched["_schedule_phases"][0]["end_lr"] == "max_lr"
    lrs = [r["lr"] for r in history(tmp_path / "ref")]
    assert 3e-3 > lrs[0] > lrs[1] > lrs[2]  # past the peak, annealing
    with monkeypatch.context() as m:  # Ctrl-C fetching the 2nd batch of epoch 2
        m.setattr(AugmentedBatches, "__getitem__", interrupt_on_call(AugmentedBatches.__getitem__, 5))
        with pytest.raises(KeyboardInterrupt):
            train(ds, tmp_path / "cut", **kw)
    cut = train(ds, tmp_path / "cut", **kw)
    assert cut["parameter_digest"] == ref["parameter_digest"]
    assert history(tmp_path / "cut") == history(tmp_path / "ref")
    assert_same_weights(tmp_path / "ref" / "checkpoint.pt", tmp_path / "cut" / "checkpoint.pt")
    with pytest.raises(UserError, match="one-cycle schedule is fixed by its length"):
        train(ds, tmp_path / "ref", **{**kw, "epochs": 4})


def test_onecycle_schedule_reaches_the_peak_mid_run():
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    cfg = TrainConfig(schedule="onecycle", lr=3e-3)
    sched = make_scheduler(cfg, opt, total_steps=100)
    lrs = []  # the learning rate of each of the 100 batches
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert max(lrs) == pytest.approx(3e-3) and 20 <= int(np.argmax(lrs)) <= 40
    assert lrs[0] == pytest.approx(3e-3 / 25) and lrs[-1] < 3e-3 / 1000


def test_fer_cnn_learns_bright_from_dark(tmp_path):
    summary = train(bright_dark(n=32), tmp_path / "run", model="fer-cnn", epochs=5, schedule="onecycle", lr=3e-3)
    h = history(tmp_path / "run")
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert summary["best_val"]["val_acc"] >= 0.9


def test_cli_passes_the_new_options(capsys, demo_dir, tmp_path):
    run = tmp_path / "run"
    args = ["train", demo_dir, "--out", run, "--model", "fer-cnn", "--width", "0.25", "--batch-size", "8"]
    args += ["--epochs", "1", "--epoch-samples", "32", "--device", "cpu", "--schedule", "onecycle"]
    code, _, err = run_cli(capsys, *args, "--synthetic-weight", "0.5", "--refit-epochs", "1")
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["schedule"], config["synthetic_weight"], config["refit_head_epochs"]) == (
        "fer-cnn",
        "onecycle",
        0.5,
        1,
    )
    assert [r["stage"] for r in history(run)] == ["main", "refit"]
    code, _, err = run_cli(capsys, "train", demo_dir, "--out", tmp_path / "bad", "--schedule", "linear")
    assert code == 2 and "--schedule linear: use cosine, onecycle, plateau or none" in err


# --------------------------------------------------------------------------- both under torchrun
DDP_WORKER = """
import json, sys
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(1)
from augment.core.readers import load_dataset
from classifier.train import train_classifier
from tests.conftest import tiny_classifier_config

ds = load_dataset(Path(sys.argv[1]))
ds.synthetic = (np.arange(len(ds)) % 3 == 0) & (ds.splits == "train")
cfg = tiny_classifier_config(
    model="fer-cnn", epochs=1, batch_size=8, epoch_samples=32, synthetic_weight=0.5, refit_head_epochs=1
)
summary = train_classifier(ds, Path(sys.argv[2]), cfg, progress=False)
Path(sys.argv[3], f"rank{summary['rank']}.json").write_text(json.dumps(summary))
"""


def test_synthetic_weight_and_refit_under_torchrun(demo_dir, tmp_path):
    worker, run, report = tmp_path / "worker.py", tmp_path / "run", tmp_path / "report"
    worker.write_text(DDP_WORKER)
    report.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AUGMENT_QUIET": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker)]
    proc = subprocess.run(
        cmd + [str(demo_dir), str(run), str(report)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1))
    assert (r0["world"], r1["world"]) == (2, 2)
    assert r0["parameter_digest"] == r1["parameter_digest"], "ranks diverged"
    assert r0["stage"] == r1["stage"] == "refit" and r0["epochs_done"] == 2
    assert [(h["epoch"], h["stage"]) for h in history(run)] == [(1, "main"), (2, "refit")]
