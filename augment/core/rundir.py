"""Run folders: config and versions beside the outputs, checkpoints, resume checks.

A run goes: check its settings (the config's ``validate``, ``augment.core.checks``) and its folder
(``open_run``), both without
writing anything; build and resume; then, when it will train, ``record_run`` writes config.json
and adds the invocation to run.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augment.core.atomic import as_json, save_torch, write_json
from augment.core.errors import UserError
from augment.core.identity import FolderIdentity, refuse_foreign
from augment.core.runtime import run_record

CONFIG_FILE = "config.json"
CHECKPOINT = "checkpoint.pt"
RUNS_FILE = "run.json"
# A run folder's settings are its config.json; a refusal names them by their keys, as config.json does.
IDENTITY = FolderIdentity(CONFIG_FILE, names=None, show=repr, form="{name}: was {was}, now {now}")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, raised once its checkpoint is saved; ``str()`` says where it stopped."""


# --------------------------------------------------------------------------- the run folder
@dataclass
class RunFolder:
    """A run folder checked for one invocation; nothing is written until ``record_run``."""

    path: Path
    kind: str
    config: dict[str, Any]  # this invocation's settings, as config.json will hold them
    old: dict[str, Any] | None  # config.json before this invocation
    resuming: bool  # a checkpoint is there to resume from
    recorded: bool = False  # record_run has written this invocation
    # What a setting an older config.json lacks was: the default of the code that wrote it (an option added
    # later defaults to what the code did before it existed).
    defaults: dict[str, Any] | None = None

    def changes(self) -> dict[str, dict[str, Any]]:
        """What this invocation changes in config.json: {key: {"was": old, "now": new}}."""
        old = self.before()
        changed = IDENTITY.differing(old, self.config, [k for k in self.config if k in old])
        return {k: {"was": old[k], "now": self.config[k]} for k in changed}

    def before(self) -> dict[str, Any]:
        """config.json before this invocation, a setting it lacks read as its default ({} for a new run)."""
        return {} if self.old is None else {**as_json(self.defaults or {}), **self.old}


def read_config(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's config.json, or None when it has none."""
    return IDENTITY.read(run_dir)


def open_run(
    run_dir: Path,
    config: dict[str, Any],
    kind: str,
    may_change: Sequence[str],
    defaults: dict[str, Any] | None = None,
) -> RunFolder:
    """Check that ``run_dir`` can take this run of ``kind``; writes nothing. ``defaults``: what a setting
    the folder's config.json lacks was (an option added since counts as its default, never as a change).

    A folder with a checkpoint is a run to resume: only the keys in ``may_change`` (how far to train,
    how often to log and checkpoint, where to run) may differ from its config.json; a learning rate,
    the data or the model may not. A folder with a config.json but no checkpoint is a start that never
    got that far (a crash, a mistyped option): it is not a run to protect, and starts again.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file; --out must be a folder")
    resuming = (run_dir / CHECKPOINT).exists()
    old = read_config(run_dir)
    if old is None:
        refuse_foreign(run_dir, f"{kind} run")
    elif old.get("kind") != kind:
        raise UserError(f"{run_dir} holds a {old.get('kind', 'different')} run, not a {kind} run; use a new --out")
    folder = RunFolder(run_dir, kind, as_json(config), old, resuming, defaults=defaults)
    if resuming:
        refused = [k for k in folder.changes() if k not in may_change]
        if refused:
            detail = IDENTITY.describe(folder.before(), folder.config, refused)
            raise UserError(
                f"{run_dir} holds a run with other settings ({detail}); a resume may change only "
                f"{', '.join(may_change)}: rerun with the old settings to resume, or use a new --out folder"
            )
    return folder


def record_run(folder: RunFolder) -> None:
    """Write config.json (the settings the run trains with from now on) and add this invocation, with
    what it changed, to run.json. Call it once the run is set up to train, on one process only; a second
    call in the same invocation writes nothing."""
    if folder.recorded:
        return
    folder.recorded = True
    folder.path.mkdir(parents=True, exist_ok=True)
    IDENTITY.write(folder.path, {"kind": folder.kind, **folder.config})
    record = run_record(folder.config)
    runs_file = folder.path / RUNS_FILE
    history = []
    if runs_file.exists():
        try:
            history = json.loads(runs_file.read_text()).get("invocations", [])
        except json.JSONDecodeError:
            history = []
    entry = {"command": record["command"], "resumed": folder.resuming, "changed": folder.changes()}
    write_json(runs_file, {**record, "invocations": history + [entry]})


# --------------------------------------------------------------------------- checkpoints
def load_checkpoint(path: Path) -> dict[str, Any]:
    """Checkpoints are data, not code: always ``weights_only=True``."""
    import torch

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no checkpoint here; train first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file
        raise UserError(f"{path}: unreadable ({type(err).__name__}: {err})".splitlines()[0]) from err


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    save_torch(Path(run_dir) / CHECKPOINT, state)
