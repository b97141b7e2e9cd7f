"""``rebalance``'s quality filter: the judge, near-copies of training faces, limits on tries, and the
manifest row that reproduces a kept face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from augment.core.errors import UserError
from augment.core.manifest import read_manifest
from augment.plan import ClassPlan
from augment.rebalance import run_rebalance
from augment.synthesis import QualityFilter, synthesize
from tests.augment.rebalance.helpers import only, stub_judge

pytestmark = pytest.mark.usefixtures("quiet")


def test_judge_filter_drops_and_keeps_generating(data, plan, tiny_gan_run):
    from gan.sample import generate_images, load_generator

    train = data.split("train")
    judge = stub_judge(data)
    quality = QualityFilter(min_prob=0.5, drop_near_copies=False)
    syn, report = synthesize(only(plan, "disgust"), tiny_gan_run, train, judge, quality, seed=2, progress=False)
    r = report["per_class"]["disgust"]
    # 64 candidates per round, 4 of them accepted: 5 rounds for 19 images
    assert (r["added"], r["generated"], r["dropped_by_judge"], r["dropped_near_copies"]) == (19, 320, 300, 0)
    assert judge[0].calls == 5 and report["min_prob"] == 0.5
    assert len(syn) == 19 and syn.synthetic.all() and set(syn.splits.tolist()) == {"train"}
    assert set(syn.labels.tolist()) == {data.classes.index("disgust")}
    # the kept images are candidates 0, 16, 32, ... of the fixed candidate order
    g, meta = load_generator(tiny_gan_run)
    cand = generate_images(
        g, np.full(320, meta["classes"].index("disgust")), seed=2 * 1000 + meta["classes"].index("disgust")
    )
    assert np.array_equal(syn.images, cand[::16][:19])


def test_impossible_filter_raises_instead_of_looping(data, plan, tiny_gan_run):
    train = data.split("train")
    judge = stub_judge(data, yes="disgust", no="happy")  # never says contempt
    quality = QualityFilter(min_prob=0.5, drop_near_copies=False, max_tries=5)
    with pytest.raises(UserError, match=r"contempt: only 0 of 18 samples passed the quality filter"):
        synthesize(only(plan, "contempt"), tiny_gan_run, train, judge, quality, progress=False)
    assert judge[0].calls == 2  # 5 tries × 18 = 90 candidates: two rounds of 64, then it stops

    with pytest.raises(UserError, match="needs a judge"):
        synthesize(plan, tiny_gan_run, train, None, QualityFilter(min_prob=0.5), progress=False)
    model, meta = stub_judge(data.with_classes(["happy", "disgust"]))
    with pytest.raises(UserError, match="judge classifier cannot score contempt"):
        synthesize(only(plan, "contempt"), tiny_gan_run, train, (model, meta), quality, progress=False)


def test_a_hopeless_pass_rate_stops_early_with_its_rate(data, plan, tiny_gan_run):
    """1 in 256 candidates passes: after one round of 1,024 (EARLY_TRIES) not even twice that rate could
    fill 700 faces within 30 tries per wanted image, so it stops there, not after 21,000 tries."""
    train = data.split("train")
    judge = stub_judge(data, every=256)
    big = [ClassPlan(p.name, p.real, p.real + 700, 700 if p.name == "disgust" else 0) for p in plan]
    with pytest.raises(UserError, match=r"disgust: only 4 of 700 samples .* 1024 tries \(0\.4%.*lower --min-prob or"):
        synthesize(big, tiny_gan_run, train, judge, QualityFilter(min_prob=0.5, drop_near_copies=False))


def test_the_min_prob_hint_names_a_threshold_that_would_fill():
    from augment.synthesis import _min_prob_hint

    probs = np.linspace(0, 0.3, 600, endpoint=False)  # a sixth of them at 0.25 or more
    assert _min_prob_hint(probs, QualityFilter(min_prob=0.3)) == "--min-prob 0.25 would pass 17% of them"
    assert _min_prob_hint(probs, QualityFilter(min_prob=0.3, max_tries=5)) == "--min-prob 0.15 would pass 50% of them"
    assert _min_prob_hint(np.zeros(600), QualityFilter(min_prob=0.3)) == ""
    assert _min_prob_hint(probs, QualityFilter(min_prob=0.0, drop_near_copies=True)) == ""


def test_near_copies_of_training_faces_are_dropped(data, plan, tiny_gan_run, monkeypatch):
    """With every training face planted as a 'generated' one, the near-copy filter must catch them."""
    import gan.sample
    import gan.translate

    train = data.split("train")
    real_disgust = train.images[train.labels == data.classes.index("disgust")]
    real_generate = gan.sample.generate_images

    def copies_first(g, labels, seed, device="cpu", batch=256, offset=0):
        out = real_generate(g, labels, seed, device, batch, offset)
        if offset == 0:
            out[: len(real_disgust)] = real_disgust  # the first candidates copy training faces
        return out

    monkeypatch.setattr(gan.translate, "generate_images", copies_first)
    syn, report = synthesize(
        only(plan, "disgust"), tiny_gan_run, train, None, QualityFilter(min_prob=0), progress=False
    )
    r = report["per_class"]["disgust"]
    assert r["dropped_near_copies"] >= len(real_disgust) and r["added"] == 19
    assert report["near_copy_threshold"] > 0
    kept = {im.tobytes() for im in syn.images}
    assert not kept & {im.tobytes() for im in real_disgust}


def test_manifest_row_reproduces_its_file_bit_exactly(data, plan, tiny_gan_run, tmp_path):
    """(run, step, seed, index) of a synthetic row give its file back through gan.sample, also when the
    filter skipped candidates: the index (and the file name) is the noise index, not the accepted count."""
    from PIL import Image

    from gan.sample import generate_images, load_generator

    out = tmp_path / "out"
    quality = QualityFilter(min_prob=0.5, drop_near_copies=False)
    judge = stub_judge(data, every=5)  # accepts positions 0, 5, 10, ... of each 64-candidate round
    run_rebalance(data, tiny_gan_run, out, only(plan, "disgust"), judge, quality, seed=4, progress=False)
    syn = [r for r in read_manifest(out) if r["source"] == "synthetic"]
    assert [int(r["index"]) for r in syn] == [start + k for start in (0, 64) for k in range(0, 64, 5)][:19]
    g, meta = load_generator(tiny_gan_run)
    for r in syn:
        assert Path(r["generator_run"]) == tiny_gan_run.resolve() and int(r["checkpoint_step"]) == meta["step"]
        label = np.array([meta["classes"].index(r["label"])])
        face = generate_images(g, label, seed=int(r["seed"]), offset=int(r["index"]))[0]
        with Image.open(out / r["path"]) as im:
            assert np.array_equal(np.asarray(im), face[0]), r["path"]


@pytest.fixture(scope="module")
def tiny_judge(tiny_judge_run):
    from classifier.inference import load_classifier

    return load_classifier(tiny_judge_run, device="cpu")


def test_a_real_judge_with_a_low_threshold(data, plan, tiny_gan_run, tiny_judge, tmp_path):
    quality = QualityFilter(min_prob=1e-6)
    summary = run_rebalance(
        data, tiny_gan_run, tmp_path / "out", only(plan, "disgust"), tiny_judge, quality, progress=False
    )
    r = summary["synthesis"]["per_class"]["disgust"]
    assert r["added"] == 19 and r["dropped_by_judge"] == 0 and summary["synthesis"]["min_prob"] == 1e-6
    assert summary["synthetic_files"] == 19
