"""``augment demo``: the whole loop on the embedded demo faces, in minutes on a laptop CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.core.progress import console


def _demo_data(out: Path):
    """Step 1: write the demo faces once (kept on a rerun), load them and chart the class counts."""
    from augment.core.readers import load_dataset
    from augment.demo_faces import write_demo_dataset
    from augment.inspect import inspect_dataset, plot_distribution

    data_dir = out / "data"
    if not data_dir.exists():
        console.rule("1/5 demo faces")
        write_demo_dataset(data_dir, seed=0)
    ds = load_dataset(data_dir)
    report = inspect_dataset(ds)
    plot_distribution(report, out / "class_distribution.png")
    console.print(f"demo faces: {report['totals']}, imbalance {report['imbalance_ratio']['train']:.1f}")
    return ds


def _demo_judge(ds, out: Path, device: str) -> Path:
    """Step 2, first: the demo's grading judge, the demo budget's fer-cnn trained on the real faces without
    class weights (about 20 s; the default ResNet18 judge takes 2 minutes on the demo faces). gan-train's
    best-checkpoint selection and gan-eval grade with it."""
    from dataclasses import replace

    from augment.compare import BUDGETS, Recipe, budget_train_config
    from classifier.config import TrainConfig
    from classifier.train import train_classifier

    judge_dir = out / "judge"
    if not (judge_dir / "summary.json").exists():
        console.print(f"training the demo's grading judge (fer-cnn, no class weights) into {judge_dir}")
        cfg = budget_train_config("fer-cnn", BUDGETS["demo"], 0, Recipe(), device)
        train_classifier(ds.subset(~ds.synthetic), judge_dir, replace(cfg, val_fraction=TrainConfig().val_fraction))
    return judge_dir


def _demo_gan(ds, gan_dir: Path, judge_dir: Path, gan_steps: int, gan_width: int, color_p: float, device: str) -> None:
    """Step 2: the "full" GAN recipe at the demo's width and colour probability, sized to the demo faces
    (resumes)."""
    from gan.config import recipe_config
    from gan.train import train_gan

    console.rule("2/5 gan-train")
    cfg = recipe_config(
        "full",
        steps=gan_steps,
        g_width=gan_width,
        d_width=gan_width,
        color_p=color_p,
        sample_every=300,
        checkpoint_every=150,
        device=device,
        judge=str(judge_dir),
    )
    cfg.size, cfg.channels = ds.size, ds.channels
    train_gan(ds, gan_dir, cfg)


def _demo_gan_eval(ds, gan_dir: Path, judge_dir: Path, dev: str) -> None:
    """Step 3: score the generator and print how often the judge puts samples in their class."""
    from gan.evaluate import evaluate_gan

    console.rule("3/5 gan-eval")
    ev = evaluate_gan(gan_dir, ds, judge_dir=judge_dir, per_class=100, device=dev)
    assign = ev["judge"]["sample_assignment"]
    console.print("judge assigns samples to their class: " + ", ".join(f"{c} {v:.2f}" for c, v in assign.items()))
    spread = ev["spread"]["per_class"]
    console.print(
        "variety (mean pairwise distance, samples over real faces; near 0 is collapse): "
        + ", ".join(f"{c} {v['pairwise_ratio']:.2f}" for c, v in spread.items() if v["pairwise_ratio"] is not None)
    )


def _demo_rebalance(ds, gan_dir: Path, out: Path, min_prob: float, dev: str) -> None:
    """Step 4: fill every class up to the largest one with generator samples."""
    from augment.plan import plan_rebalance
    from augment.rebalance import QualityFilter, run_rebalance
    from classifier.judge import get_judge

    console.rule("4/5 rebalance")
    if min_prob <= 0:
        console.print("judge filter off for the demo's short-trained generator (near-copies are still dropped)")
    plan = plan_rebalance(ds.counts("train"), "max", None, 1.0)
    judge = get_judge(ds, gan_dir, None, dev) if min_prob > 0 else None
    rb = run_rebalance(
        ds,
        gan_dir,
        out / "rebalanced",
        plan,
        judge,
        QualityFilter(min_prob=min_prob),
        seed=0,
        overwrite=True,
        device=dev,
    )
    console.print(f"rebalanced dataset: {rb['files']:,} files ({rb['synthetic_files']:,} synthetic)")


def _demo_compare(ds, gan_dir: Path, out: Path, seeds: int, min_prob: float, device: str) -> dict[str, Any]:
    """Step 5: the demo budget's model with and without synthetic faces (and the classical fixes)."""
    from augment.compare import DEFAULT_CONDITIONS, CompareSpec, budget_models, run_compare

    console.rule("5/5 compare")
    spec = CompareSpec(
        models=budget_models("demo"),
        conditions=list(DEFAULT_CONDITIONS),
        seeds=seeds,
        budget="demo",
        min_prob=min_prob,
        device=device,
    )
    return run_compare(ds, gan_dir, out / "report", spec)


def run_demo(
    out: Path,
    gan_steps: int = 900,
    seeds: int = 3,
    device: str = "auto",
    gan_width: int = 16,
    min_prob: float = 0.0,
    color_p: float = 0.5,
) -> dict[str, Any]:
    """demo faces → gan-train → gan-eval → rebalance → compare → report; every step resumes.

    The demo faces are simple, so the GAN's networks are half as wide as for FER2013 (4x cheaper), and the
    comparison (3 seeds) trains the demo budget's fer-cnn at half width on 32 px faces. DiffAugment's colour
    ops touch half the faces (``color_p``): measured on the demo faces at 900 steps, with every face
    recoloured the generator drew one face per class (mean pairwise distance 0.19-0.31 of real faces', the
    spread of brightness 0.11-0.20 of theirs); at 0.5, 0.63-0.85 and 0.78-1.22. The judge
    filter is off by default here: the demo's 900-step generator's disgust and contempt samples are never
    put in their class (assignment 0.00 in every variant measured), so p >= 0.3 cannot fill those classes;
    rebalance on real data keeps it on.
    """
    from augment.core.runtime import pick_device

    out = Path(out)
    dev = pick_device(device)
    ds = _demo_data(out)
    gan_dir = out / "gan"
    judge_dir = _demo_judge(ds, out, device)
    _demo_gan(ds, gan_dir, judge_dir, gan_steps, gan_width, color_p, device)
    _demo_gan_eval(ds, gan_dir, judge_dir, dev)
    _demo_rebalance(ds, gan_dir, out, min_prob, dev)
    summary = _demo_compare(ds, gan_dir, out, seeds, min_prob, device)
    return {"out": str(out), "report": str(out / "report" / "REPORT.md"), "summary": summary}
