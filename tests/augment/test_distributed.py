"""torchrun with 2 CPU processes (gloo): rank-0-only outputs, identical parameters, resume in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from augment.core.atomic import read_jsonl
from tests.conftest import tiny_classifier_config, tiny_gan_config

pytestmark = pytest.mark.usefixtures("quiet")

WORKER = Path(__file__).resolve().parents[1] / "distributed_worker.py"


def torchrun(kind: str, data: Path, run: Path, report: Path) -> None:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "AUGMENT_QUIET": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        kind,
        str(data),
        str(run),
        str(report),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def rank_reports(report: Path) -> list[dict]:
    return [json.loads((report / f"rank{r}.json").read_text()) for r in (0, 1)]


def test_gan_train_ddp_two_processes_then_resume_alone(demo_dir: Path, demo_ds, tmp_path: Path) -> None:
    run, report = tmp_path / "gan", tmp_path / "report"
    torchrun("gan", demo_dir, run, report)
    r0, r1 = rank_reports(report)
    assert (r0["world"], r1["world"]) == (2, 2)
    assert r0["parameter_digest"] == r1["parameter_digest"], "ranks diverged"
    assert r0["step"] == r1["step"] == 4
    # Rank 0 alone wrote the outputs: one metrics line per step (not two), one invocation recorded.
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4]
    assert len(json.loads((run / "run.json").read_text())["invocations"]) == 1
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000004.png"]

    # The checkpoint resumes in a single process and the step count continues.
    from gan.train import train_gan

    cfg = tiny_gan_config(demo_ds, 6, batch_size=8, log_every=1, sample_every=100, checkpoint_every=2)
    summary = train_gan(demo_ds, run, cfg, progress=False)
    assert summary["world"] == 1 and summary["step"] == 6 and summary["steps_this_run"] == 2
    assert [m["step"] for m in read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]


def test_train_ddp_two_processes_then_resume_alone(demo_dir: Path, demo_ds, tmp_path: Path) -> None:
    run, report = tmp_path / "clf", tmp_path / "report"
    torchrun("train", demo_dir, run, report)
    r0, r1 = rank_reports(report)
    assert r0["parameter_digest"] == r1["parameter_digest"], "ranks diverged"
    assert r0["epochs_done"] == r1["epochs_done"] == 2
    assert [h["epoch"] for h in read_jsonl(run / "history.jsonl")] == [1, 2]
    assert len(json.loads((run / "run.json").read_text())["invocations"]) == 1

    from classifier.train import train_classifier

    cfg = tiny_classifier_config(epochs=3, batch_size=8, epoch_samples=32)
    summary = train_classifier(demo_ds, run, cfg, progress=False)
    assert summary["world"] == 1 and summary["epochs_done"] == 3
    assert [h["epoch"] for h in read_jsonl(run / "history.jsonl")] == [1, 2, 3]


def test_compare_hands_each_run_to_torchrun(demo_ds, tiny_gan_run: Path, tmp_path: Path, monkeypatch) -> None:
    from augment import compare

    budget = compare.Budget("tiny-ddp", epochs=1, epoch_samples=64, patience=0, batch_size=16)
    monkeypatch.setitem(compare.BUDGETS, budget.name, budget)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = compare.CompareSpec(
        models=["simple-cnn"], conditions=["baseline"], seeds=1, budget=budget.name, min_prob=0, device="cpu", nproc=2
    )
    summary = compare.run_compare(demo_ds, tiny_gan_run, tmp_path / "report", spec, progress=False)
    run = tmp_path / "report" / "runs" / "simple-cnn" / "baseline" / "seed0"
    trained = json.loads((run / "summary.json").read_text())
    assert trained["world"] == 2  # the run was trained by two torchrun processes
    assert len(summary["runs"]) == 1 and 0 <= summary["runs"][0]["accuracy"] <= 1
    assert not list(run.parent.glob(".*.data.npz"))  # the hand-over cache is cleaned up
