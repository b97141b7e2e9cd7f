"""Measure GAN recipes per class with a judge classifier trained on real faces only.

    python scripts/gan_recipes.py DATA --judge CLASSIFIER_RUN --out runs/recipes \
        [--recipes full,classic] [--minutes 30] [--per-class 300]

Each recipe trains for the same wall-clock budget (resuming if its run folder exists), then
`gan-eval` scores it. The table shows, per class, the share of samples the judge assigns to the
intended class, the judge's recall on real test faces beside it, the Fréchet distance (judge
features unless FID weights are on disk) and near-copies of training images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--judge", required=True, help="an 'augment train' run trained on the real images")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--recipes", default="full,classic")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--skip-train", action="store_true", help="only evaluate existing runs")
    args = ap.parse_args()
    aug = [sys.executable, "-m", "augment"]
    reports = {}
    for recipe in args.recipes.split(","):
        run = args.out / recipe
        if not args.skip_train:
            subprocess.run(
                aug
                + [
                    "gan-train",
                    args.data,
                    "--out",
                    str(run),
                    "--recipe",
                    recipe,
                    "--steps",
                    str(args.steps),
                    "--max-minutes",
                    str(args.minutes),
                ],
                check=True,
            )
        subprocess.run(
            aug + ["gan-eval", str(run), args.data, "--judge", args.judge, "--per-class", str(args.per_class)],
            check=True,
        )
        reports[recipe] = json.loads((run / "eval" / "metrics.json").read_text())
    print_table(reports)


def print_table(reports: dict[str, dict]) -> None:
    recipes = list(reports)
    first = reports[recipes[0]]
    classes = list(first["judge"]["sample_assignment"])
    print(f"\nchance = {first['judge']['chance']:.3f}; Fréchet space: {first['frechet']['space']}")
    steps = ", ".join(f"{r} step {reports[r]['checkpoint_step']}" for r in recipes)
    print(f"checkpoints: {steps}")
    head = f"{'class':10} {'real recall':>11}"
    for r in recipes:
        head += f" | {r + ' →class':>14} {'Fréchet':>8} {'copies':>6}"
    print(head)
    for c in classes:
        line = f"{c:10} {first['judge']['real_test_recall'].get(c, 0):11.3f}"
        for r in recipes:
            rep = reports[r]
            line += (
                f" | {rep['judge']['sample_assignment'][c]:14.3f} {rep['frechet']['per_class'][c]:8.1f}"
                f" {rep['memorisation']['per_class'].get(c, {}).get('near_copies', 0):6d}"
            )
        print(line)
    line = f"{'mean':10} {sum(first['judge']['real_test_recall'].values()) / len(classes):11.3f}"
    for r in recipes:
        a = reports[r]["judge"]["sample_assignment"]
        f = reports[r]["frechet"]["per_class"]
        line += f" | {sum(a.values()) / len(a):14.3f} {sum(f.values()) / len(f):8.1f} {'':6}"
    print(line)


if __name__ == "__main__":
    main()
