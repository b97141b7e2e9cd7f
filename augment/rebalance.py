"""Synthesize the classes a dataset lacks, keeping only samples that pass a quality filter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import make_progress
from augment.core.resize import resize_images
from augment.plan import ClassPlan


@dataclass
class QualityFilter:
    """Drop samples the real-only judge does not call their class, and near-copies of training faces."""

    # 0 switches the judge filter off. 0.3, not 0.5: a 7-class FER2013 judge gives p >= 0.5 to only 12-15% of
    # the real sad and fear test faces (0.3: 32-45%), so 0.5 rejects what real data would pass.
    min_prob: float = 0.3
    drop_near_copies: bool = True
    near_copy_quantile: float = 0.01
    max_tries: int = 30  # candidates per wanted image before giving up


def near_copy_threshold(train: np.ndarray, quantile: float = 0.01, n: int = 1000, seed: int = 0) -> float:
    """Distance under which a sample counts as a copy: the ``quantile`` of nearest-neighbour
    distances between distinct real training faces (exact duplicates ignored). Training data only."""
    import torch

    if len(train) < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), size=min(n, len(train)), replace=False)
    q = torch.from_numpy(train[pick].reshape(len(pick), -1)).float()
    bank = torch.from_numpy(train.reshape(len(train), -1)).float()
    nearest = []
    for i in range(0, len(q), 256):
        d = torch.cdist(q[i : i + 256], bank)
        d[torch.arange(len(d)), torch.from_numpy(pick[i : i + 256])] = float("inf")  # not itself
        nearest.append((d.min(1).values / q.shape[1] ** 0.5).numpy())
    d = np.concatenate(nearest)
    d = d[d > 0.5]
    return float(np.quantile(d, quantile)) if len(d) else 0.0


def synthesize(
    plan: list[ClassPlan],
    generator_run: str | Path,
    train: FaceDataset,
    judge: tuple[Any, dict[str, Any]] | None,
    quality: QualityFilter,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[FaceDataset, dict[str, Any]]:
    """Synthetic train images per ``plan``, in ``train``'s class space and image shape.

    Candidates are generated in a fixed order (seed, class, candidate index), so the
    accepted set, and the files written from it, are the same on every rerun.
    """
    from classifier.inference import predict_proba
    from gan.metrics import nearest_distances
    from gan.sample import generate_images, load_generator

    g, meta = load_generator(Path(generator_run), device=device)
    gclasses = meta["classes"]
    wanted = [p for p in plan if p.add > 0]
    report: dict[str, Any] = {
        "generator_run": str(generator_run),
        "checkpoint_step": meta["step"],
        "seed": seed,
        "min_prob": quality.min_prob if judge else None,
        "per_class": {},
    }
    if quality.min_prob > 0 and judge is None:
        raise UserError("the quality filter needs a judge classifier; pass one or switch the filter off")
    if judge is not None and quality.min_prob > 0:
        jclasses = list(judge[1]["classes"])
        unknown = [p.name for p in wanted if p.name not in jclasses]
        if unknown:
            raise UserError(
                f"the judge classifier cannot score {', '.join(unknown)} (it knows {', '.join(jclasses)}); "
                "pass a judge trained on these classes or switch the filter off"
            )
    threshold = 0.0
    if quality.drop_near_copies and wanted:
        threshold = near_copy_threshold(resize_images(train.images, g.size, g.channels), quality.near_copy_quantile)
        report["near_copy_threshold"] = threshold
    images, labels, sources = [], [], []
    with make_progress() as prog:
        task = prog.add_task("synthesizing", total=sum(p.add for p in wanted)) if progress else None
        for p in wanted:
            if p.name not in gclasses:
                raise UserError(f"the generator in {generator_run} cannot make '{p.name}'")
            gl = gclasses.index(p.name)
            class_seed = seed * 1000 + gl
            bank = resize_images(train.images[train.labels == train.classes.index(p.name)], g.size, g.channels)
            accepted: list[np.ndarray] = []
            tried = dropped_judge = dropped_copy = 0
            while len(accepted) < p.add:
                if tried >= quality.max_tries * p.add:
                    raise UserError(
                        f"{p.name}: only {len(accepted)} of {p.add} samples passed the quality filter after "
                        f"{tried} tries; lower --min-prob or train the generator longer"
                    )
                n = int(min(1024, max(64, 1.5 * (p.add - len(accepted)))))
                cand = generate_images(g, np.full(n, gl), seed=class_seed, device=device, offset=tried)
                tried += n
                keep = np.ones(n, dtype=bool)
                if judge is not None and quality.min_prob > 0:
                    jm, jmeta = judge
                    jcls = list(jmeta["classes"])
                    probs = predict_proba(
                        jm, resize_images(cand, int(jmeta["size"]), int(jmeta["channels"])), device=device
                    )
                    ok = probs[:, jcls.index(p.name)] >= quality.min_prob
                    dropped_judge += int((~ok).sum())
                    keep &= ok
                if quality.drop_near_copies and len(bank) and keep.any():
                    dist, _ = nearest_distances(cand[keep], bank)
                    copy = np.zeros(n, dtype=bool)
                    copy[np.flatnonzero(keep)] = dist < threshold
                    dropped_copy += int(copy.sum())
                    keep &= ~copy
                room = p.add - len(accepted)
                taken = cand[keep][:room]
                accepted += list(taken)
                if task is not None:
                    prog.advance(task, len(taken))
            arr = np.stack(accepted) if accepted else np.zeros((0, g.channels, g.size, g.size), np.uint8)
            images.append(resize_images(arr, train.size, train.channels))
            labels += [train.classes.index(p.name)] * len(arr)
            sources += [f"synthetic:{p.name}/syn_{p.name}_{k:06d}.png" for k in range(len(arr))]
            report["per_class"][p.name] = {
                "added": len(arr),
                "generated": tried,
                "dropped_by_judge": dropped_judge,
                "dropped_near_copies": dropped_copy,
            }
    n = len(labels)
    synthetic = FaceDataset(
        images=np.concatenate(images) if images else np.zeros((0, *train.images.shape[1:]), np.uint8),
        labels=np.array(labels, dtype=np.int64),
        splits=np.full(n, "train"),
        sources=np.array(sources, dtype=str),
        subjects=np.full(n, "", dtype=str),
        classes=list(train.classes),
        synthetic=np.ones(n, dtype=bool),
        name=f"synthetic from {generator_run}",
    )
    return synthetic, report


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
    from augment.writer import read_manifest

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
) -> dict[str, Any]:
    """Synthesize per ``plan`` and write real + synthetic train, with val/test carried over unchanged."""
    from augment.core.atomic import write_json
    from augment.core.dataset import concat
    from augment.writer import write_fer_csv, write_manifest, write_tree

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
    }
    resuming = check_out_dir(out, options, overwrite)
    if overwrite and not resuming:
        remove_previous(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / STATE_FILE, options)
    train = data.split("train").subset(~data.split("train").synthetic)
    synthetic, report = synthesize(plan, generator_run, train, judge, quality, seed, device, progress)
    full = concat([data.subset(~data.synthetic), synthetic], name=data.name)
    meta = {"generator_run": report["generator_run"], "checkpoint_step": report["checkpoint_step"], "seed": seed}
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
