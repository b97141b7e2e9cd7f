"""The one PNG writer and the one manifest schema of every folder of faces this project writes.

``manifest.csv`` has a row per file. A real row names the user's file it came from (``origin``);
a synthetic row names what reproduces it bit for bit: the generator run and checkpoint step, the
sampling ``seed`` and the noise ``index``, i.e. ``gan.sample.generate_images(g, [label], seed,
offset=index)``. A face an expression-transfer run translated also names the real face it was drawn
from (``source_file``) and that face's class (``source_class``); its ``index`` is its place in the
target class's source order (``gan.translate.spread``). The file-name rule follows: a generated face is
``syn_<class>_<index>.png`` with that same index, in ``generate`` and ``rebalance`` alike.

A folder a command writes holds exactly the files its manifest lists, plus the command's own
bookkeeping: ``.<command>.json`` (the settings that made it, written first), ``manifest.csv``
(written before the faces) and ``<command>.json`` (the summary, written last: the folder is
finished). :func:`check_output` and :func:`claim_output` are the one rule for writing into such
a folder; :func:`check_folder` says where a folder and its manifest disagree.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from augment.core.atomic import as_json, atomic_path
from augment.core.errors import UserError
from augment.core.identity import FolderIdentity

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = (
    "path",
    "label",
    "split",
    "source",
    "origin",
    "generator_run",
    "checkpoint_step",
    "seed",
    "index",
    "source_class",
    "source_file",
)
COMMANDS = ("generate", "rebalance")  # the commands that write folders of faces with a manifest
SYNTHETIC_PREFIX = "syn_"  # every synthetic file's name starts with it (readers fall back on it without a manifest)
_FROM = "|from="  # a translated face's FaceDataset source: its synthetic source, then its source class and file
_SOURCE = re.compile(
    rf"synthetic:seed=(-?\d+):(?P<label>[^/]+)/{SYNTHETIC_PREFIX}(?P=label)_(\d+)\.png"
    rf"(?:{re.escape(_FROM)}(?P<from_class>[^:]*):(?P<from_file>.*))?"
)


def synthetic_name(label: str, index: int) -> str:
    """The file name of the generated face of class ``label`` at noise index ``index``."""
    return f"{SYNTHETIC_PREFIX}{label}_{index:06d}.png"


def synthetic_source(label: str, seed: int, index: int) -> str:
    """How a FaceDataset's ``sources`` name a generated face: its sampling seed and noise index."""
    return f"synthetic:seed={seed}:{label}/{synthetic_name(label, index)}"


def transfer_source(label: str, seed: int, index: int, source_class: str, source_file: str) -> str:
    """How a FaceDataset's ``sources`` name a translated face: its :func:`synthetic_source`, then the class
    and file of the real face it was drawn from."""
    return f"{synthetic_source(label, seed, index)}{_FROM}{source_class}:{source_file}"


def parse_synthetic_source(source: str) -> tuple[str, int, int]:
    """(label, seed, index) of a :func:`synthetic_source` or :func:`transfer_source` string."""
    m = _match(source)
    return m["label"], int(m[1]), int(m[3])


def parse_source_face(source: str) -> tuple[str, str]:
    """(source class, source file) of a :func:`transfer_source` string; ('', '') for a noise sample."""
    m = _match(source)
    return m["from_class"] or "", m["from_file"] or ""


def _match(source: str) -> re.Match[str]:
    m = _SOURCE.fullmatch(source)
    if m is None:
        raise ValueError(f"not a synthetic source: {source!r}")
    return m


def real_row(path: str, label: str, split: str, origin: str) -> dict[str, Any]:
    """A manifest row for a real face: where it came from; the generator columns stay empty."""
    row = dict.fromkeys(MANIFEST_FIELDS, "")
    row.update(path=path, label=label, split=split, source="real", origin=origin)
    return row


def synthetic_row(
    path: str,
    label: str,
    split: str,
    generator_run: str | Path,
    checkpoint_step: int,
    seed: int,
    index: int,
    source_class: str = "",
    source_file: str = "",
) -> dict[str, Any]:
    """A manifest row for a generated face: (run, step, seed, index) reproduce it; a translated face
    also names the real face it was drawn from."""
    row = dict.fromkeys(MANIFEST_FIELDS, "")
    row.update(
        path=path,
        label=label,
        split=split,
        source="synthetic",
        generator_run=str(Path(generator_run).resolve()),
        checkpoint_step=checkpoint_step,
        seed=seed,
        index=index,
        source_class=source_class,
        source_file=source_file,
    )
    return row


def write_png(path: Path, image: np.ndarray) -> None:
    """One uint8 (C, H, W) face as a grayscale or RGB PNG, written atomically."""
    arr = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def write_manifest(out: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(Path(out) / MANIFEST) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_FIELDS)
        w.writeheader()
        w.writerows(rows)


def read_manifest(out: Path) -> list[dict[str, str]]:
    with open(Path(out) / MANIFEST, newline="") as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------- the folder and its manifest
def state_name(command: str) -> str:
    """The hidden file holding the settings of the ``command`` run that writes a folder."""
    return f".{command}.json"


def summary_name(command: str) -> str:
    """The summary ``command`` writes last, when the folder is finished."""
    return f"{command}.json"


