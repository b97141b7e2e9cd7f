"""``augment gan-eval``: is a generator useful, class-faithful, diverse and novel?

Per class: the classification accuracy score (CAS) and its ratio to real data, the grading judge's
assignment and full sample confusion matrix, precision and recall (Kynkäänniemi et al. 2019) and KID
(Bińkowski et al. 2018) in the judge's features, the Fréchet distance, and memorisation.

CAS and precision/recall test on the validation split the generator never trained on
(``gan.validation.real_splits``). The samples use their own seed, never the one best-checkpoint
selection scored with, so selection does not grade itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.limits import apply_limit
from augment.core.progress import console
from augment.core.resize import resize_dataset
from classifier.judge import Judge, describe_judge, get_judge, judge_columns, judge_dir_of, judge_probabilities
from gan.cas import cas_metrics, classification_accuracy_score
from gan.config import DEFAULT_CHECKPOINT, EVAL_CAS_SEEDS, EVAL_PER_CLASS, EVAL_SEED, CasConfig, GanConfig
from gan.metrics import (
    PR_NEIGHBOURS,
    exposure_and_spread,
    find_inception_weights,
    frechet_distance,
    inception_features,
    judge_assignment,
    kernel_inception_distance,
    memorisation_report,
    sample_confusion,
    save_nearest_neighbour_png,
)
from gan.plots import plot_sample_confusion, plot_usefulness
from gan.translate import draw_per_class, load_any_generator
from gan.validation import judge_features, per_class_precision_recall, real_splits, val_fingerprint

FRECHET_REAL_PER_CLASS = 2000  # real training faces per class in the Fréchet and KID reference


def limited_as_trained(data: FaceDataset, cfg: dict[str, Any]) -> FaceDataset:
    """``data`` cut to the real training faces a generator trained with ``--limit`` saw (its config's limit),
    so memorisation, the real-data CAS and the judge see what it saw; ``data`` itself for an unlimited run."""
    return apply_limit(data, cfg.get("limit") or {}, float(cfg.get("val_fraction", GanConfig.val_fraction)))


def eval_splits(data: FaceDataset, meta: dict[str, Any], g: Any) -> tuple[FaceDataset, FaceDataset, list[str]]:
    """The generator's real train (minus validation) and validation faces at its size, carved as gan-train
    carved them (all classes first, then the generator's), and notes when they cannot be the ones it held out."""
    cfg, classes = meta["config"], meta["classes"]
    notes = []
    if "val_fraction" not in cfg:
        notes.append("this generator was trained before gan-train held out a validation split: it has seen those faces")
    train, val = real_splits(data, float(cfg.get("val_fraction", GanConfig.val_fraction)), classes)
    train = resize_dataset(train.remap_to(classes), g.size, g.channels)
    val = resize_dataset(val.remap_to(classes), g.size, g.channels)
    if len(val) == 0:
        notes.append(f"{data.name}: no validation faces of the generator's classes; CAS and recall are not measured")
    elif cfg.get("val_fingerprint") not in (None, val_fingerprint(val)):
        notes.append(f"{data.name}: these validation faces are not the ones gan-train held out; it may have seen them")
    return train, val, notes


def check_seed(seed: int, meta: dict[str, Any]) -> None:
    """gan-eval's samples must not be the ones best-checkpoint selection scored."""
    if seed == meta["config"].get("select_seed", GanConfig.select_seed):
        raise UserError(
            f"seed {seed} is the sample seed best-checkpoint selection scored with; use another so that "
            "selection does not grade itself"
        )


def check_cas_seeds(n: int) -> None:
    if n < 1:
        raise UserError(f"--cas-seeds {n}: give the CAS over at least 1 sample seed, e.g. {EVAL_CAS_SEEDS}")


def sample_seeds(seed: int, n: int, meta: dict[str, Any]) -> list[int]:
    """``seed`` and the next seeds, ``n`` in all, skipping the one best-checkpoint selection scored with."""
    check_seed(seed, meta)
    select = meta["config"].get("select_seed", GanConfig.select_seed)
    seeds = [seed]
    while len(seeds) < n:
        seeds.append(seeds[-1] + 1 + (seeds[-1] + 1 == select))
    return seeds


def cas_over_seeds(
    draw: Callable[[int], np.ndarray],
    labels: np.ndarray,
    val: FaceDataset,
    first: dict[str, Any],
    seeds: list[int],
    device: str,
) -> dict[str, Any]:
    """The CAS macro-F1 of samples drawn (``draw(seed)``) with each of ``seeds`` (``first``: the full CAS of
    ``seeds[0]``'s), their mean and standard deviation, against the real-trained classifier's (the same for
    every seed)."""
    f1 = [first["synthetic_macro_f1"]]
    for s in seeds[1:]:
        f1.append(cas_metrics(draw(s), labels, val, CasConfig(), device)["macro_f1"])
    return {
        "seeds": seeds,
        "synthetic_macro_f1": f1,
        "mean": float(np.mean(f1)),
        "sd": float(np.std(f1, ddof=1)) if len(f1) > 1 else None,
        "real_macro_f1": first["real_macro_f1"],
    }


def check_per_class(per_class: int) -> None:
    """``gan-eval --per-class``: a Fréchet distance needs at least two samples of a class."""
    if per_class < 2:
        raise UserError(f"--per-class {per_class}: score at least 2 samples per class, e.g. 200")


def evaluate_gan(
    run_dir: str | Path,
    data: FaceDataset,
    judge_dir: str | Path | None = None,
    per_class: int = EVAL_PER_CLASS,
    inception_weights: str | Path | None = None,
    device: str = "cpu",
    seed: int = EVAL_SEED,
    progress: bool = True,
    checkpoint: str = DEFAULT_CHECKPOINT,
    cas_seeds: int = EVAL_CAS_SEEDS,
) -> dict[str, Any]:
    """Score the run's ``checkpoint`` (best, falling back to last, or last) and write ``RUN/eval/``:
    metrics.json, judge.png, confusion.png, usefulness.png, nearest.png. Every score is of the samples
    drawn with ``seed``; the CAS macro-F1 is also given over ``cas_seeds`` sample seeds."""
    check_per_class(per_class)
    check_cas_seeds(cas_seeds)
    run_dir = Path(run_dir)
    g, meta = load_any_generator(run_dir, device=device, checkpoint=checkpoint)
    check_seed(seed, meta)
    classes = meta["classes"]
    data = limited_as_trained(data, meta["config"])
    train, val, notes = eval_splits(data, meta, g)
    real = resize_dataset(data.subset(~data.synthetic).with_classes(classes).remap_to(classes), g.size, g.channels)
    test = real.split("test") if real.has_split("test") else val
    judge = get_judge(data, run_dir, Path(judge_dir) if judge_dir else None, device, progress, kind="grading")
    judge_columns(judge[1], classes)  # a judge without the generator's classes fails here, before any work
    samples, labels, cand = draw_per_class(g, meta, train, per_class, seed, device)
    report = {
        "run_dir": str(run_dir),
        "recipe": meta["recipe"],
        "checkpoint": meta["checkpoint"],
        "checkpoint_step": meta["step"],
        "samples_per_class": per_class,
        "seed": seed,
        "notes": [n for n in [meta["note"], *notes] if n],
        "splits": {"train": train.counts(), "val": val.counts(), "val_fingerprint": val_fingerprint(val)},
        "judge": {
            **describe_judge(judge_dir_of(run_dir, judge_dir, "grading")),
            **_judge_scores(judge, samples, labels, test, classes, device),
        },
        **_feature_scores(samples, labels, train, val, judge, inception_weights, seed, device, progress),
        "cas": classification_accuracy_score(samples, labels, train, val, CasConfig(), device),
        "cas_over_seeds": None,
        "spread": {
            "reference": "real training faces of the class",
            "per_class": exposure_and_spread(samples, labels, train.images, train.labels, classes),
        },
        "memorisation": _memorisation(samples, labels, train, test, classes, run_dir),
    }
    if report["cas"]:
        seeds = sample_seeds(seed, cas_seeds, meta)
        draw = lambda s: draw_per_class(g, meta, train, per_class, s, device)[0]  # noqa: E731
        report["cas_over_seeds"] = cas_over_seeds(draw, labels, val, report["cas"], seeds, device)
    report["usefulness"] = usefulness_table(report)
    if cand is not None:
        from gan.transfer_eval import save_transfer_pairs, transfer_figures

        report["transfer"] = transfer_figures(judge, cand, labels, train, classes, device)
        title = f"{meta['checkpoint']} checkpoint, step {meta['step']}: source faces above their translations"
        save_transfer_pairs(cand, labels, classes, run_dir / "eval" / "transfer.png", title)
    write_json(run_dir / "eval" / "metrics.json", report)
    _pictures(report, run_dir / "eval")
    return report


def _judge_scores(
    judge: Judge, samples: np.ndarray, labels: np.ndarray, test: FaceDataset, classes: list[str], device: str
) -> dict[str, Any]:
    """Share of samples the judge puts in their class, the full sample confusion matrix (intended rows,
    judged columns), and the judge's recall on the real test faces (a report; nothing is chosen on it)."""
    sample_probs = judge_probabilities(judge, samples, classes, device)
    test_probs = judge_probabilities(judge, test.images, classes, device)
    return {
        "sample_assignment": judge_assignment(sample_probs, labels, classes),
        "sample_confusion": sample_confusion(sample_probs, labels, len(classes)).tolist(),
        "classes": list(classes),
        "real_test_recall": judge_assignment(test_probs, test.labels, classes),
        "chance": 1 / len(classes),
    }


def _memorisation(
    samples: np.ndarray, labels: np.ndarray, train: FaceDataset, test: FaceDataset, classes: list[str], out: Path
) -> dict[str, Any]:
    mem = memorisation_report(samples, labels, train.images, train.labels, test.images, test.labels, classes)
    nn_index, nn_distance = mem.pop("_sample_nn_index"), mem.pop("_sample_nn_distance")
    save_nearest_neighbour_png(
        samples, labels, nn_index, nn_distance, train.images, classes, out / "eval" / "nearest.png"
    )
    return mem


JUDGE_SPACE = "features of the grading judge (a real-only classifier)"


def _feature_scores(
    samples: np.ndarray,
    labels: np.ndarray,
    train: FaceDataset,
    val: FaceDataset,
    judge: Judge,
    inception_weights: str | Path | None,
    seed: int,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    """Fréchet distance and KID against one draw of real training faces, precision and recall against
    the validation faces; KID, precision and recall in the grading judge's features."""
    classes = list(train.classes)
    rng = np.random.default_rng(seed)
    ref = np.concatenate(
        [rng.permutation(np.flatnonzero(train.labels == k))[:FRECHET_REAL_PER_CLASS] for k in range(len(classes))]
    )
    ref_images, ref_labels = train.images[ref], train.labels[ref]
    f_samples, f_ref = judge_features(judge, samples, device), judge_features(judge, ref_images, device)
    f_val = judge_features(judge, val.images, device)
    kid = {
        c: kernel_inception_distance(f_samples[labels == k], f_ref[ref_labels == k], seed=seed)
        for k, c in enumerate(classes)
    }
    return {
        "frechet": _frechet(
            samples, labels, ref_images, ref_labels, (f_samples, f_ref), classes, inception_weights, device, progress
        ),
        "kid": {"space": JUDGE_SPACE, "reference": "real training faces (the Fréchet draw)", "per_class": kid},
        "precision_recall": {
            "space": JUDGE_SPACE,
            "reference": "real validation faces (never seen by the generator)",
            "k": PR_NEIGHBOURS,
            "per_class": per_class_precision_recall(f_val, val.labels, f_samples, labels, classes),
        },
    }


def _frechet(
    samples: np.ndarray,
    labels: np.ndarray,
    ref_images: np.ndarray,
    ref_labels: np.ndarray,
    judge_feats: tuple[np.ndarray, np.ndarray],
    classes: list[str],
    inception_weights: str | Path | None,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    """Per-class Fréchet distance of samples to real training faces: FID when the Inception weights
    are on disk, else in the judge's feature space (``judge_feats``: samples', reference's; named so)."""
    weights = find_inception_weights(inception_weights)
    if weights is not None:
        f_samples, f_ref = inception_features(samples, weights, device), inception_features(ref_images, weights, device)
        space = "FID (FID Inception network, pool3 2048-d)"
    else:
        f_samples, f_ref = judge_feats
        space = f"classifier Fréchet distance ({JUDGE_SPACE}; not FID)"
        if progress:
            console.print(
                "no FID Inception weights on disk (--inception-weights PATH or the torch hub cache): "
                "falling back to the judge classifier's feature space; this is not FID"
            )
    fd = {c: frechet_distance(f_samples[labels == k], f_ref[ref_labels == k]) for k, c in enumerate(classes)}
    return {"space": space, "reference": "real training faces", "per_class": fd}


def usefulness_table(report: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per class, the usefulness chart's figures (judge assignment, CAS ratio, precision, recall) and the
    brightness-spread ratio (samples over real; 1 is real faces' spread)."""
    cas = (report.get("cas") or {}).get("per_class", {})
    pr = report["precision_recall"]["per_class"]
    return {
        c: {
            "assignment": a,
            "cas_ratio": (cas.get(c) or {}).get("ratio"),
            "precision": (pr.get(c) or {}).get("precision"),
            "recall": (pr.get(c) or {}).get("recall"),
            "brightness_ratio": ((report.get("spread") or {}).get("per_class", {}).get(c) or {}).get(
                "brightness_ratio"
            ),
        }
        for c, a in report["judge"]["sample_assignment"].items()
    }


def _pictures(report: dict[str, Any], out: Path) -> None:
    """judge.png, confusion.png and usefulness.png, each titled with the judge it comes from."""
    j = report["judge"]
    which = f"judge {j['run']} ({'class-weighted' if j['leans_to_small_classes'] else 'no class weights'})"
    step = f"{report['checkpoint']} checkpoint, step {report['checkpoint_step']}"
    plot_assignment(report, out / "judge.png", f"{which}; {step}")
    plot_sample_confusion(j["sample_confusion"], j["classes"], out / "confusion.png", f"samples: {which}; {step}")
    plot_usefulness(report["usefulness"], out / "usefulness.png", f"assignment: {which}; CAS on validation; {step}")


def plot_assignment(report: dict[str, Any], path: Path, title: str) -> None:
    """Bars: share of samples the judge puts in their class, beside its recall on real test faces."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from augment.core.atomic import save_figure

    j = report["judge"]
    classes = list(j["sample_assignment"])
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(1.1 * len(classes) + 2, 3.6))
    ax.bar(x - 0.2, [j["sample_assignment"][c] for c in classes], 0.4, label="generated → intended class")
    ax.bar(x + 0.2, [j["real_test_recall"].get(c, 0) for c in classes], 0.4, label="real test recall")
    ax.axhline(j["chance"], color="gray", ls="--", lw=1, label="chance")
    ax.set_xticks(x, classes, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    save_figure(path, fig)


def run_cas(
    run_dir: str | Path,
    data: FaceDataset,
    checkpoint: str = DEFAULT_CHECKPOINT,
    device: str = "cpu",
    per_class: int = EVAL_PER_CLASS,
    seed: int = EVAL_SEED,
) -> dict[str, Any] | None:
    """The per-class CAS of the run's ``checkpoint`` on ``data``'s validation faces: read from gan-eval's
    ``RUN/eval/metrics.json`` when it was measured there on the same checkpoint and the same validation
    faces, else measured here as gan-eval measures it (nothing is written). ``source`` says which.
    None when ``data`` has no validation faces of the generator's classes."""
    import json

    run_dir = Path(run_dir)
    g, meta = load_any_generator(run_dir, device=device, checkpoint=checkpoint)
    train, val, _ = eval_splits(data, meta, g)
    stored_file = run_dir / "eval" / "metrics.json"
    stored = json.loads(stored_file.read_text()) if stored_file.is_file() else {}
    same = (stored.get("checkpoint"), stored.get("checkpoint_step")) == (meta["checkpoint"], meta["step"])
    if same and stored.get("cas") and (stored.get("splits") or {}).get("val_fingerprint") == val_fingerprint(val):
        return {**stored["cas"], "checkpoint": meta["checkpoint"], "source": str(stored_file)}
    check_seed(seed, meta)
    samples, labels, _ = draw_per_class(g, meta, train, per_class, seed, device)
    cas = classification_accuracy_score(samples, labels, train, val, CasConfig(), device)
    if cas is None:
        return None
    return {**cas, "checkpoint": meta["checkpoint"], "source": "measured now (no matching gan-eval output)"}
