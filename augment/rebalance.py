"""Synthesize the classes a dataset lacks, keeping only samples that pass a quality filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.checks import Rule, at_least, below_one, check_rules
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.manifest import (
    OutputClaim,
    check_output,
    claim_output,
    state_name,
    summary_name,
    synthetic_source,
    write_manifest,
)
from augment.core.progress import make_progress
from augment.core.resize import resize_images
from augment.plan import ClassPlan
from gan.config import DEFAULT_CHECKPOINT


@dataclass
class QualityFilter:
    """Drop samples the real-only judge does not call their class, and near-copies of training faces.
    A field with ``help`` metadata is a ``rebalance`` option (``augment.cli.options``)."""

    # 0 switches the judge filter off. Set it low: a judge gives few real faces of its hardest classes a high
    # probability, so a high threshold rejects samples that real faces would not pass either.
    min_prob: float = field(
        default=0.2, metadata={"help": "Keep samples the judge gives ≥ this probability for their class (0 = off)."}
    )
    drop_near_copies: bool = field(
        default=True,
        metadata={
            "help": "Drop samples that are near-copies of training faces.",
            "option": "--drop-near-copies/--keep-near-copies",
        },
    )
    near_copy_quantile: float = 0.01
    near_copy_reference: int = 1000  # training faces drawn for the train-to-train near-copy threshold
    max_tries: int = 30  # candidates per wanted image before giving up
    # Usefulness gate: a class whose CAS ratio (gan-eval) is below this gets no synthetic faces; 0 = off, since
    # whether a class's samples help the classifier is compare's to show, not CAS's.
    min_cas: float = field(
        default=0.0,
        metadata={
            "help": "Give no synthetic faces to a class whose CAS ratio is below R: the recall, on real validation "
            "faces, of a classifier trained on its samples over that of one trained on as many real faces (read "
            "from gan-eval's output, or measured); 0 = off."
        },
    )

    def __post_init__(self) -> None:
        """A filter that exists is one synthesis can run with (checked before anything is generated)."""
        check_rules(self, _QUALITY_RULES)


_QUALITY_RULES: tuple[Rule, ...] = (
    ("min_prob", below_one, "use a judge probability from 0 (filter off) up to (not including) 1, e.g. 0.3"),
    ("near_copy_quantile", below_one, "use a quantile from 0 up to (not including) 1, e.g. 0.01"),
    ("near_copy_reference", at_least(2), "use at least 2 training faces"),
    ("max_tries", at_least(1), "use at least 1 candidate per wanted image"),
    ("min_cas", at_least(0), "use a CAS ratio of 0 (gate off) or more, e.g. 0.5"),
)
OUT_FORMATS = ("folders", "fer2013-csv")


def check_options(fmt: str, judge: str | Path | None = None) -> None:
    """The output layout and ``--judge`` run of a rebalance, checked before anything is read or written
    (``--dry-run`` too); the quality filter checks itself."""
    from classifier.inference import BEST

    if fmt not in OUT_FORMATS:
        raise UserError(f"--out-format {fmt}: use {' or '.join(OUT_FORMATS)}")
    if judge is not None and not (Path(judge) / BEST).is_file():
        raise UserError(f"--judge {judge}: no trained model ({BEST}) there; give an 'augment train' run folder")


@dataclass
class _Screen:
    """What a candidate must pass: the judge's probability for its class, and no near-copy of training."""

    judge: tuple[Any, dict[str, Any]] | None
    quality: QualityFilter
    threshold: float
    device: str

    def __call__(self, cand: np.ndarray, name: str, bank: np.ndarray) -> tuple[np.ndarray, int, int, np.ndarray]:
        """Which candidates pass, the numbers dropped by the judge and as near-copies, and the judge's
        probability of ``name`` for each candidate (empty when the judge filter is off)."""
        from classifier.judge import judge_probabilities
        from gan.metrics import near_copies, nearest_distances

        keep = np.ones(len(cand), dtype=bool)
        dropped_judge = dropped_copy = 0
        probs = np.zeros(0)
        if self.judge is not None and self.quality.min_prob > 0:
            probs = judge_probabilities(self.judge, cand, [name], self.device)[:, 0]
            ok = probs >= self.quality.min_prob
            dropped_judge = int((~ok).sum())
            keep &= ok
        if self.quality.drop_near_copies and len(bank) and keep.any():
            dist, _ = nearest_distances(cand[keep], bank)
            copy = np.zeros(len(cand), dtype=bool)
            copy[np.flatnonzero(keep)] = near_copies(dist, self.threshold)
            dropped_copy = int(copy.sum())
            keep &= ~copy
        return keep, dropped_judge, dropped_copy, probs


