"""Statistics that hold with few seeds: a paired bootstrap over seeds and test images together.

Each replicate draws the seeds again (with replacement) and, within each drawn seed, the test images again
(with replacement). Every condition of a model is scored on the same drawn seeds and the same drawn images,
so a difference between two conditions is paired image by image. A figure of a replicate is the mean over its
drawn seeds of the figure on its drawn images; a 95% interval is the 2.5th to 97.5th percentile of the
replicates. Intervals of accuracy, macro-F1 and recall therefore never leave [0, 1].

A difference is called significant only from at least ``min_seeds`` seeds, when it varies at all (across the
seeds and across the replicates), and when its two-sided bootstrap p-value is below 1 − level.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

FIGURES = ("accuracy", "macro_f1", "balanced_accuracy")
CHUNK_CELLS = 2_000_000  # image draws held in memory at once (16 MB of indices)


@dataclass(frozen=True)
class BootstrapConfig:
    """How the intervals and tests of ``augment compare`` are made."""

    resamples: int = 2000
    level: float = 0.95
    seed: int = 0
    min_seeds: int = 3  # fewer seeds: differences are shown, never called significant


def figures(support: np.ndarray, hits: np.ndarray, said: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, macro-F1, balanced accuracy and per-class recall from per-class tallies.

    ``support`` (..., K) counts the true images of each class, ``hits`` and ``said`` (..., C, K) the correct and
    all predictions of each class for C conditions. Recall of a class without images is NaN; the macro averages
    run over the classes present (as ``classifier.metrics`` does).
    """
    support = support[..., None, :]
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        present = support > 0
        recall = np.where(present, hits / support, np.nan)
        precision = np.where(said > 0, hits / said, 0.0)
        both = precision + np.nan_to_num(recall)
        f1 = np.where(present, np.where(both > 0, 2 * precision * np.nan_to_num(recall) / both, 0.0), np.nan)
        return {
            "accuracy": hits.sum(-1) / support.sum(-1),
            "macro_f1": np.nanmean(f1, axis=-1),
            "balanced_accuracy": np.nanmean(recall, axis=-1),
            "recall": recall,
        }


def _design(labels: np.ndarray, preds: np.ndarray, k: int) -> np.ndarray:
    """(N, K + 2CK): each image's class, and per condition whether it was right and what it said, one-hot,
    so that a row of image weights times this matrix gives the weighted tallies of every condition."""
    eye = np.eye(k, dtype=np.float32)
    truth = eye[labels]
    hit = (preds == labels)[..., None] * truth  # (C, N, K)
    said = eye[preds]
    n = len(labels)
    return np.concatenate([truth, hit.transpose(1, 0, 2).reshape(n, -1), said.transpose(1, 0, 2).reshape(n, -1)], 1)


