"""Evaluating and predicting with a trained classifier: files, agreement between paths, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import classifier.train as train_mod
from augment.core.errors import UserError
from classifier.evaluate import evaluate_run, predict_files
from classifier.inference import load_classifier, predict_proba, prepare_images
from classifier.train import train_classifier
from tests.conftest import assert_one_line_error, run_cli, tiny_classifier_config, write_corrupt


def _train(demo_ds, run: Path, size: int) -> Path:
    cfg = tiny_classifier_config(batch_size=16, epochs=2, size=size, lr=3e-3)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(train_mod, "plot_curves", lambda history, path: None)
        train_classifier(demo_ds, run, cfg, progress=False)
    return run


@pytest.fixture(scope="module")
def run48(demo_ds, tmp_path_factory) -> Path:
    """A tiny model at the demo's own 48 px."""
    return _train(demo_ds, tmp_path_factory.mktemp("eval") / "run48", size=0)


@pytest.fixture(scope="module")
def run32(demo_ds, tmp_path_factory) -> Path:
    """A tiny model trained on the 48 px faces resized to 32 px."""
    return _train(demo_ds, tmp_path_factory.mktemp("eval") / "run32", size=32)


def direct_probs(run: Path, demo_ds) -> tuple[np.ndarray, np.ndarray]:
    """Test-split probabilities from the checkpoint, without evaluate_run."""
    model, meta = load_classifier(run)
    assert meta["classes"] == demo_ds.classes
    test = demo_ds.split("test")
    return predict_proba(model, prepare_images(test.images, meta)), test.labels


def file_accuracy(results: list[dict], paths: list[str]) -> float:
    # demo_dir is test/<class>/<file>.png: the folder is the truth
    return float(np.mean([r["top"] == Path(p).parent.name for r, p in zip(results, paths, strict=True)]))


@pytest.mark.parametrize("which", ["run48", "run32"])
def test_evaluate_matches_checkpoint_predictions_and_files(which, request, demo_ds, tmp_path):
    run = request.getfixturevalue(which)
    m = evaluate_run(run, demo_ds, split="test", out_dir=tmp_path / "eval")
    assert (tmp_path / "eval" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["accuracy"] == m["accuracy"] and saved["n"] == m["n"] == int((demo_ds.splits == "test").sum())
    assert saved["split"] == "test" and saved["model_epoch"] in (1, 2)
    assert np.array(saved["confusion_matrix"]).sum() == m["n"]

    probs, labels = direct_probs(run, demo_ds)
    assert m["accuracy"] == pytest.approx(float((probs.argmax(1) == labels).mean()))
    assert np.array(m["confusion_matrix"]).trace() == int((probs.argmax(1) == labels).sum())

    # predict_files decodes the PNG files itself: same probabilities, same accuracy
    paths = demo_ds.split("test").sources.tolist()
    results = predict_files(run, [Path(p) for p in paths])
    got = np.array([[r["probabilities"][c] for c in demo_ds.classes] for r in results])
    np.testing.assert_allclose(got, probs, atol=1e-6)
    assert file_accuracy(results, paths) == pytest.approx(m["accuracy"])


def test_evaluate_refuses_missing_split_and_missing_model(run48, demo_ds, tmp_path):
    with pytest.raises(UserError, match="no 'val' split"):
        evaluate_run(run48, demo_ds, split="val", out_dir=tmp_path / "e")
    with pytest.raises(UserError, match="no trained model"):
        evaluate_run(tmp_path, demo_ds)


def test_cli_train_evaluate_predict(capsys, demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(train_mod, "plot_curves", lambda history, path: None)
    run = tmp_path / "run"
    args = ["--model", "simple-cnn", "--width", "0.25", "--size", "24", "--batch-size", "16", "--epochs", "1"]
    code, out, err = run_cli(capsys, "train", demo_dir, "--out", run, *args, "--device", "cpu")
    assert code == 0, err
    assert "best epoch 1" in out and (run / "model.pt").is_file()

    code, out, err = run_cli(capsys, "evaluate", run, demo_dir, "--json", "--device", "cpu", "--out", tmp_path / "ev")
    assert code == 0, err
    m = json.loads(out)
    assert m["n"] == 32 and 0 <= m["accuracy"] <= 1 and set(m["per_class"]) == set(m["classes"])
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["accuracy"] == m["accuracy"]

    test_files = sorted((demo_dir / "test").glob("*/*.png"))
    code, out, err = run_cli(capsys, "predict", run, *test_files, "--json", "--device", "cpu")
    assert code == 0, err
    results = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["path"] for r in results] == [str(p) for p in test_files]
    for r in results:
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert r["top"] == max(r["probabilities"], key=r["probabilities"].get)
    assert file_accuracy(results, [str(p) for p in test_files]) == pytest.approx(m["accuracy"])

    code, _, err = run_cli(capsys, "predict", run, tmp_path / "nope.png", "--device", "cpu")
    assert_one_line_error(code, err, "nope.png", "no such image file")
    bad = write_corrupt(tmp_path / "bad.png")
    code, _, err = run_cli(capsys, "predict", run, test_files[0], bad, "--device", "cpu")
    assert_one_line_error(code, err, "bad.png", "cannot read image")
    code, _, err = run_cli(capsys, "predict", tmp_path / "empty", test_files[0], "--device", "cpu")
    assert_one_line_error(code, err, "no trained model")
