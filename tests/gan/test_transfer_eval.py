"""gan-eval on an expression-transfer run: today's per-class figures, plus identity kept and expression
changed, and the source -> translation picture."""

from __future__ import annotations

import shutil

import pytest

from gan.evaluate import evaluate_gan

pytestmark = pytest.mark.usefixtures("quiet")


def test_gan_eval_of_a_transfer_run(demo_ds, tiny_transfer_run, tiny_judge_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_transfer_run, run)
    report = evaluate_gan(run, demo_ds, judge_dir=tiny_judge_run, per_class=6, progress=False, cas_seeds=2)
    assert report["recipe"] == "transfer" and report["cas"] and len(report["cas_over_seeds"]["seeds"]) == 2
    t = report["transfer"]
    assert set(t["per_class"]) == set(report["judge"]["sample_assignment"])
    for v in t["per_class"].values():
        assert all(0 <= v[k] <= 1 for k in ("identity_kept", "source_prob_before", "source_prob_after", "still_source"))
    assert 0 < t["chance_identity"] < 0.02
    assert (run / "eval" / "transfer.png").stat().st_size > 0 and (run / "eval" / "metrics.json").exists()


def test_an_unchanged_face_keeps_its_identity_and_its_expression(
    demo_ds, tiny_transfer_run, tiny_judge_run, tmp_path, monkeypatch
):
    """A 'translation' that returns its source: the nearest training face is always the source, and the judge
    sees the source class as often on the translation as on the source."""
    import gan.translate

    monkeypatch.setattr(gan.translate, "translate", lambda g, faces, target, device="cpu": faces.copy())
    run = tmp_path / "run"
    shutil.copytree(tiny_transfer_run, run)
    t = evaluate_gan(run, demo_ds, judge_dir=tiny_judge_run, per_class=6, progress=False, cas_seeds=1)["transfer"]
    assert t["mean_identity_kept"] == 1.0 and t["mean_identity_kept_pixels"] == 1.0
    for v in t["per_class"].values():
        assert v["source_prob_after"] == pytest.approx(v["source_prob_before"])


def test_a_translation_into_another_person_loses_its_identity_in_pixels(
    demo_ds, tiny_transfer_run, tiny_judge_run, tmp_path, monkeypatch
):
    """A 'translation' that returns another source's face: its nearest training face in pixels is that other
    face, never its own source."""
    import gan.translate

    monkeypatch.setattr(gan.translate, "translate", lambda g, faces, target, device="cpu": faces[::-1].copy())
    run = tmp_path / "run"
    shutil.copytree(tiny_transfer_run, run)
    t = evaluate_gan(run, demo_ds, judge_dir=tiny_judge_run, per_class=6, progress=False, cas_seeds=1)["transfer"]
    assert t["mean_identity_kept_pixels"] < 0.2


def test_gan_eval_cli_prints_the_transfer_figures(demo_dir, tiny_transfer_run, tiny_judge_run, tmp_path, capsys):
    from tests.conftest import run_cli

    run = tmp_path / "run"
    shutil.copytree(tiny_transfer_run, run)
    args = ["gan-eval", run, demo_dir, "--judge", tiny_judge_run, "--per-class", "4", "--cas-seeds", "1"]
    code, out, err = run_cli(capsys, *args, "--device", "cpu")
    assert code == 0, err
    flat = " ".join(out.split())
    assert "identity kept and expression changed" in flat and "eval/transfer.png" in flat and "(pixels)" in flat