def train_near_copy_threshold(train: np.ndarray, quality: QualityFilter) -> float:
    """The near-copy threshold rebalance filters with: train-to-train, training data only (a fixed
    draw of ``quality.near_copy_reference`` training faces, each against the others)."""
    from gan.metrics import near_copy_threshold

    if len(train) < 2:
        return 0.0
    rng = np.random.default_rng(0)
    pick = rng.choice(len(train), size=min(quality.near_copy_reference, len(train)), replace=False)
    return near_copy_threshold(train[pick], train, quality.near_copy_quantile, own_rows=pick)


def _make_screen(
    judge: tuple[Any, dict[str, Any]] | None,
    quality: QualityFilter,
    wanted: list[ClassPlan],
    train: FaceDataset,
    g: Any,
    device: str,
) -> _Screen:
    """The filter of a synthesis, checked before anything is generated: a judge that knows every
    wanted class when the filter needs one, and the train-to-train near-copy threshold."""
    from classifier.judge import judge_columns

    if quality.min_prob > 0:
        if judge is None:
            raise UserError("the quality filter needs a judge classifier; pass one or switch the filter off")
        fix = "pass a judge trained on these classes or switch the filter off"
        judge_columns(judge[1], [p.name for p in wanted], fix=fix)
    threshold = 0.0
    if quality.drop_near_copies and wanted:
        threshold = train_near_copy_threshold(resize_images(train.images, g.size, g.channels), quality)
    return _Screen(judge, quality, threshold, device)


EARLY_TRIES = 1000  # candidates seen before a class whose pass rate cannot fill it is given up early


def _fill_class(
    p: ClassPlan, g: Any, label: int, seed: int, bank: np.ndarray, screen: _Screen, advance: Callable[[int], Any]
) -> tuple[np.ndarray, list[int], dict[str, int]]:
    """``p.add`` accepted faces of one class, their noise indices, and the counts of the report.

    Candidates come in a fixed order (the class's sampling seed, noise index 0, 1, ...), so the
    accepted set is the same on every rerun. A class that cannot be filled within ``max_tries``
    candidates per wanted image stops with the pass rate, as soon as that rate shows it.
    """
    from gan.generate import sampling_seed
    from gan.sample import generate_images

    accepted: list[np.ndarray] = []
    indices: list[int] = []
    probs: list[np.ndarray] = []
    tried = dropped_judge = dropped_copy = 0
    while len(accepted) < p.add:
        _check_fill_rate(p, len(accepted), tried, screen.quality, probs)
        n = int(min(1024, max(64, 1.5 * (p.add - len(accepted)))))
        cand = generate_images(
            g, np.full(n, label), seed=sampling_seed(seed, label), device=screen.device, offset=tried
        )
        keep, judged, copies, own = screen(cand, p.name, bank)
        taken = np.flatnonzero(keep)[: p.add - len(accepted)]
        accepted += list(cand[taken])
        indices += (tried + taken).tolist()
        probs.append(own)
        tried += n
        dropped_judge += judged
        dropped_copy += copies
        advance(len(taken))
    arr = np.stack(accepted) if accepted else np.zeros((0, g.channels, g.size, g.size), np.uint8)
    counts = {
        "added": len(arr),
        "generated": tried,
        "dropped_by_judge": dropped_judge,
        "dropped_near_copies": dropped_copy,
    }
    return arr, indices, counts


def _check_fill_rate(p: ClassPlan, accepted: int, tried: int, quality: QualityFilter, probs: list[np.ndarray]) -> None:
    """One line, before more is generated, when a class cannot be filled: its tries are spent, or after
    ``EARLY_TRIES`` candidates even twice its pass rate so far would spend them (a class passing well
    under 1% would otherwise take hours to fail)."""
    limit = quality.max_tries * p.add
    rate = accepted / tried if tried else 1.0
    hopeless = tried >= EARLY_TRIES and tried + (p.add - accepted) / max(2 * rate, 1e-12) > limit
    if tried < limit and not hopeless:
        return
    hint = _min_prob_hint(np.concatenate(probs) if probs else np.zeros(0), quality)
    raise UserError(
        f"{p.name}: only {accepted} of {p.add} samples passed the quality filter after {tried} tries "
        f"({rate:.1%}; the limit is {quality.max_tries} tries per wanted image); "
        f"{hint or 'lower --min-prob'} or train the generator longer"
    )


def _min_prob_hint(probs: np.ndarray, quality: QualityFilter) -> str:
    """The highest of a few lower --min-prob values whose pass rate on the candidates seen would fill the
    class within half its tries ('' when none would, or the judge filter is off)."""
    for t in (0.25, 0.2, 0.15, 0.1, 0.05):
        share = float((probs >= t).mean()) if len(probs) else 0.0
        if t < quality.min_prob and share * quality.max_tries >= 2:
            return f"--min-prob {t} would pass {share:.0%} of them"
    return ""


