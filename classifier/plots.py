"""Pictures FER practitioners expect: training curves and confusion matrices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    """Accuracy and loss, train vs validation, per epoch."""
    if not history:
        return
    from augment.core.atomic import save_figure

    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(ep, [h["train_acc"] for h in history], "o-", ms=3, label="train accuracy")
    a1.plot(ep, [h["val_acc"] for h in history], "o-", ms=3, label="val accuracy")
    a1.plot(ep, [h["val_macro_f1"] for h in history], "s--", ms=3, label="val macro-F1")
    a1.set_xlabel("epoch")
    a1.set_ylim(0, 1)
    a1.legend()
    a1.set_title("accuracy")
    a2.plot(ep, [h["train_loss"] for h in history], "o-", ms=3, label="train loss")
    a2.plot(ep, [h["val_loss"] for h in history], "o-", ms=3, label="val loss")
    a2.set_xlabel("epoch")
    a2.legend()
    a2.set_title("loss")
    for a in (a1, a2):
        a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    save_figure(path, fig)


def normalise_rows(cm: np.ndarray) -> np.ndarray:
    """Each true class's row as shares (recall on the diagonal); empty rows stay 0."""
    cm = np.asarray(cm, dtype=float)
    rows = cm.sum(1, keepdims=True)
    return np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)


def draw_confusion(ax, norm: np.ndarray, classes: list[str], fontsize: int = 8):
    """A row-normalised confusion matrix as a heat map with its values written in the cells."""
    k = len(classes)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            color = "white" if norm[i, j] > 0.5 else "black"
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=fontsize, color=color)
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=fontsize)
    ax.set_yticks(range(k), classes, fontsize=fontsize)
    return im


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix: each row shows where a true class's images went."""
    from augment.core.atomic import save_figure

    plt = _plt()
    norm = normalise_rows(cm)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k))
    im = draw_confusion(ax, norm, classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(path, fig)
