"""Synthesize the classes a dataset lacks, keeping only samples that pass a quality filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.core.dataset import FaceDataset, data_digest
from augment.core.errors import UserError
from augment.core.manifest import (
    OutputClaim,
    check_output,
    claim_output,
    state_name,
    summary_name,
    write_manifest,
)
from augment.plan import ClassPlan
from augment.synthesis import QualityFilter, Sampler, synthesize
from gan.config import DEFAULT_CHECKPOINT

OUT_FORMATS = ("folders", "fer2013-csv")


def check_options(fmt: str, judge: str | Path | None = None) -> None:
    """The output layout and ``--judge`` run of a rebalance, checked before anything is read or written
    (``--dry-run`` too); the quality filter checks itself."""
    from classifier.inference import BEST

    if fmt not in OUT_FORMATS:
        raise UserError(f"--out-format {fmt}: use {' or '.join(OUT_FORMATS)}")
    if judge is not None and not (Path(judge) / BEST).is_file():
        raise UserError(f"--judge {judge}: no trained model ({BEST}) there; give an 'augment train' run folder")


def _gate_reason(name: str, v: dict[str, Any], min_cas: float) -> str:
    """Why ``name`` gets no synthetic faces under ``--min-cas``, or '' when its samples pass."""
    syn, real, ratio = v["synthetic_recall"], v["real_recall"], v["ratio"]
    if ratio is None and syn > 0:  # the real-trained classifier recalls none of the class: samples do better
        return ""
    if ratio is not None and ratio >= min_cas:
        return ""
    shown = f"{ratio:.2f}" if ratio is not None else "not measurable"
    return (
        f"{name}: no synthetic faces: its CAS ratio ({shown}) is below --min-cas {min_cas:g}; a classifier "
        f"trained on its samples recalls {syn:.2f} of its real validation faces, one trained on as many real "
        f"faces {real:.2f}"
    )


def cas_gate(plan: list[ClassPlan], cas: dict[str, Any], min_cas: float) -> tuple[list[ClassPlan], dict[str, str]]:
    """The plan with no synthetic faces for each class whose CAS ratio is below ``min_cas``, and why."""
    gated, why = [], {}
    for p in plan:
        v = cas["per_class"].get(p.name)
        reason = _gate_reason(p.name, v, min_cas) if p.add > 0 and v is not None else ""
        if reason:
            why[p.name] = reason
        gated.append(ClassPlan(p.name, p.real, p.target, 0) if reason else p)
    return gated, why


def gate_by_usefulness(
    plan: list[ClassPlan],
    data: FaceDataset,
    generator_run: str | Path,
    quality: QualityFilter,
    checkpoint: str,
    device: str,
) -> tuple[list[ClassPlan], dict[str, Any] | None]:
    """``--min-cas``: the CAS of the generator (gan-eval's, or measured now on ``data``'s validation split,
    never its test split) and the plan with the classes below the bar taken out."""
    if quality.min_cas <= 0 or not any(p.add > 0 for p in plan):
        return plan, None
    from gan.evaluate import run_cas

    cas = run_cas(generator_run, data, checkpoint=checkpoint, device=device)
    if cas is None:
        raise UserError(f"--min-cas needs validation faces of the generator's classes, and {data.name} has none")
    gated, why = cas_gate(plan, cas, quality.min_cas)
    gate = {
        "min_cas": quality.min_cas,
        "source": cas["source"],
        "ratios": {c: v["ratio"] for c, v in cas["per_class"].items()},
        "skipped": why,
    }
    return gated, gate


STATE_FILE = state_name("rebalance")
# What the user typed for the settings of a rebalance folder that have no option of their name (the
# others are --<key>: --seed, --min-prob, --min-cas, --checkpoint); a rerun that changes one names it.
OPTION_NAMES = {
    "format": "--out-format",
    "data": "DATA",
    "data_files": "DATA's files",
    "generator_run": "--generator",
    "checkpoint_step": "--generator's checkpoint step",
    "plan": "the plan (--target, --classes, --fraction, --max-ratio)",
    "drop_near_copies": "--drop-near-copies/--keep-near-copies",
}


def check_rebalance_out(
    data: FaceDataset,
    generator_run: str | Path,
    checkpoint_step: int,
    out: str | Path,
    plan: list[ClassPlan],
    quality: QualityFilter,
    seed: int,
    fmt: str,
    overwrite: bool,
    checkpoint: str = DEFAULT_CHECKPOINT,
    source_classes: list[str] | None = None,
) -> OutputClaim:
    """Everything about OUT that can be refused (``--out-format`` is ``check_options``'), refused before a
    judge is trained or a face generated, and without writing anything
    (``augment.core.manifest.check_output``)."""
    from augment.writer import check_fer_classes

    real = data.subset(~data.synthetic)
    if fmt == "fer2013-csv":
        check_fer_classes([c for c, n in real.counts().items() if n > 0] + [p.name for p in plan if p.add > 0])
    options = {
        "data": real.name,
        "data_files": data_digest(real),
        "generator_run": str(Path(generator_run).resolve()),
        "checkpoint_step": checkpoint_step,
        "seed": seed,
        "format": fmt,
        "plan": [[p.name, p.real, p.add] for p in plan],
        "min_prob": quality.min_prob,
        "drop_near_copies": quality.drop_near_copies,
        "min_cas": quality.min_cas,
        "checkpoint": checkpoint,
    }
    if source_classes:  # a transfer run's sources; absent otherwise, so older folders keep their identity
        options["source_classes"] = sorted(source_classes)  # a set: the order names the same sources
    return check_output(Path(out), "rebalance", options, overwrite, OPTION_NAMES)


def run_rebalance(
    data: FaceDataset,
    generator_run: str | Path,
    out: str | Path,
    plan: list[ClassPlan],
    judge: tuple[Any, dict[str, Any]] | None,
    quality: QualityFilter,
    seed: int = 0,
    fmt: str = "folders",
    overwrite: bool = False,
    device: str = "cpu",
    progress: bool = True,
    checkpoint: str = DEFAULT_CHECKPOINT,
    source_classes: list[str] | None = None,
    sampler: tuple[Sampler, dict[str, Any]] | None = None,
    claim: OutputClaim | None = None,
) -> dict[str, Any]:
    """Synthesize per ``plan`` (less the classes ``quality.min_cas`` gates out) and write real + synthetic
    train, with val/test carried over unchanged.

    OUT is checked first and claimed only once the synthesis succeeded; its manifest is written
    before the files, so a rerun of the same command after an interruption finishes the same
    files, and ``overwrite`` removes exactly what the old manifest lists. A transfer run translates real
    train faces of ``source_classes`` (default: every class but the target); when ``data`` has no val split,
    the validation faces every command would carve (``gan.translate.with_validation``) are written as val/
    and are never sources. Plan on that carved data (as the CLI does). A caller that has loaded the
    sampler of ``generator_run`` on ``device`` (``gan.translate.load_sampler``) and checked OUT (``claim``,
    from ``check_options`` and ``check_rebalance_out``) passes them: neither is done twice.
    """
    from augment.core.atomic import write_json
    from augment.core.dataset import concat
    from augment.writer import fer_rows, tree_rows, write_fer_csv, write_tree
    from gan.config import TRANSFER
    from gan.translate import load_sampler, with_validation

    out = Path(out)
    if claim is None:
        check_options(fmt)
    carved = with_validation(data)
    sampler = sampler or load_sampler(generator_run, carved.split("train"), seed, device, checkpoint, source_classes)
    if sampler[1]["recipe"] == TRANSFER:  # the output holds the carved validation split: no source person in both
        data = carved
    train = data.split("train").subset(~data.split("train").synthetic)
    if claim is None:
        step, used = sampler[1]["step"], sampler[1]["checkpoint"]
        claim = check_rebalance_out(
            data, generator_run, step, out, plan, quality, seed, fmt, overwrite, used, source_classes
        )
    plan, gate = gate_by_usefulness(plan, data, generator_run, quality, checkpoint, device)
    synthetic, report = synthesize(
        plan, generator_run, train, judge, quality, seed, device, progress, checkpoint, sampler
    )
    if gate:
        report["cas_gate"] = gate
        zero = {"added": 0, "generated": 0, "dropped_by_judge": 0, "dropped_near_copies": 0}
        report["per_class"].update({c: {**zero, "skipped": why} for c, why in gate["skipped"].items()})
    full = concat([data.subset(~data.synthetic), synthetic], name=data.name)
    meta = {"generator_run": report["generator_run"], "checkpoint_step": report["checkpoint_step"]}
    rows = tree_rows(full, meta) if fmt == "folders" else fer_rows(full, meta)
    claim_output(claim)
    write_manifest(out, rows)  # what the folder will hold; rebalance.json says when it does
    if fmt == "folders":
        write_tree(full, out, meta, progress, keep_existing=claim.resume, rows=rows)
    else:
        write_fer_csv(full, out, meta)
    summary = {
        "out": str(out),
        "format": fmt,
        "resumed": claim.resume,
        "plan": [{"class": p.name, "real": p.real, "synthetic": p.add, "final": p.final} for p in plan],
        "synthesis": report,
        "files": len(rows),
        "synthetic_files": int(synthetic.synthetic.sum()),
        "splits": {s: int((full.splits == s).sum()) for s in ("train", "val", "test")},
    }
    write_json(out / summary_name("rebalance"), summary)
    return summary