def _tallies(t: np.ndarray, c: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lead = t.shape[:-1]
    return t[..., :k], t[..., k : k + c * k].reshape(*lead, c, k), t[..., k + c * k :].reshape(*lead, c, k)


def _replicates(designs: list[np.ndarray], c: int, k: int, cfg: BootstrapConfig) -> dict[str, np.ndarray]:
    """Seed-mean figures of ``cfg.resamples`` replicates: {figure: (B, C)} and recall (B, C, K)."""
    s, n = len(designs), designs[0].shape[0]
    rng = np.random.default_rng(cfg.seed)
    chunk = max(1, CHUNK_CELLS // (s * n))
    parts: list[dict[str, np.ndarray]] = []
    for start in range(0, cfg.resamples, chunk):
        rows = min(chunk, cfg.resamples - start) * s
        seeds = rng.integers(0, s, size=rows)
        draws = rng.integers(0, n, size=(rows, n)) + np.arange(rows)[:, None] * n
        weights = np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float32)
        t = np.empty((rows, designs[0].shape[1]), dtype=np.float32)
        for j, design in enumerate(designs):
            t[seeds == j] = weights[seeds == j] @ design
        got = figures(*_tallies(t.astype(np.float64), c, k))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a class drawn in none of a replicate's seeds
            parts.append({f: np.nanmean(v.reshape(rows // s, s, *v.shape[1:]), axis=1) for f, v in got.items()})
    return {f: np.concatenate([p[f] for p in parts]) for f in parts[0]}


def bootstrap(
    labels: np.ndarray, preds: np.ndarray, k: int, cfg: BootstrapConfig
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-seed figures {figure: (S, C)} (recall (S, C, K)) and the replicates' seed means (B first).

    ``labels`` (N,) are the true classes of the test images, ``preds`` (C, S, N) what each condition's run of
    each seed predicted for them (seed j of every condition is the same seed: the pairing).
    """
    labels = np.asarray(labels, dtype=np.int64)
    preds = np.asarray(preds, dtype=np.int64)
    c, s, _ = preds.shape
    designs = [_design(labels, preds[:, j], k) for j in range(s)]
    observed = [figures(*_tallies(d.sum(0, dtype=np.float64), c, k)) for d in designs]
    per_seed = {f: np.stack([o[f] for o in observed]) for f in observed[0]}
    return per_seed, _replicates(designs, c, k, cfg)


def _number(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def estimate(per_seed: np.ndarray, replicates: np.ndarray, level: float) -> dict[str, float | None]:
    """Mean over seeds and the percentile interval of the replicates (None where undefined)."""
    reps = replicates[np.isfinite(replicates)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = float(np.nanmean(per_seed)) if np.isfinite(per_seed).any() else float("nan")
    if not len(reps):
        return {"mean": _number(mean), "lo": None, "hi": None}
    lo, hi = np.percentile(reps, [50 * (1 - level), 50 * (1 + level)])
    return {"mean": _number(mean), "lo": float(lo), "hi": float(hi)}


def difference(per_seed: np.ndarray, replicates: np.ndarray, cfg: BootstrapConfig) -> dict[str, Any]:
    """A paired difference (per-seed differences, replicate differences): mean, interval, two-sided p, and
    whether it may be called significant; ``untested`` says why not when it may not."""
    est = estimate(per_seed, replicates, cfg.level)
    out: dict[str, Any] = {"diff": est["mean"], "lo": est["lo"], "hi": est["hi"]}
    reps = replicates[np.isfinite(replicates)]
    seeds = per_seed[np.isfinite(per_seed)]
    p = float("nan")
    if len(reps):
        tail = min(np.count_nonzero(reps <= 0), np.count_nonzero(reps >= 0))
        p = min(1.0, 2 * (tail + 1) / (len(reps) + 1))
    untested = None
    if not len(seeds):
        untested = "undefined"
    elif len(seeds) < cfg.min_seeds:
        untested = f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
    elif np.ptp(seeds) <= 1e-12 or not len(reps) or np.ptp(reps) <= 1e-12:
        untested = "zero variance"
    out.update(p=_number(p), seeds=int(len(seeds)), untested=untested)
    out["significant"] = bool(untested is None and p < 1 - cfg.level)
    return out


def compare_conditions(
    labels: np.ndarray, preds: dict[str, np.ndarray], classes: list[str], cfg: BootstrapConfig
) -> dict[str, dict[str, Any]]:
    """Every condition's figures with intervals, and its paired differences against every other condition.

    ``preds`` maps a condition to its (S, N) predictions, seeds in the same order for every condition.
    Returns condition → {seeds, accuracy, macro_f1, balanced_accuracy, recall: {class: …}, vs: {other: …}}.
    """
    names = list(preds)
    per_seed, reps = bootstrap(labels, np.stack([preds[c] for c in names]), len(classes), cfg)
    out: dict[str, dict[str, Any]] = {}
    for i, cond in enumerate(names):
        entry: dict[str, Any] = {"seeds": int(per_seed["accuracy"].shape[0])}
        entry.update({f: estimate(per_seed[f][:, i], reps[f][:, i], cfg.level) for f in FIGURES})
        entry["recall"] = {
            cls: estimate(per_seed["recall"][:, i, q], reps["recall"][:, i, q], cfg.level)
            for q, cls in enumerate(classes)
        }
        entry["vs"] = {ref: _differences(per_seed, reps, i, r, classes, cfg) for r, ref in enumerate(names) if r != i}
        out[cond] = entry
    return out


def _differences(
    per_seed: dict[str, np.ndarray],
    reps: dict[str, np.ndarray],
    a: int,
    b: int,
    classes: list[str],
    cfg: BootstrapConfig,
) -> dict[str, Any]:
    """Condition a − condition b on every figure and every class's recall."""
    out: dict[str, Any] = {
        f: difference(per_seed[f][:, a] - per_seed[f][:, b], reps[f][:, a] - reps[f][:, b], cfg) for f in FIGURES
    }
    s, r = per_seed["recall"], reps["recall"]
    out["recall"] = {
        cls: difference(s[:, a, q] - s[:, b, q], r[:, a, q] - r[:, b, q], cfg) for q, cls in enumerate(classes)
    }
    return out
