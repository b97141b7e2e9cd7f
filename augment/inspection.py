"""What is in a dataset: counts, imbalance, exact duplicates, unreadable files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augment.core.dataset import SPLITS, FaceDataset
from augment.core.errors import UserError


def imbalance_ratio(counts: dict[str, int]) -> float | None:
    """Largest class / smallest class, over the classes present; None if a class is empty."""
    values = [v for v in counts.values()]
    if not values or min(values) == 0:
        return None
    return max(values) / min(values)


def duplicate_report(ds: FaceDataset) -> dict[str, Any]:
    """Exact duplicates by a hash of the decoded pixels, within and across splits."""
    hashes = ds.pixel_hashes()
    within: dict[str, dict[str, int]] = {}
    by_split: dict[str, set[str]] = {}
    for split in SPLITS:
        h = hashes[ds.splits == split]
        if len(h) == 0:
            continue
        _, counts = np.unique(h, return_counts=True)
        within[split] = {
            "images_in_duplicate_groups": int(counts[counts > 1].sum()),
            "groups": int((counts > 1).sum()),
            "redundant_copies": int((counts - 1).sum()),
        }
        by_split[split] = set(h.tolist())
    across: dict[str, int] = {}
    for a, b in (("train", "test"), ("train", "val"), ("val", "test")):
        if a in by_split and b in by_split:
            hb = hashes[ds.splits == b]
            across[f"{b}_in_{a}"] = int(np.isin(hb, list(by_split[a])).sum())
    return {"within_split": within, "across_splits": across}


def _class_counts(ds: FaceDataset, mask: np.ndarray) -> dict[str, int]:
    """Images per class among ``mask`` (every class listed, zeros included)."""
    binc = np.bincount(ds.labels[mask], minlength=ds.num_classes)
    return {c: int(binc[i]) for i, c in enumerate(ds.classes)}


def inspect_dataset(ds: FaceDataset) -> dict[str, Any]:
    splits = [s for s in SPLITS if ds.has_split(s)]
    counts = {s: ds.counts(s) for s in splits}
    return {
        "dataset": ds.name,
        "images": len(ds),
        "image_shape": list(ds.images.shape[1:]),
        "classes": list(ds.classes),
        "counts": counts,
        "totals": {s: int(sum(c.values())) for s, c in counts.items()},
        "imbalance_ratio": {s: imbalance_ratio(c) for s, c in counts.items()},
        "duplicates": duplicate_report(ds),
        "unreadable": [{"path": p, "reason": why} for p, why in ds.skipped],
        "dropped": dict(ds.dropped),
        "subjects": int(len(set(ds.subjects.tolist()) - {""})),
        "synthetic": int(ds.synthetic.sum()),
        # real and synthetic images per split and class (they add up to "counts")
        "real_counts": {s: _class_counts(ds, (ds.splits == s) & ~ds.synthetic) for s in splits},
        "synthetic_counts": {s: _class_counts(ds, (ds.splits == s) & ds.synthetic) for s in splits},
    }


def plot_distribution(report: dict[str, Any], path: str | Path) -> None:
    """A grouped bar chart of images per class and split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backend_bases import FigureCanvasBase

    from augment.core.atomic import save_figure

    suffix = Path(path).suffix.lower().lstrip(".")
    supported = FigureCanvasBase.get_supported_filetypes()
    if suffix not in supported:
        raise UserError(f"{path}: cannot write a chart as '.{suffix}'; use one of .{', .'.join(sorted(supported))}")
    classes = report["classes"]
    splits = list(report["counts"])
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(classes) + 2), 4))
    width = 0.8 / max(1, len(splits))
    x = np.arange(len(classes))
    for i, split in enumerate(splits):
        vals = [report["counts"][split][c] for c in classes]
        bars = ax.bar(x + (i - (len(splits) - 1) / 2) * width, vals, width, label=split)
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, classes, rotation=20)
    ax.set_ylabel("images")
    ratios = ", ".join(f"{s} {r:.1f}" for s, r in report["imbalance_ratio"].items() if r is not None)
    ax.set_title(f"Class distribution — {Path(report['dataset']).name or report['dataset']} (imbalance {ratios})")
    ax.legend()
    ax.spines[["top", "right"]].set_visible(False)
    save_figure(path, fig)
