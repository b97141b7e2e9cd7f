"""Run folders: config and versions beside the outputs, checkpoints, resume checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from augment.core.atomic import save_torch, write_json
from augment.core.errors import UserError
from augment.core.runtime import run_record

CONFIG_FILE = "config.json"
CHECKPOINT = "checkpoint.pt"


def read_config(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: unreadable run config ({err}); use a new --out folder") from err


def start_or_resume(run_dir: Path, config: dict[str, Any], must_match: list[str], kind: str) -> bool:
    """Write the run's config, or check that an existing run can be resumed with it.

    Returns True when a checkpoint exists to resume from. Keys in ``must_match`` (data,
    model shape, ...) must be unchanged; others (steps, logging) may change on resume.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file; --out must be a folder")
    old = read_config(run_dir)
    if old is None:
        if run_dir.exists() and any(p for p in run_dir.iterdir() if not p.name.startswith(".")):
            raise UserError(f"{run_dir} is not empty and holds no {kind} run; choose a new --out folder")
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        if old.get("kind") != kind:
            raise UserError(f"{run_dir} holds a {old.get('kind', 'different')} run, not a {kind} run; use a new --out")
        diffs = [k for k in must_match if old.get(k) != config.get(k)]
        if diffs:
            detail = "; ".join(f"{k}: was {old.get(k)!r}, now {config.get(k)!r}" for k in diffs)
            raise UserError(
                f"{run_dir} holds a run with different settings ({detail}); "
                "use a new --out folder, or rerun with the old settings to resume"
            )
    write_json(run_dir / CONFIG_FILE, {"kind": kind, **config})
    record = run_record(config)
    runs_file = run_dir / "run.json"
    history = []
    if runs_file.exists():
        try:
            history = json.loads(runs_file.read_text()).get("invocations", [])
        except json.JSONDecodeError:
            history = []
    write_json(runs_file, {**record, "invocations": history + [{"command": record["command"]}]})
    return (run_dir / CHECKPOINT).exists()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Checkpoints are data, not code: always ``weights_only=True``."""
    import torch

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no checkpoint here; train first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise UserError(f"{path}: cannot load checkpoint ({type(err).__name__}: {err})".splitlines()[0]) from err


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    save_torch(Path(run_dir) / CHECKPOINT, state)
