"""``augment demo``: the whole loop on the embedded demo faces, in minutes on a laptop CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augment.core.progress import console
from augment.synthesis import QualityFilter


def _demo_data(out: Path):
    """Step 1: write the demo faces once (kept on a rerun), load them and chart the class counts."""
    from augment.core.readers import load_dataset
    from augment.demo_faces import write_demo_dataset
    from augment.inspection import inspect_dataset, plot_distribution

    data_dir = out / "data"
    if not data_dir.exists():
        console.rule("1/5 demo faces")
        write_demo_dataset(data_dir, seed=0)
    ds = load_dataset(data_dir)
    report = inspect_dataset(ds)
    plot_distribution(report, out / "class_distribution.png")
    console.print(f"demo faces: {report['totals']}, imbalance {report['imbalance_ratio']['train']:.1f}")
    return ds


def _demo_judge(ds, judge_dir: Path, device: str, class_weighted: bool = False) -> Path:
    """Step 2, first: a judge of the demo faces, the demo budget's fer-cnn trained on the real faces (about
    20 s; the default ResNet18 judge takes 2 minutes on the demo faces). Without class weights it is the
    grading judge (gan-train's best-checkpoint selection and gan-eval); with them, the filter judge that
    rebalance and compare find in the GAN run's ``judge/`` (the grading one recalls no real disgust or
    contempt face, so it would pass no sample of those classes)."""
    from dataclasses import replace

    from augment.compare import BUDGETS, ConditionSpec, budget_train_config
    from classifier.config import TrainConfig
    from classifier.train import train_classifier

    if not (judge_dir / "summary.json").exists():
        kind = (
            "filter judge (fer-cnn, class-weighted)" if class_weighted else "grading judge (fer-cnn, no class weights)"
        )
        console.print(f"training the demo's {kind} into {judge_dir}")
        r = ConditionSpec(train={"class_weighted": True} if class_weighted else {})
        cfg = budget_train_config("fer-cnn", BUDGETS["demo"], 0, r, device)
        train_classifier(ds.subset(~ds.synthetic), judge_dir, replace(cfg, val_fraction=TrainConfig().val_fraction))
    return judge_dir


def _demo_gan(
    ds, gan_dir: Path, judge_dir: Path, gan_steps: int, gan_width: int, color_p: float, ms_weight: float, device: str
) -> None:
    """Step 2: the "full" GAN recipe at the demo's width, colour probability and mode seeking, sized to the
    demo faces (resumes)."""
    from gan.config import recipe_config
    from gan.train import train_gan

    console.rule("2/5 gan-train")
    cfg = recipe_config(
        "full",
        steps=gan_steps,
        g_width=gan_width,
        d_width=gan_width,
        color_p=color_p,
        ms_weight=ms_weight,
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
    from augment.rebalance import run_rebalance
    from classifier.judge import get_judge

    console.rule("4/5 rebalance")
    if min_prob <= 0:
        console.print("judge filter off (near-copies are still dropped)")
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
    min_prob: float = QualityFilter.min_prob,
    color_p: float = 0.5,
    ms_weight: float = 0.5,
) -> dict[str, Any]:
    """demo faces → gan-train → gan-eval → rebalance → compare → report; every step resumes.

    The demo faces are simple, so the GAN's networks are half as wide as for FER2013 (4x cheaper), and the
    comparison (3 seeds) trains the demo budget's fer-cnn at half width on 32 px faces. Measured on the demo
    faces at 900 steps (per class, mean pairwise distance and spread of brightness of samples over real
    faces'): with every face recoloured by DiffAugment the generator drew one face per class
    (0.19-0.31, 0.11-0.20); with half of them (``color_p`` 0.5) it drew one face per class in many
    exposures (0.63-0.85, 0.78-1.22); mode seeking on standardised faces (``ms_weight`` 0.5) added faces
    that differ in shape, not only exposure (0.78-0.94, 0.65-0.90); LeCam (``lecam_weight`` 0.3, the
    default) kept that (0.79-0.98, 0.62-0.92), best at step 500. The judge filter is on, with the demo
    budget's class-weighted fer-cnn as the filter judge (30 s; the default ResNet18 takes 2 minutes), at
    rebalance's default p: at 0.3 it passed 1% of the contempt samples, too few to fill the class within 30
    tries per face; at 0.2, 20% or more of every class's.
    """
    from augment.core.runtime import pick_device
    from classifier.judge import JUDGE_DIR

    out = Path(out)
    dev = pick_device(device)
    ds = _demo_data(out)
    gan_dir = out / "gan"
    judge_dir = _demo_judge(ds, out / "judge", device)
    _demo_gan(ds, gan_dir, judge_dir, gan_steps, gan_width, color_p, ms_weight, device)
    _demo_gan_eval(ds, gan_dir, judge_dir, dev)
    if min_prob > 0:
        _demo_judge(ds, gan_dir / JUDGE_DIR, device, class_weighted=True)
    _demo_rebalance(ds, gan_dir, out, min_prob, dev)
    summary = _demo_compare(ds, gan_dir, out, seeds, min_prob, device)
    return {"out": str(out), "report": str(out / "report" / "REPORT.md"), "summary": summary}