BOOKKEEPING = frozenset({MANIFEST, *(f(c) for c in COMMANDS for f in (state_name, summary_name))})


def _disk_files(out: Path) -> set[str]:
    """Every file below ``out``, as a relative POSIX path."""
    if not out.is_dir():
        return set()
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() or p.is_symlink()}


def _listed(out: Path) -> list[str]:
    """The manifest's ``path`` column (``fer2013.csv#row3`` is a row of ``fer2013.csv``); empty without one."""
    if not (out / MANIFEST).is_file():
        return []
    return [r["path"] for r in read_manifest(out)]


def _file_of(path: str) -> str:
    return path.split("#", 1)[0]


def _is_temp_of(rel: str, own: set[str]) -> bool:
    """A temp file an interrupted atomic write left beside one of ``own`` (``.name.tmp``, ``.name.XXXX.tmp``)."""
    parent, _, name = rel.rpartition("/")
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    stem = name[1 : -len(".tmp")]
    prefix = f"{parent}/" if parent else ""
    return any(f"{prefix}{cand}" in own for cand in (stem, stem.rsplit(".", 1)[0]))


def check_folder(out: str | Path) -> list[str]:
    """Where a folder of faces and its ``manifest.csv`` disagree, one line each: rows listed twice,
    rows whose file is missing, and files on disk the manifest does not list (bookkeeping aside).
    An empty list: the folder holds exactly the files its manifest lists."""
    out = Path(out)
    if not (out / MANIFEST).is_file():
        return [f"{out}: no {MANIFEST}"]
    rows = _listed(out)
    problems = [f"{p}: listed {n} times in {MANIFEST}" for p, n in sorted(Counter(rows).items()) if n > 1]
    listed = {_file_of(p) for p in rows}
    disk = _disk_files(out) - BOOKKEEPING
    problems += [f"{p}: in {MANIFEST}, not on disk" for p in sorted(listed - disk)]
    problems += [f"{p}: on disk, not in {MANIFEST}" for p in sorted(disk - listed)]
    return problems


@dataclass
class OutputClaim:
    """What :func:`check_output` decided for a folder: resume an unfinished run of the same settings, or
    start afresh after removing ``remove`` (an earlier output's listed files and bookkeeping, stale temp files)."""

    out: Path
    command: str
    options: dict[str, Any]
    resume: bool
    remove: list[str] = field(default_factory=list)


def check_output(
    out: str | Path, command: str, options: dict[str, Any], overwrite: bool, names: Mapping[str, str]
) -> OutputClaim:
    """The one rule for writing into ``--out``; reads only, so a refusal leaves the folder as it was.

    A new or empty folder is written afresh. A file no manifest lists (a user's own) is never mixed
    into the output: refused, with or without ``--overwrite``. An earlier run with the same
    ``options`` is resumed (the same command finishes an interrupted run). Any other earlier output
    is refused, naming each setting that differs (``names``: the settings whose option is not
    ``--<key>``, see :func:`augment.core.identity.option_name`), unless ``overwrite``: then exactly
    the files its manifest lists and its bookkeeping are removed.
    """
    out = Path(out)
    options = as_json(options)  # compare as stored (tuples become lists)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; choose a folder")
    disk = _disk_files(out)
    if disk <= {state_name(command)}:  # nothing written yet (a run stopped before its first file)
        return OutputClaim(out, command, options, False, sorted(disk))
    own = {_file_of(p) for p in _listed(out)} | BOOKKEEPING
    foreign = sorted(p for p in disk if p not in own and not _is_temp_of(p, own))
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(
            f"--out {out} holds {len(foreign)} file(s) that no {MANIFEST} lists ({shown}); "
            f"{command} will not mix them into its output: move them away or choose a new --out folder"
        )
    identity = FolderIdentity(state_name(command), names)
    try:
        old = identity.read(out)
    except UserError:
        old = None  # an unreadable record is no record: refused, or replaced under --overwrite
    if old == options:
        return OutputClaim(out, command, options, True, sorted(disk - own))
    if not overwrite:
        raise UserError(_conflict(out, command, old, options, identity))
    return OutputClaim(out, command, options, False, sorted(disk))


def _conflict(
    out: Path, command: str, old: dict[str, Any] | None, new: dict[str, Any], identity: FolderIdentity
) -> str:
    """One line: what the earlier output in ``out`` was made with, and the user's three ways on."""
    if old is None:
        return (
            f"--out {out} holds an earlier output without {state_name(command)} (not this {command}'s); "
            "pass --overwrite to replace it or choose a new --out folder"
        )
    diffs = identity.describe(old, new, dict.fromkeys([*new, *old]))
    return (
        f"--out {out} holds a {command} made with other settings ({diffs}); rerun with the old "
        "settings to finish it, pass --overwrite to replace it, or choose a new --out folder"
    )


def claim_output(claim: OutputClaim) -> None:
    """Act on :func:`check_output`'s decision: remove what it listed (and folders left empty), then
    record the settings, before the first face is written."""
    out = claim.out.resolve()
    for rel in claim.remove:
        path = out / rel
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != out and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
    out.mkdir(parents=True, exist_ok=True)
    FolderIdentity(state_name(claim.command)).write(out, claim.options)
