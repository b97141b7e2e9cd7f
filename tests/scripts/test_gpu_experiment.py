"""scripts/gpu_experiment.sh, dry: with PY=echo it prints the commands it would run. A device session is
rare and short, so a broken command line must fail here, not there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import typer

from augment.cli import app

ROOT = Path(__file__).resolve().parents[2]


def command_lines(tmp_path: Path, command: str, **env: str) -> list[list[str]]:
    """The ``augment <command>`` lines the script would run, split into words."""
    out = subprocess.run(
        ["bash", "scripts/gpu_experiment.sh", str(tmp_path / "cache.npz"), str(tmp_path / "out")],
        env={**os.environ, "PY": "echo", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split() for line in out.splitlines() if line.startswith(f"-m augment {command} ")]


def options_of(command: str) -> set[str]:
    cmd = typer.main.get_command(app).commands[command]
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def flags(words: list[str]) -> set[str]:
    return {w for w in words if w.startswith("--")}


def test_the_generator_stages_train_both_families_with_known_options(tmp_path):
    runs = {Path(w[w.index("--out") + 1]).name: w for w in command_lines(tmp_path, "gan-train", MODE="gan")}
    assert set(runs) == {"gan", "transfer"}
    assert "--recipe" not in runs["gan"] and runs["transfer"][runs["transfer"].index("--recipe") + 1] == "transfer"
    assert runs["transfer"][runs["transfer"].index("--steps") + 1] == "20000"  # a GPU gives it far more steps
    assert "--judge" in runs["transfer"]  # the noise run's grading judge scores both
    for words in runs.values():
        assert flags(words) <= options_of("gan-train")
    for run in ("gan", "transfer"):  # gan-eval scores the runs that have a checkpoint
        (tmp_path / "out" / run).mkdir(parents=True)
        (tmp_path / "out" / run / "checkpoint.pt").write_bytes(b"")
    evals = command_lines(tmp_path, "gan-eval", MODE="gan")
    grader = runs["transfer"][runs["transfer"].index("--judge") + 1]
    assert len(evals) == 2 and all(w[w.index("--judge") + 1] == grader for w in evals)  # one judge grades both
    assert "--guide" not in runs["transfer"]  # the guide is the run's own fer-cnn, never the grading judge
    assert all(flags(w) <= options_of("gan-eval") for w in evals)
    knobs = command_lines(tmp_path, "gan-train", MODE="gan", TRANSFER_STEPS="50", GAN_STEPS="40")
    assert [w[w.index("--steps") + 1] for w in knobs] == ["40", "50"]


def test_the_compare_stages_screen_then_grid_with_both_runs(tmp_path):
    screen, final = command_lines(tmp_path, "compare", MODE="compare")
    for words in (screen, final):
        assert flags(words) <= options_of("compare")
        assert {"--generator", "--transfer", "--models", "--budget"} <= flags(words)
        assert words[words.index("--budget") + 1] == "full"
        assert words[words.index("--models") + 1] == "fer-cnn,resnet18,resemotenet"
    assert screen[screen.index("--eval-split") + 1] == "val" and "--eval-split" not in final
    conditions = screen[screen.index("--conditions") + 1].split(",")
    assert {"baseline", "oversample", "gan+oversample", "transfer", "transfer+oversample"} <= set(conditions)
    assert final[final.index("--conditions") + 1].startswith("baseline,oversample,gan+oversample,")
