"""``augment gan-eval``: how good, how class-faithful and how novel a generator's samples are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset
from augment.core.errors import UserError
from augment.core.progress import console
from augment.core.resize import resize_dataset
from classifier.inference import prepare_images
from classifier.judge import JUDGE_DIR, Judge, get_judge, judge_columns, judge_probabilities
from gan.metrics import (
    classifier_features,
    find_inception_weights,
    frechet_distance,
    inception_features,
    judge_assignment,
    memorisation_report,
    save_nearest_neighbour_png,
)
from gan.sample import generate_images, load_generator

FRECHET_REAL_PER_CLASS = 2000  # real training faces per class in the Fréchet reference


def check_per_class(per_class: int) -> None:
    """``gan-eval --per-class``: a Fréchet distance needs at least two samples of a class."""
    if per_class < 2:
        raise UserError(f"--per-class {per_class}: score at least 2 samples per class, e.g. 200")


def evaluate_gan(
    run_dir: str | Path,
    data: FaceDataset,
    judge_dir: str | Path | None = None,
    per_class: int = 200,
    inception_weights: str | Path | None = None,
    device: str = "cpu",
    seed: int = 12345,
    progress: bool = True,
) -> dict[str, Any]:
    """Per-class Fréchet distance, judge assignment vs judge recall on real test, memorisation."""
    check_per_class(per_class)
    run_dir = Path(run_dir)
    g, meta = load_generator(run_dir, device=device)
    classes = meta["classes"]
    real = resize_dataset(data.subset(~data.synthetic).with_classes(classes).remap_to(classes), g.size, g.channels)
    train, test = real.split("train"), real.split("test") if real.has_split("test") else real.split("val")
    judge = get_judge(real, run_dir, Path(judge_dir) if judge_dir else None, device, progress)
    judge_columns(judge[1], classes)  # a judge without the generator's classes fails here, before any work
    labels = np.repeat(np.arange(len(classes)), per_class)
    samples = generate_images(g, labels, seed=seed, device=device)
    mem = memorisation_report(samples, labels, train.images, train.labels, test.images, test.labels, classes)
    nn_index, nn_distance = mem.pop("_sample_nn_index"), mem.pop("_sample_nn_distance")
    save_nearest_neighbour_png(
        samples, labels, nn_index, nn_distance, train.images, classes, run_dir / "eval" / "nearest.png"
    )
    report = {
        "run_dir": str(run_dir),
        "checkpoint_step": meta["step"],
        "samples_per_class": per_class,
        "seed": seed,
        "frechet": _frechet(samples, labels, train, judge, inception_weights, seed, device, progress),
        "judge": {
            "run": str(judge_dir or run_dir / JUDGE_DIR),
            **_judge_scores(judge, samples, labels, test, classes, device),
            "chance": 1 / len(classes),
        },
        "memorisation": mem,
    }
    write_json(run_dir / "eval" / "metrics.json", report)
    plot_assignment(report, run_dir / "eval" / "judge.png")
    return report


def _judge_scores(
    judge: Judge, samples: np.ndarray, labels: np.ndarray, test: FaceDataset, classes: list[str], device: str
) -> dict[str, dict[str, float]]:
    """Share of samples the judge puts in their class, and its recall on the real test faces."""
    sample_probs = judge_probabilities(judge, samples, classes, device)
    test_probs = judge_probabilities(judge, test.images, classes, device)
    return {
        "sample_assignment": judge_assignment(sample_probs, labels, classes),
        "real_test_recall": judge_assignment(test_probs, test.labels, classes),
    }


def _frechet(
    samples: np.ndarray,
    labels: np.ndarray,
    train: FaceDataset,
    judge: Judge,
    inception_weights: str | Path | None,
    seed: int,
    device: str,
    progress: bool,
) -> dict[str, Any]:
    """Per-class Fréchet distance of samples to real training faces: FID when the Inception weights
    are on disk, else in the judge classifier's feature space (and named so)."""
    weights = find_inception_weights(inception_weights)
    space = (
        "FID (FID Inception network, pool3 2048-d)"
        if weights is not None
        else "classifier Fréchet distance (features of the real-only judge classifier; not FID)"
    )
    if weights is None and progress:
        console.print(
            "no FID Inception weights on disk (--inception-weights PATH or the torch hub cache): "
            "falling back to the judge classifier's feature space; this is not FID"
        )

    def feat(images: np.ndarray) -> np.ndarray:
        if weights is not None:
            return inception_features(images, weights, device)
        return classifier_features(judge[0], prepare_images(images, judge[1]), device)

    rng = np.random.default_rng(seed)
    f_samples = feat(samples)
    fd: dict[str, float] = {}
    for k, c in enumerate(train.classes):
        idx = np.flatnonzero(train.labels == k)
        idx = rng.choice(idx, size=min(len(idx), FRECHET_REAL_PER_CLASS), replace=False)
        fd[c] = frechet_distance(f_samples[labels == k], feat(train.images[idx]))
    return {"space": space, "per_class": fd}


def plot_assignment(report: dict[str, Any], path: Path) -> None:
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
    ax.set_title(f"judge classifier (real images only), step {report['checkpoint_step']}")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    save_figure(path, fig)
