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

# The identity keys only the synthetic pool depends on: None in a folder made without --generator, whose
# real-only runs stay valid when a later call brings a generator and adds the GAN conditions.
SYNTHETIC_KEYS = ("generator_run", "generator_checkpoint", "generator_step", "min_prob", "judge", "drop_near_copies")
# What the user typed for the settings that have no option of their name (the others are --<key>).
OPTION_NAMES = {
    "data": "DATA",
    "generator_run": "--generator",
    "generator_checkpoint": "--checkpoint",
    "generator_step": "--generator's checkpoint step",
}
REPORT = FolderIdentity("compare.json", OPTION_NAMES)
# What a compare.json written before a key existed meant by its absence.
ABSENT = {"eval_split": "test", "limit": {}, **dict.fromkeys(SYNTHETIC_KEYS)}


def identity(data: FaceDataset, generator_run: str | Path | None, spec: CompareSpec) -> dict[str, Any]:
    """The settings the synthetic pool and the finished runs of a report folder depend on (compare.json)."""
    from gan.sample import load_generator

    ident: dict[str, Any] = {
        "data": data.name,
        "budget": spec.budget,
        "target": spec.target,
        "classes": spec.classes,
        "eval_split": spec.eval_split,
        "limit": spec.limit,
        **dict.fromkeys(SYNTHETIC_KEYS),
    }
    if generator_run is not None:
        _, meta = load_generator(Path(generator_run), checkpoint=spec.checkpoint)
        check_generator_limit(generator_run, meta["config"], spec.limit)
        ident.update(
            generator_run=str(Path(generator_run).resolve()),
            generator_checkpoint=meta["checkpoint"],
            generator_step=meta["step"],
            min_prob=spec.min_prob,
            judge=str(Path(spec.judge).resolve()) if spec.judge and spec.min_prob > 0 else None,
            drop_near_copies=spec.drop_near_copies,
        )
    return ident


def check_generator_limit(generator_run: str | Path, config: dict[str, Any], limit: Limit) -> None:
    """A generator must have trained on the comparison's real faces: one trained on the full train split saw
    faces a limited comparison's classifiers never do, and one trained under another limit saw others."""
    trained = config.get("limit") or {}
    if trained == limit:
        return
    was = f"with --limit {format_limit(trained)}" if trained else "on the full train split (no --limit)"
    now = f"--limit {format_limit(limit)}" if limit else "no --limit"
    raise UserError(
        f"--generator {generator_run} was trained {was}, but this comparison has {now}: train one on the same "
        f"data (augment gan-train {'--limit ' + format_limit(limit) if limit else 'without --limit'})"
    )


def check_report_dir(report_dir: Path, ident: dict[str, Any]) -> None:
    """A report folder belongs to one identity; runs of other settings would mix. A folder made without a
    generator takes one later (its real-only runs do not depend on it); a call without one keeps the folder's."""
    if refuse_report_dir(report_dir, ident):
        REPORT.write(report_dir, ident)


def refuse_report_dir(report_dir: Path, ident: dict[str, Any]) -> bool:
    """``check_report_dir``'s refusal, writing nothing; whether ``ident`` is to be written."""
    old = REPORT.read(report_dir)
    if old is None:
        refuse_foreign(report_dir, "comparison")
        return True
    old = {**ABSENT, **old}
    either_lacks = ident["generator_run"] is None or old["generator_run"] is None
    keys = [k for k in ident if not (either_lacks and k in SYNTHETIC_KEYS)]
    diff = REPORT.describe(old, ident, keys)
    if diff:
        raise UserError(f"{report_dir} holds a comparison with other settings ({diff}); use a new --out")
    return ident["generator_run"] is not None
