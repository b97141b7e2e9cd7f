"""The demo budget's baseline reaches at least 0.8 accuracy on the demo test split, with 3 seeds.

    OMP_NUM_THREADS=1 python scripts/check_demo_budget.py [--out DIR] [--seeds 3] [--min-accuracy 0.8]

Each seed is one ``augment compare`` run of the baseline condition at ``--budget demo`` (real demo faces,
the validation split carved as compare carves it, scored on the demo test split cleaned of copies of
training faces), made with compare's own steps. It takes longer than a test may (about 3 × 15 s of
training on 2 CPU cores, plus writing the demo faces), so it is a script; exit status 1 when a seed's
accuracy, or their mean, is below the bar.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from augment import compare
from augment.core.readers import load_dataset
from augment.demo_faces import write_demo_dataset
from classifier.train import train_classifier


def baseline_accuracy(data: compare.CompareData, spec: compare.CompareSpec, seed: int, run_dir: Path) -> float:
    """One baseline run of the demo budget, as compare trains it, scored on the cleaned test split."""
    budget = compare.BUDGETS[spec.budget]
    r = compare.condition_spec("baseline", spec)
    part = compare.condition_data(data, None, r, seed)
    train_classifier(part, run_dir, compare.budget_train_config(spec.models[0], budget, seed, r, "cpu"), progress=False)
    pred = compare.predict_test(run_dir, data.test, "cpu")
    return float((pred == data.test.labels).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="Folder for the demo faces and runs (default: a temp one).")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--min-accuracy", type=float, default=0.8)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="demo-budget-"))
    if not (out / "data").exists():
        write_demo_dataset(out / "data", seed=0)
    ds = load_dataset(out / "data")
    spec = compare.CompareSpec(models=compare.budget_models("demo"), conditions=["baseline"], seeds=1, budget="demo")
    data = compare.prepare_data(ds, spec)
    accuracies = []
    for seed in range(args.seeds):
        t0 = time.time()
        accuracies.append(baseline_accuracy(data, spec, seed, out / "runs" / f"seed{seed}-{time.time_ns()}"))
        print(f"{spec.models[0]} seed {seed}: accuracy {accuracies[-1]:.3f} ({time.time() - t0:.0f} s)", flush=True)
    mean = sum(accuracies) / len(accuracies)
    ok = min(accuracies) >= args.min_accuracy
    print(
        f"mean accuracy {mean:.3f} over {len(accuracies)} seeds; lowest {min(accuracies):.3f}: "
        + ("ok" if ok else f"below {args.min_accuracy}")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
