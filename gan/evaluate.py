"""``augment gan-eval``: how good, how class-faithful and how novel a generator's samples are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from augment.core.atomic import write_json
from augment.core.dataset import FaceDataset
from augment.core.progress import console
from augment.core.resize import resize_dataset, resize_images
from classifier.config import TrainConfig
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

JUDGE_DIR = "judge"


def default_judge_config(n_train: int) -> TrainConfig:
    """A quick real-only classifier: ResNet18 learns fastest per CPU-minute here (it reached 54% on the
    demo faces in 6 epochs where ResEmoteNet-0.25 and the plain CNNs stayed near 30%); class-weighted
    so rare classes get recall. 8 epochs of at most 8,192 images: minutes on FER2013."""
    return TrainConfig(model="resnet18", epochs=8, class_weighted=True, patience=0, epoch_samples=min(n_train, 8192))


def get_judge(data: FaceDataset, run_dir: Path, judge_dir: Path | None, device: str, progress: bool = True):
    """The user's classifier run, or one trained here on the real training images (kept for reuse)."""
    from classifier.inference import load_classifier
    from classifier.train import train_classifier

    if judge_dir is None:
        judge_dir = run_dir / JUDGE_DIR
        if not (judge_dir / "summary.json").exists():  # missing or interrupted: train or resume it
            if progress:
                console.print(f"training a judge classifier on the real training images into {judge_dir}")
            real = data.subset(~data.synthetic)
            cfg = default_judge_config(int((real.splits == "train").sum()))
            train_classifier(real, judge_dir, cfg, progress=progress)
    return load_classifier(judge_dir, device=device)


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
    from classifier.inference import predict_proba

    run_dir = Path(run_dir)
    g, meta = load_generator(run_dir, device=device)
    classes = meta["classes"]
    real = data.subset(~data.synthetic).with_classes(classes).remap_to(classes)
    real = resize_dataset(real, g.size, g.channels)
    train = real.split("train")
    test = real.split("test") if real.has_split("test") else real.split("val")
    judge, jmeta = get_judge(real, run_dir, Path(judge_dir) if judge_dir else None, device, progress)
    if list(jmeta["classes"]) != classes:
        judge_classes = list(jmeta["classes"])
        missing = [c for c in classes if c not in judge_classes]
        if missing:
            from augment.core.errors import UserError

            raise UserError(f"the judge classifier lacks classes {', '.join(missing)}")
    jclasses = list(jmeta["classes"])
    to_j = np.array([jclasses.index(c) for c in classes])

    labels = np.repeat(np.arange(len(classes)), per_class)
    samples = generate_images(g, labels, seed=seed, device=device)

    def jprobs(images: np.ndarray) -> np.ndarray:
        p = predict_proba(judge, resize_images(images, int(jmeta["size"]), int(jmeta["channels"])), device=device)
        return p[:, to_j]  # judge's columns in the generator's class order

    sample_probs = jprobs(samples)
    assignment = judge_assignment(sample_probs, labels, classes)
    test_probs = jprobs(test.images)
    real_recall = judge_assignment(test_probs, test.labels, classes)

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
        return classifier_features(judge, resize_images(images, int(jmeta["size"]), int(jmeta["channels"])), device)

    rng = np.random.default_rng(seed)
    fd: dict[str, float] = {}
    f_samples = feat(samples)
    for k, c in enumerate(classes):
        idx = np.flatnonzero(train.labels == k)
        idx = rng.choice(idx, size=min(len(idx), 2000), replace=False)
        fd[c] = frechet_distance(f_samples[labels == k], feat(train.images[idx]))

    mem = memorisation_report(samples, labels, train.images, train.labels, test.images, test.labels, classes)
    save_nearest_neighbour_png(
        samples,
        labels,
        mem.pop("_sample_nn_index"),
        mem.pop("_sample_nn_distance"),
        train.images,
        classes,
        run_dir / "eval" / "nearest.png",
    )
    report = {
        "run_dir": str(run_dir),
        "checkpoint_step": meta["step"],
        "samples_per_class": per_class,
        "seed": seed,
        "frechet": {"space": space, "per_class": fd},
        "judge": {
            "run": str(judge_dir or run_dir / JUDGE_DIR),
            "sample_assignment": assignment,
            "real_test_recall": real_recall,
            "chance": 1 / len(classes),
        },
        "memorisation": mem,
    }
    write_json(run_dir / "eval" / "metrics.json", report)
    plot_assignment(report, run_dir / "eval" / "judge.png")
    return report


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
