"""What a report folder is tied to: the settings its synthetic pool and finished runs depend on, kept in
its ``compare.json`` (:mod:`augment.core.identity`). A call with other settings is refused: its runs
would mix with the folder's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.compare.spec import CompareSpec
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.identity import FolderIdentity, refuse_foreign
from augment.core.limits import Limit, format_limit

# The identity keys only a synthetic pool depends on, by the run that makes it: None in a folder made without
# that run, whose other runs stay valid when a later call brings it and adds its conditions. The quality
# filter's keys belong to whichever pool a folder has.
GENERATOR_KEYS = ("generator_run", "generator_checkpoint", "generator_step")
TRANSFER_KEYS = ("transfer_run", "transfer_checkpoint", "transfer_step")
FILTER_KEYS = ("min_prob", "judge", "drop_near_copies")
SYNTHETIC_KEYS = GENERATOR_KEYS + FILTER_KEYS + TRANSFER_KEYS
# What the user typed for the settings that have no option of their name (the others are --<key>).
OPTION_NAMES = {
    "data": "DATA",
    "generator_run": "--generator",
    "generator_checkpoint": "--checkpoint",
    "generator_step": "--generator's checkpoint step",
    "transfer_run": "--transfer",
    "transfer_checkpoint": "--checkpoint",
    "transfer_step": "--transfer's checkpoint step",
}
REPORT = FolderIdentity("compare.json", OPTION_NAMES)
# What a compare.json written before a key existed meant by its absence.
ABSENT = {"eval_split": "test", "limit": {}, **dict.fromkeys(SYNTHETIC_KEYS)}


def identity(
    data: FaceDataset, generator_run: str | Path | None, spec: CompareSpec, transfer_run: str | Path | None = None
) -> dict[str, Any]:
    """The settings the synthetic pools and the finished runs of a report folder depend on (compare.json)."""
    from gan.config import TRANSFER
    from gan.sample import read_generator

    ident: dict[str, Any] = {
        "data": data.name,
        "budget": spec.budget,
        "target": spec.target,
        "classes": spec.classes,
        "eval_split": spec.eval_split,
        "limit": spec.limit,
        **dict.fromkeys(SYNTHETIC_KEYS),
    }
    for run, keys, option, wanted in (
        (generator_run, GENERATOR_KEYS, "--generator", False),
        (transfer_run, TRANSFER_KEYS, "--transfer", True),
    ):
        if run is None:
            continue
        _, meta = read_generator(Path(run), spec.checkpoint)
        if (meta["recipe"] == TRANSFER) != wanted:
            other = "--generator" if wanted else "--transfer"
            raise UserError(
                f"{option} {run} is a {meta['recipe']}-recipe run; {option} takes "
                f"{'a --recipe transfer run' if wanted else 'a noise (full or classic) run'}: pass this one as {other}"
            )
        check_generator_limit(run, meta["config"], spec.limit, option)
        ident.update(zip(keys, (str(Path(run).resolve()), meta["checkpoint"], meta["step"]), strict=True))
        ident.update(
            min_prob=spec.min_prob,
            judge=str(Path(spec.judge).resolve()) if spec.judge and spec.min_prob > 0 else None,
            drop_near_copies=spec.drop_near_copies,
        )
    return ident


def check_generator_limit(
    generator_run: str | Path, config: dict[str, Any], limit: Limit, option: str = "--generator"
) -> None:
    """A generator must have trained on the comparison's real faces: one trained on the full train split saw
    faces a limited comparison's classifiers never do, and one trained under another limit saw others."""
    trained = config.get("limit") or {}
    if trained == limit:
        return
    was = f"with --limit {format_limit(trained)}" if trained else "on the full train split (no --limit)"
    now = f"--limit {format_limit(limit)}" if limit else "no --limit"
    raise UserError(
        f"{option} {generator_run} was trained {was}, but this comparison has {now}: train one on the same "
        f"data (augment gan-train {'--limit ' + format_limit(limit) if limit else 'without --limit'})"
    )


def check_report_dir(report_dir: Path, ident: dict[str, Any]) -> None:
    """A report folder belongs to one identity; runs of other settings would mix. A folder made without a
    generator takes one later (its real-only runs do not depend on it); a call without one keeps the folder's."""
    if refuse_report_dir(report_dir, ident):
        REPORT.write(report_dir, merged_identity(report_dir, ident))


def refuse_report_dir(report_dir: Path, ident: dict[str, Any]) -> bool:
    """``check_report_dir``'s refusal, writing nothing; whether ``ident`` is to be written."""
    old = REPORT.read(report_dir)
    if old is None:
        refuse_foreign(report_dir, "comparison")
        return True
    old = {**ABSENT, **old}
    skip = set()
    for run, keys in (("generator_run", GENERATOR_KEYS), ("transfer_run", TRANSFER_KEYS)):
        if ident[run] is None or old[run] is None:
            skip.update(keys)
    if not _has_pool(ident) or not _has_pool(old):
        skip.update(FILTER_KEYS)
    diff = REPORT.describe(old, ident, [k for k in ident if k not in skip])
    if diff:
        raise UserError(f"{report_dir} holds a comparison with other settings ({diff}); use a new --out")
    return any(ident[run] is not None and old[run] is None for run in ("generator_run", "transfer_run"))


def merged_identity(report_dir: Path, ident: dict[str, Any]) -> dict[str, Any]:
    """What compare.json holds after a call: the folder's runs, and the ones this call brings."""
    old = REPORT.read(report_dir)
    if old is None:
        return ident
    old = {**ABSENT, **old}
    keep = [
        k
        for run, keys in (("generator_run", GENERATOR_KEYS), ("transfer_run", TRANSFER_KEYS))
        if ident[run] is None
        for k in keys
    ]
    if not _has_pool(ident):
        keep += FILTER_KEYS
    return {**ident, **{k: old[k] for k in keep}}


def _has_pool(ident: dict[str, Any]) -> bool:
    return ident["generator_run"] is not None or ident["transfer_run"] is not None
