"""scripts/gpu_experiment.sh, dry: with PY=echo it prints the commands it would run. A device session is
rare and short, so a broken command line must fail here, not there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import typer

from augment.cli import app

ROOT = Path(__file__).resolve().parents[2]


def gan_train_lines(tmp_path: Path, **env: str) -> dict[str, list[str]]:
    """The gan-train command lines of MODE=gan, by run folder name."""
    out = subprocess.run(
        ["bash", "scripts/gpu_experiment.sh", str(tmp_path / "cache.npz"), str(tmp_path / "out")],
        env={**os.environ, "PY": "echo", "MODE": "gan", **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line.split() for line in out.splitlines() if line.startswith("-m augment gan-train")]
    return {Path(words[words.index("--out") + 1]).name: words for words in lines}


def gan_train_options() -> set[str]:
    command = typer.main.get_command(app).commands["gan-train"]
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


def test_each_variant_trains_with_all_its_options(tmp_path):
    runs = gan_train_lines(tmp_path)
    assert set(runs) == {"gan", "gan-old", "gan-no-lecam", "gan-expo"}
    assert runs["gan-old"][-6:] == ["--color-p", "1", "--ms-weight", "0", "--lecam-weight", "0"]  # the old recipe
    assert runs["gan-no-lecam"][-2:] == ["--lecam-weight", "0"]
    assert runs["gan-expo"][-1] == "--exposure-norm"
    for words in runs.values():  # every option is one gan-train knows, and variants share the default's judge
        assert {w for w in words if w.startswith("--")} <= gan_train_options()
    assert all("--judge" in words for name, words in runs.items() if name != "gan")


def test_a_variant_may_hold_several_options_and_none_is_none(tmp_path):
    runs = gan_train_lines(tmp_path, VARIANTS="both:--lecam-weight 0.3 --cond-ramp 300;p:--color-p 0.25")
    assert set(runs) == {"gan", "gan-both", "gan-p"}
    assert runs["gan-both"][-4:] == ["--lecam-weight", "0.3", "--cond-ramp", "300"]
    assert set(gan_train_lines(tmp_path, VARIANTS="")) == {"gan"}
