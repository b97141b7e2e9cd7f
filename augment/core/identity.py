"""Folder identity: the settings a folder was made with, kept in one JSON file in it, and the one rule
that sets a later call's settings against them.

Three kinds of folder have one: a run folder (``config.json``, :mod:`augment.core.rundir`), the face
folder of ``generate`` or ``rebalance`` (``.<command>.json``, :mod:`augment.core.manifest`) and a
``compare`` report folder (``compare.json``). Each kind decides which differences it refuses; this
module reads and writes the file, finds the settings that differ and words the refusal: each setting
named as the user typed it (:func:`option_name`), with its old and new value when they are short.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.core.atomic import as_json, write_json
from augment.core.errors import UserError

SHORT = 120  # a change whose two values together are longer than this is named without them


def option_name(key: str, names: Mapping[str, str]) -> str:
    """What the user typed for setting ``key``: its entry in ``names`` (an argument, or a setting several
    options make), else the option of that name (``min_prob`` → ``--min-prob``)."""
    return names.get(key) or "--" + key.replace("_", "-")


@dataclass(frozen=True)
class FolderIdentity:
    """How one kind of folder keeps its settings, and how a refusal names them."""

    file: str  # the JSON file in the folder that holds the settings
    # setting key -> what the user typed for it (see option_name); None: name each setting by its key
    names: Mapping[str, str] | None = field(default_factory=dict)
    show: Callable[[Any], str] = json.dumps  # a value in a refusal
    form: str = "{name} was {was}, now {now}"  # one change in a refusal

    def read(self, folder: str | Path) -> dict[str, Any] | None:
        """The settings ``folder`` holds, or None when it holds none."""
        path = Path(folder) / self.file
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"{path}: unreadable ({err}); use a new --out folder") from err

    def write(self, folder: str | Path, settings: Mapping[str, Any]) -> None:
        write_json(Path(folder) / self.file, dict(settings))

    def name(self, key: str) -> str:
        return key if self.names is None else option_name(key, self.names)

    def differing(self, old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
        """The ``keys`` whose value differs between ``old`` (as read back) and ``new`` (compared as it
        would be stored); a key one side lacks reads as None."""
        stored = as_json(dict(new))
        return [k for k in keys if old.get(k) != stored.get(k)]

    def change(self, key: str, was: Any, now: Any) -> str:
        was_text, now_text = self.show(was), self.show(now)
        if len(was_text) + len(now_text) > SHORT:
            return f"{self.name(key)} differs"
        return self.form.format(name=self.name(key), was=was_text, now=now_text)

    def describe(self, old: Mapping[str, Any], new: Mapping[str, Any], keys: Iterable[str]) -> str:
        """Each of ``keys`` that differs, worded for a refusal ('' when none does)."""
        stored = as_json(dict(new))
        return "; ".join(self.change(k, old.get(k), stored.get(k)) for k in self.differing(old, stored, keys))


def refuse_foreign(folder: str | Path, holds: str) -> None:
    """A folder without a settings file is taken only when it is empty (hidden files aside): the user's
    own files are never mixed into an output."""
    folder = Path(folder)
    if folder.is_dir() and any(not p.name.startswith(".") for p in folder.iterdir()):
        raise UserError(f"{folder} is not empty and holds no {holds}; choose a new --out folder")
