"""Synthesize the classes a dataset lacks, keeping only samples that pass a quality filter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.manifest import synthetic_source
from augment.core.progress import make_progress
from augment.core.resize import resize_images
from augment.plan import ClassPlan
from gan.config import DEFAULT_CHECKPOINT


@dataclass
class QualityFilter:
    """Drop samples the real-only judge does not call their class, and near-copies of training faces."""

    # 0 switches the judge filter off. 0.3, not 0.5: a 7-class FER2013 judge gives p >= 0.5 to only 12-15% of
    # the real sad and fear test faces (0.3: 32-45%), so 0.5 rejects what real data would pass.
    min_prob: float = 0.3
    drop_near_copies: bool = True
    near_copy_quantile: float = 0.01
    near_copy_reference: int = 1000  # training faces drawn for the train-to-train near-copy threshold
    max_tries: int = 30  # candidates per wanted image before giving up
    # Usefulness gate: a class whose CAS ratio (gan-eval: recall of a classifier trained on its samples over
    # one trained on as many real faces, on real validation faces) is below this gets no synthetic faces.
    # Provisional: 0 (off) until the FER2013 measurement picks a value.
    min_cas: float = 0.0


@dataclass
class _Screen:
    """What a candidate must pass: the judge's probability for its class, and no near-copy of training."""

    judge: tuple[Any, dict[str, Any]] | None
    quality: QualityFilter
    threshold: float
    device: str

    def __call__(self, cand: np.ndarray, name: str, bank: np.ndarray) -> tuple[np.ndarray, int, int]:
        """Which candidates pass, with the numbers dropped by the judge and as near-copies."""
        from classifier.judge import judge_probabilities
        from gan.metrics import near_copies, nearest_distances

        keep = np.ones(len(cand), dtype=bool)
        dropped_judge = dropped_copy = 0
        if self.judge is not None and self.quality.min_prob > 0:
            ok = judge_probabilities(self.judge, cand, [name], self.device)[:, 0] >= self.quality.min_prob
            dropped_judge = int((~ok).sum())
            keep &= ok
        if self.quality.drop_near_copies and len(bank) and keep.any():
            dist, _ = nearest_distances(cand[keep], bank)
            copy = np.zeros(len(cand), dtype=bool)
            copy[np.flatnonzero(keep)] = near_copies(dist, self.threshold)
            dropped_copy = int(copy.sum())
            keep &= ~copy
        return keep, dropped_judge, dropped_copy


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


def _fill_class(
    p: ClassPlan, g: Any, label: int, seed: int, bank: np.ndarray, screen: _Screen, advance: Callable[[int], Any]
) -> tuple[np.ndarray, list[int], dict[str, int]]:
    """``p.add`` accepted faces of one class, their noise indices, and the counts of the report.

    Candidates come in a fixed order (the class's sampling seed, noise index 0, 1, ...), so the
    accepted set is the same on every rerun.
    """
    from gan.generate import sampling_seed
    from gan.sample import generate_images

    accepted: list[np.ndarray] = []
    indices: list[int] = []
    tried = dropped_judge = dropped_copy = 0
    while len(accepted) < p.add:
        if tried >= screen.quality.max_tries * p.add:
            raise UserError(
                f"{p.name}: only {len(accepted)} of {p.add} samples passed the quality filter after "
                f"{tried} tries; lower --min-prob or train the generator longer"
            )
        n = int(min(1024, max(64, 1.5 * (p.add - len(accepted)))))
        cand = generate_images(
            g, np.full(n, label), seed=sampling_seed(seed, label), device=screen.device, offset=tried
        )
        keep, judged, copies = screen(cand, p.name, bank)
        taken = np.flatnonzero(keep)[: p.add - len(accepted)]
        accepted += list(cand[taken])
        indices += (tried + taken).tolist()
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
) -> tuple[FaceDataset, dict[str, Any]]:
    """Synthetic train images per ``plan``, in ``train``'s class space and image shape; each
    image's source names its sampling seed and noise index (``augment.core.manifest``).

    What is kept is decided on training data only: the judge (trained on real images) and
    near-copies of training faces under the train-to-train threshold.
    """
    from gan.generate import sampling_seed
    from gan.sample import load_generator

    g, meta = load_generator(Path(generator_run), device=device, checkpoint=checkpoint)
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


