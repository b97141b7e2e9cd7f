"""``rebalance`` with an expression-transfer run: every synthetic file names its source face, the judge
drops faces that keep their source's expression, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from augment.core.manifest import check_folder, read_manifest
from augment.core.readers import load_dataset
from augment.rebalance import run_rebalance
from augment.synthesis import QualityFilter, synthesize
from tests.augment.rebalance.helpers import OFF, only
from tests.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.usefixtures("quiet")


def test_each_translated_file_names_its_source_and_reads_back_synthetic(data, plan, tiny_transfer_run, tmp_path):
    out = tmp_path / "out"
    summary = run_rebalance(data, tiny_transfer_run, out, only(plan, "disgust"), None, OFF, seed=3, progress=False)
    assert summary["synthesis"]["recipe"] == "transfer" and summary["synthetic_files"] == 19
    assert check_folder(out) == []
    rows = [r for r in read_manifest(out) if r["source"] == "synthetic"]
    train = data.split("train")
    by_file = dict(zip(train.sources.tolist(), train.labels.tolist(), strict=True))
    assert len(rows) == 19 and len({r["source_file"] for r in rows}) == 19  # 19 different people
    for r in rows:
        assert r["label"] == "disgust" and r["path"].startswith("train/disgust/syn_disgust_")
        assert data.classes[by_file[r["source_file"]]] == r["source_class"] != "disgust"
    assert all(r["source_file"] == "" for r in read_manifest(out) if r["source"] == "real")
    back = load_dataset(out)
    assert int(back.synthetic.sum()) == 19
    assert set(back.sources[back.synthetic].tolist()) == {str(out / r["path"]) for r in rows}
    # train reads the folder back with every translated face marked, and keeps them out of validation
    from classifier.train import train_classifier
    from tests.conftest import tiny_classifier_config

    train_classifier(back, tmp_path / "clf", tiny_classifier_config(epochs=1), progress=False)
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["synthetic_train_images"] == 19


class SourceJudge(torch.nn.Module):
    """Gives every face disgust 0.45 and happy 0.55: it passes --min-prob 0.2 but still looks happy."""

    def __init__(self, classes):
        super().__init__()
        self.logits = torch.full((len(classes),), -30.0)
        self.logits[classes.index("disgust")], self.logits[classes.index("happy")] = np.log(0.45), np.log(0.55)

    def forward(self, x):
        return self.logits.expand(len(x), -1)


def test_a_face_that_keeps_its_source_expression_is_dropped(data, plan, tiny_transfer_run):
    judge = SourceJudge(data.classes), {"classes": data.classes, "size": data.size, "channels": data.channels}
    quality = QualityFilter(min_prob=0.2, drop_near_copies=False)
    train = data.split("train")
    syn, report = synthesize(
        only(plan, "disgust"), tiny_transfer_run, train, judge, quality, progress=False, source_classes=["happy", "sad"]
    )
    r = report["per_class"]["disgust"]
    from augment.core.manifest import parse_source_face

    assert {parse_source_face(s)[0] for s in syn.sources} == {"sad"}  # the happy sources still look happy
    assert r["added"] == 19 and r["dropped_by_judge"] == 0 and r["dropped_source_expression"] > 0


def test_a_face_left_unchanged_is_dropped(data, plan, tiny_transfer_run, monkeypatch):
    """A 'translation' that leaves every other source as it was: those are dropped as unchanged, the rest kept."""
    import gan.translate

    def half_unchanged(g, faces, target, device="cpu"):
        out = faces.copy()
        out[1::2] = 255 - out[1::2]
        return out

    monkeypatch.setattr(gan.translate, "translate", half_unchanged)
    syn, report = synthesize(
        only(plan, "disgust"), tiny_transfer_run, data.split("train"), None, QualityFilter(min_prob=0), progress=False
    )
    r = report["per_class"]["disgust"]
    assert r["added"] == 19 and r["dropped_unchanged"] == 32 and r["generated"] == 64  # the even 32 of 64
    assert r["dropped_near_copies"] == 0


def test_cli_source_classes_and_their_refusals(demo_dir, tiny_gan_run, tiny_transfer_run, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["rebalance", demo_dir, "--generator", tiny_transfer_run, "--min-prob", "0", "--classes", "disgust"]
    code, _, err = run_cli(capsys, *base, "--out", out, "--source-classes", "pride")
    assert_one_line_error(code, err, "--source-classes pride")
    code, _, err = run_cli(
        capsys, "rebalance", demo_dir, "--generator", tiny_gan_run, "--out", out, "--source-classes", "happy"
    )
    assert_one_line_error(code, err, "--source-classes", "noise run")
    assert not out.exists()
    code, _, err = run_cli(capsys, *base, "--out", out, "--source-classes", "happy", "--target", "10")
    assert code == 0, err
    rows = [r for r in read_manifest(out) if r["source"] == "synthetic"]
    assert rows and {r["source_class"] for r in rows} == {"happy"}
    code, _, err = run_cli(capsys, *base, "--out", out, "--source-classes", "sad", "--target", "10")
    assert_one_line_error(code, err, "--source-classes")  # another source choice is another output


def test_without_a_val_split_the_carved_validation_faces_are_never_sources(demo_ds, tiny_transfer_run, tmp_path):
    """Data with train and test only: the validation faces every command would carve are written as val/ and
    none of them (nor a test face) is the source of a translated face."""
    from augment.plan import plan_rebalance
    from gan.translate import with_validation

    carved = with_validation(demo_ds)
    plan = plan_rebalance(carved.counts("train"), "max", ["disgust", "fear"])
    out = tmp_path / "out"
    summary = run_rebalance(demo_ds, tiny_transfer_run, out, plan, None, OFF, progress=False)
    rows = read_manifest(out)
    held = set(carved.sources[carved.splits != "train"].tolist())
    sources = {r["source_file"] for r in rows if r["source"] == "synthetic"}
    assert summary["splits"]["val"] == int((carved.splits == "val").sum()) > 0 and len(sources) > 10
    assert not sources & held
    assert {r["origin"] for r in rows if r["split"] == "val"} == set(carved.sources[carved.splits == "val"].tolist())
