"""Progress bars stay visible in logs: plain lines when stderr is not a terminal, none when quiet."""

from __future__ import annotations

import io

from rich.console import Console

import augment.core.progress as progress


def _run(monkeypatch, quiet: str) -> str:
    buf = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=buf, force_terminal=False, width=100))
    monkeypatch.setattr(progress._Progress, "LOG_SECONDS", 0.0)
    monkeypatch.setenv("AUGMENT_QUIET", quiet)
    with progress.make_progress() as prog:
        task = prog.add_task("training", total=3, info="")
        for i in range(3):
            prog.update(task, advance=1, info=f"loss {1.0 / (i + 1):.2f}")
    return buf.getvalue()


def test_plain_lines_in_logs(monkeypatch):
    text = _run(monkeypatch, "")
    assert "training: 1/3 loss 1.00" in text
    assert "training: 3/3 loss 0.33" in text


def test_quiet_prints_nothing(monkeypatch):
    assert _run(monkeypatch, "1") == ""
