"""Evaluating and predicting with a trained classifier: files, agreement between paths, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import classifier.validation as validation_mod
from augment.core.errors import UserError
from augment.core.readers import load_dataset
from classifier.evaluate import evaluate_run, predict_files
from classifier.inference import load_classifier, predict_proba, prepare_images
from classifier.train import train_classifier
from tests.conftest import (
    assert_one_line_error,
    make_ckplus,
    make_folder_tree,
    quiet_env,
    run_cli,
    tiny_classifier_config,
    write_corrupt,
)

FER2013_CLASSES = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "angry"]  # no contempt


def _train(demo_ds, run: Path, size: int) -> Path:
    cfg = tiny_classifier_config(batch_size=16, epochs=2, size=size, lr=3e-3)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(validation_mod, "plot_curves", lambda history, path: None)
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
    results, failed = predict_files(run, [Path(p) for p in paths])
    assert failed == []
    got = np.array([[r["probabilities"][c] for c in demo_ds.classes] for r in results])
    np.testing.assert_allclose(got, probs, atol=1e-6)
    assert file_accuracy(results, paths) == pytest.approx(m["accuracy"])


def test_evaluate_refuses_missing_split_and_missing_model(run48, demo_ds, tmp_path):
    with pytest.raises(UserError, match="no 'val' split"):
        evaluate_run(run48, demo_ds, split="val", out_dir=tmp_path / "e")
    with pytest.raises(UserError, match="no trained model"):
        evaluate_run(tmp_path, demo_ds)


def test_cli_train_evaluate_predict(capsys, demo_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(validation_mod, "plot_curves", lambda history, path: None)
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
    # a bad file in a batch is reported on one line and skipped; the others are still predicted; exit 1
    bad = write_corrupt(tmp_path / "bad.png")
    code, out, err = run_cli(capsys, "predict", run, test_files[0], bad, test_files[1], "--json", "--device", "cpu")
    assert code == 1, err
    assert [json.loads(line)["path"] for line in out.strip().splitlines()] == [str(test_files[0]), str(test_files[1])]
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err, err
    assert lines[0].startswith(f"{bad}: cannot read image (UnidentifiedImageError") and lines[0].endswith("skipped")
    assert lines[1] == "error: 1 of 3 image(s) could not be read (listed above)"
    code, _, err = run_cli(capsys, "predict", tmp_path / "empty", test_files[0], "--device", "cpu")
    assert_one_line_error(code, err, "no trained model")


# --------------------------------------------------------------------------- cross-dataset evaluation
@pytest.fixture(scope="module")
def fer_run(demo_ds, tmp_path_factory) -> Path:
    """A tiny model trained on FER2013's seven classes (the demo faces without contempt)."""
    return _train(demo_ds.with_classes(FER2013_CLASSES), tmp_path_factory.mktemp("eval") / "fer7", size=24)


def expected_scores(run: Path, part) -> tuple[float, np.ndarray, np.ndarray]:
    """Accuracy computed by hand from the checkpoint on ``part`` (already on the model's classes)."""
    model, meta = load_classifier(run)
    pred = predict_proba(model, prepare_images(part.images, meta)).argmax(1)
    return float((pred == part.labels).mean()), pred, part.labels


def test_evaluate_ckplus_tree_without_split_folders(fer_run, tmp_path):
    with quiet_env():
        ck = load_dataset(make_ckplus(tmp_path / "ck48"))  # anger, contempt, ... surprise; no neutral; no splits
    assert set(ck.splits.tolist()) == {"train"} and "contempt" in ck.classes and "neutral" not in ck.classes
    n_contempt = ck.counts()["contempt"]
    m = evaluate_run(fer_run, ck, out_dir=tmp_path / "ev")

    assert m["split"] == "all" and m["classes"] == FER2013_CLASSES
    assert m["dropped_classes"] == {"contempt": n_contempt} and m["absent_classes"] == ["neutral"]
    assert m["n"] == len(ck) - n_contempt
    assert m["per_class"]["neutral"]["support"] == 0
    assert m["per_class"]["angry"]["support"] == ck.counts()["angry"]
    shared = [c for c in FER2013_CLASSES if c != "neutral"]
    assert m["macro_f1"] == pytest.approx(np.mean([m["per_class"][c]["f1"] for c in shared]))
    acc, _, _ = expected_scores(fer_run, ck.with_classes(shared).remap_to(FER2013_CLASSES))
    assert m["accuracy"] == pytest.approx(acc)
    assert any("only a train split" in note for note in m["notes"])
    assert any(f"contempt ({n_contempt})" in note for note in m["notes"])
    assert any("macro-F1: neutral" in note for note in m["notes"])
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["dropped_classes"] == m["dropped_classes"] and saved["split"] == "all"


def test_evaluate_other_tree_with_splits(fer_run, tmp_path):
    layout = {"train/happy": 3, "test/happy": 4, "test/sad": 3, "test/contempt": 2}
    with quiet_env():
        ds = load_dataset(make_folder_tree(tmp_path / "other", layout, size=20))
    m = evaluate_run(fer_run, ds, out_dir=tmp_path / "ev")  # two splits: the test split by default
    assert m["split"] == "test" and m["n"] == 7 and m["dropped_classes"] == {"contempt": 2}
    assert m["absent_classes"] == ["neutral", "surprise", "fear", "disgust", "angry"]
    assert not any("split" in note for note in m["notes"])
    assert m["macro_f1"] == pytest.approx((m["per_class"]["happy"]["f1"] + m["per_class"]["sad"]["f1"]) / 2)
    m_all = evaluate_run(fer_run, ds, split="all", out_dir=tmp_path / "ev_all")
    assert m_all["split"] == "all" and m_all["n"] == 10

    with pytest.raises(UserError, match="--split holdout: use train, val, test or all"):
        evaluate_run(fer_run, ds, split="holdout")
    with quiet_env():
        only_contempt = load_dataset(make_folder_tree(tmp_path / "contempt", {"contempt": 3}, size=20))
    with pytest.raises(UserError, match="no images of the model's classes"):
        evaluate_run(fer_run, only_contempt, out_dir=tmp_path / "e3")


def test_cli_evaluate_other_dataset(capsys, fer_run, tmp_path):
    ck = make_ckplus(tmp_path / "ck48")
    n = len(list((ck / "contempt").glob("*.png")))
    code, out, err = run_cli(capsys, "evaluate", fer_run, ck, "--device", "cpu", "--out", tmp_path / "ev")
    assert code == 0, err
    text = " ".join(out.split())
    assert "only a train split" in text and "evaluating all of its images" in text
    assert f"dropped {n} images of classes the model was not trained on: contempt ({n})" in text
    assert "not in the data, so left out of macro-F1: neutral" in text
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert f"accuracy {m['accuracy']:.4f}" in text and f"macro-F1 {m['macro_f1']:.4f}" in text

    code, out, err = run_cli(capsys, "evaluate", fer_run, ck, "--json", "--device", "cpu", "--out", tmp_path / "ev")
    assert code == 0, err
    assert json.loads(out)["dropped_classes"] == {"contempt": n}
    code, _, err = run_cli(capsys, "evaluate", fer_run, ck, "--split", "test", "--device", "cpu")
    assert_one_line_error(code, err, "no 'test' split", "--split all")