STATE_FILE = ".rebalance.json"


def check_out_dir(out: Path, options: dict[str, Any], overwrite: bool) -> bool:
    """OUT must be new or empty, or an unfinished rebalance with the same options, or --overwrite.

    Returns True when resuming an interrupted run.
    """
    import json

    if not out.exists():
        return False
    if not out.is_dir():
        raise UserError(f"{out} is a file; --out must be a folder")
    entries = list(out.iterdir())
    if not entries:
        return False
    state = out / STATE_FILE
    if state.exists():
        old = json.loads(state.read_text())
        if old == options:
            return True
        if not overwrite:
            raise UserError(f"{out} holds a rebalance made with other options; use a new --out or pass --overwrite")
        return False
    if not overwrite:
        raise UserError(f"{out} is not empty; choose a new --out folder or pass --overwrite")
    return False


def remove_previous(out: Path) -> None:
    """Before ``--overwrite``: delete what an earlier rebalance wrote into ``out`` (the files of its
    manifest, its synthetic files, its CSV), so no stale file passes for part of the new dataset.
    Other files are left alone."""
    from augment.core.manifest import read_manifest

    if not (out / STATE_FILE).is_file():
        return
    paths = {"manifest.csv", "rebalance.json", "fer2013.csv"}
    if (out / "manifest.csv").is_file():
        paths |= {r["path"].split("#", 1)[0] for r in read_manifest(out)}
    paths |= {str(f.relative_to(out)) for f in out.glob("*/*/syn_*.png")}
    root = out.resolve()
    for rel in sorted(paths):
        f = out / rel
        if not f.is_file() or root not in f.resolve().parents:
            continue
        f.unlink()
        parent = f.parent
        while parent != out and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


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
) -> dict[str, Any]:
    """Synthesize per ``plan`` (less the classes ``quality.min_cas`` gates out) and write real + synthetic
    train, with val/test carried over unchanged."""
    from augment.core.atomic import write_json
    from augment.core.dataset import concat
    from augment.core.manifest import write_manifest
    from augment.writer import write_fer_csv, write_tree

    out = Path(out)
    if fmt not in ("folders", "fer2013-csv"):
        raise UserError(f"--format {fmt}: use folders or fer2013-csv")
    options = {
        "data": data.name,
        "generator_run": str(Path(generator_run).resolve()),
        "seed": seed,
        "format": fmt,
        "plan": [[p.name, p.real, p.add] for p in plan],
        "min_prob": quality.min_prob,
        "drop_near_copies": quality.drop_near_copies,
        "min_cas": quality.min_cas,
        "checkpoint": checkpoint,
    }
    resuming = check_out_dir(out, options, overwrite)
    if overwrite and not resuming:
        remove_previous(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / STATE_FILE, options)
    train = data.split("train").subset(~data.split("train").synthetic)
    plan, gate = gate_by_usefulness(plan, data, generator_run, quality, checkpoint, device)
    synthetic, report = synthesize(plan, generator_run, train, judge, quality, seed, device, progress, checkpoint)
    if gate:
        report["cas_gate"] = gate
        zero = {"added": 0, "generated": 0, "dropped_by_judge": 0, "dropped_near_copies": 0}
        report["per_class"].update({c: {**zero, "skipped": why} for c, why in gate["skipped"].items()})
    full = concat([data.subset(~data.synthetic), synthetic], name=data.name)
    meta = {"generator_run": report["generator_run"], "checkpoint_step": report["checkpoint_step"]}
    if fmt == "folders":
        rows = write_tree(full, out, meta, progress, keep_existing=resuming)
    else:
        rows = write_fer_csv(full, out, meta)
    write_manifest(out, rows)
    summary = {
        "out": str(out),
        "format": fmt,
        "resumed": resuming,
        "plan": [{"class": p.name, "real": p.real, "synthetic": p.add, "final": p.final} for p in plan],
        "synthesis": report,
        "files": len(rows),
        "synthetic_files": int(synthetic.synthetic.sum()),
        "splits": {s: int((full.splits == s).sum()) for s in ("train", "val", "test")},
    }
    write_json(out / "rebalance.json", summary)
    return summary
