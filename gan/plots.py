"""Pictures of GAN training and evaluation: loss curves, selection scores, per-class usefulness."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_losses(records: list[dict[str, Any]], path: Path) -> None:
    """D and G loss (and D's mean logits on real/fake) against step (selection records are skipped)."""
    records = [r for r in records if "d_loss" in r]
    if not records:
        return
    from augment.core.atomic import save_figure

    plt = _plt()
    steps = [r["step"] for r in records]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.plot(steps, [r["d_loss"] for r in records], label="D loss", lw=1)
    a1.plot(steps, [r["g_loss"] for r in records], label="G loss", lw=1)
    a1.set_xlabel("step")
    a1.set_title("losses")
    a1.legend()
    a2.plot(steps, [r["d_real"] for r in records], label="D(real)", lw=1)
    a2.plot(steps, [r["d_fake"] for r in records], label="D(fake)", lw=1)
    a2.set_xlabel("step")
    a2.set_title("discriminator outputs")
    a2.legend()
    for a in (a1, a2):
        a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    save_figure(path, fig)


def plot_selection(records: list[dict[str, Any]], path: Path) -> None:
    """Best-checkpoint selection against step: the score, and each class's assignment and recall."""
    records = [r for r in records if "selection" in r]
    if not records:
        return
    from augment.core.atomic import save_figure

    plt = _plt()
    steps = [r["step"] for r in records]
    classes = list(records[0]["selection"]["per_class"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    axes[0].plot(steps, [r["selection"]["score"] for r in records], "o-", ms=3, color="black")
    for r in records:
        if r.get("best"):
            axes[0].axvline(r["step"], color="green", lw=0.5, ls=":")
    axes[0].set_title("selection score (green: new best)")
    for ax, key in ((axes[1], "assignment"), (axes[2], "recall")):
        for c in classes:
            ys = [r["selection"]["per_class"][c][key] for r in records]
            ax.plot(steps, [float("nan") if y is None else y for y in ys], "o-", ms=2, lw=1, label=c)
        ax.set_title(f"per-class {key} (validation)")
        ax.set_ylim(0, 1)
    axes[2].legend(fontsize=7, ncol=2)
    for ax in axes:
        ax.set_xlabel("step")
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    save_figure(path, fig)


def plot_usefulness(per_class: dict[str, dict[str, float | None]], path: Path, title: str) -> None:
    """Per class, side by side: judge assignment, CAS ratio, precision and recall (missing ones left out)."""
    import numpy as np

    from augment.core.atomic import save_figure

    plt = _plt()
    classes = list(per_class)
    keys = ("assignment", "cas_ratio", "precision", "recall")
    x = np.arange(len(classes))
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(1.3 * len(classes) + 2, 3.8))
    for i, key in enumerate(keys):
        ys = [per_class[c].get(key) for c in classes]
        ax.bar(x + (i - 1.5) * width, [np.nan if y is None else y for y in ys], width, label=key.replace("_", " "))
    ax.axhline(1.0, color="gray", ls="--", lw=0.8)
    ax.set_xticks(x, classes, rotation=20)
    ax.set_ylim(0, max(1.1, *(per_class[c].get("cas_ratio") or 0 for c in classes)))
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, ncol=4)
    ax.spines[["top", "right"]].set_visible(False)
    save_figure(path, fig)


def plot_sample_confusion(cm: list[list[int]], classes: list[str], path: Path, title: str) -> None:
    """Where each class's samples went: intended class (rows) against the judge's class (columns),
    row-normalised, so a generator whose samples are all judged "sad" shows one dark column."""
    import numpy as np

    from augment.core.atomic import save_figure
    from classifier.plots import draw_confusion, normalise_rows

    plt = _plt()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k))
    im = draw_confusion(ax, normalise_rows(np.asarray(cm)), classes)
    ax.set_xlabel("judged class")
    ax.set_ylabel("intended class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(path, fig)