def synthesize(
    plan: list[ClassPlan],
    generator_run: str | Path,
    train: FaceDataset,
    judge: tuple[Any, dict[str, Any]] | None,
    quality: QualityFilter,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    checkpoint: str = DEFAULT_CHECKPOINT,
    generator: tuple[Any, dict[str, Any]] | None = None,
) -> tuple[FaceDataset, dict[str, Any]]:
    """Synthetic train images per ``plan``, in ``train``'s class space and image shape; each
    image's source names its sampling seed and noise index (``augment.core.manifest``).

    What is kept is decided on training data only: the judge (trained on real images) and
    near-copies of training faces under the train-to-train threshold. ``generator`` is the
    generator of ``generator_run`` when the caller has loaded it already.
    """
    from gan.generate import sampling_seed
    from gan.sample import load_generator

    g, meta = generator or load_generator(Path(generator_run), device=device, checkpoint=checkpoint)
    gclasses = meta["classes"]
    wanted = [p for p in plan if p.add > 0]
    report: dict[str, Any] = {
        "generator_run": str(generator_run),
        "checkpoint": meta["checkpoint"],
        "checkpoint_step": meta["step"],
        "seed": seed,
        "min_prob": quality.min_prob if judge else None,
        "per_class": {},
    }
    screen = _make_screen(judge, quality, wanted, train, g, device)
    if quality.drop_near_copies and wanted:
        report.update(near_copy_threshold=screen.threshold, near_copy_reference="train-to-train")
    images, labels, sources = [], [], []
    with make_progress() as prog:
        task = prog.add_task("synthesizing", total=sum(p.add for p in wanted)) if progress else None

        def advance(n: int) -> None:
            if task is not None:
                prog.advance(task, n)

        for p in wanted:
            if p.name not in gclasses:
                raise UserError(f"the generator in {generator_run} cannot make '{p.name}'")
            gl = gclasses.index(p.name)
            bank = resize_images(train.images[train.labels == train.classes.index(p.name)], g.size, g.channels)
            arr, indices, report["per_class"][p.name] = _fill_class(p, g, gl, seed, bank, screen, advance)
            images.append(resize_images(arr, train.size, train.channels))
            labels += [train.classes.index(p.name)] * len(arr)
            sources += [synthetic_source(p.name, sampling_seed(seed, gl), i) for i in indices]
    return _synthetic_dataset(train, images, labels, sources, f"synthetic from {generator_run}"), report


def _synthetic_dataset(
    train: FaceDataset, images: list[np.ndarray], labels: list[int], sources: list[str], name: str
) -> FaceDataset:
    n = len(labels)
    return FaceDataset(
        images=np.concatenate(images) if images else np.zeros((0, *train.images.shape[1:]), np.uint8),
        labels=np.array(labels, dtype=np.int64),
        splits=np.full(n, "train"),
        sources=np.array(sources, dtype=str),
        subjects=np.full(n, "", dtype=str),
        classes=list(train.classes),
        synthetic=np.ones(n, dtype=bool),
        name=name,
    )


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


def _data_digest(data: FaceDataset) -> str:
    """Which real files, classes and splits DATA holds: a changed dataset under the same path is another dataset."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for values in (data.classes, data.sources.tolist(), data.labels.tolist(), data.splits.tolist()):
        h.update("\n".join(map(str, values)).encode() + b"\0")
    return h.hexdigest()


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
        "data_files": _data_digest(real),
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
    generator: tuple[Any, dict[str, Any]] | None = None,
    claim: OutputClaim | None = None,
) -> dict[str, Any]:
    """Synthesize per ``plan`` (less the classes ``quality.min_cas`` gates out) and write real + synthetic
    train, with val/test carried over unchanged.

    OUT is checked first and claimed only once the synthesis succeeded; its manifest is written
    before the files, so a rerun of the same command after an interruption finishes the same
    files, and ``overwrite`` removes exactly what the old manifest lists. A caller that has loaded
    the generator of ``generator_run`` on ``device`` (``generator``) and checked OUT
    (``claim``, from ``check_options`` and ``check_rebalance_out``) passes them: neither is done twice.
    """
    from augment.core.atomic import write_json
    from augment.core.dataset import concat
    from augment.writer import fer_rows, tree_rows, write_fer_csv, write_tree
    from gan.sample import load_generator

    out = Path(out)
    if claim is None:
        check_options(fmt)
    generator = generator or load_generator(Path(generator_run), device=device, checkpoint=checkpoint)
    if claim is None:
        gmeta = generator[1]
        claim = check_rebalance_out(
            data, generator_run, gmeta["step"], out, plan, quality, seed, fmt, overwrite, gmeta["checkpoint"]
        )
    train = data.split("train").subset(~data.split("train").synthetic)
    plan, gate = gate_by_usefulness(plan, data, generator_run, quality, checkpoint, device)
    synthetic, report = synthesize(
        plan, generator_run, train, judge, quality, seed, device, progress, checkpoint, generator
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
