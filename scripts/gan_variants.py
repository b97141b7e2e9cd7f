"""Set GAN variants against a reference recipe by the generator's done-criteria, from their gan-eval results.

    augment gan-eval RUN DATA --per-class 500 --checkpoint best --judge JUDGE     # for each run, alike
    python scripts/gan_variants.py REFERENCE_RUN VARIANT_RUN [VARIANT_RUN ...] [--per-class]

The first run is the reference the others are measured against (the recipe the variants would replace).
One row per run: mean assignment, the classes assigned at least 0.8 x the judge's recall on real faces,
CAS macro-F1 over the sample seeds, each class's recall, the classes whose recall is below the
reference's (collapse), the brightness spread against real faces, near-copies, and which criteria it
meets. ``--per-class`` adds each run's
table per class (assignment, CAS ratio, precision, recall, KID, brightness spread before and after).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

MEAN_ASSIGNMENT = 0.55  # the mean share of samples the judge assigns to their class
JUDGE_SHARE = 0.8  # each class's assignment against the judge's own recall on real faces of that class
BANDING = 1.5  # brightness spread of the samples at most this × the real faces'


def load(run: Path) -> dict[str, Any]:
    return json.loads((run / "eval" / "metrics.json").read_text())


def assigned(m: dict[str, Any]) -> list[str]:
    """The classes whose samples the judge assigns at least JUDGE_SHARE × its recall on real faces."""
    judge = m["judge"]["real_test_recall"]
    return [c for c, v in m["usefulness"].items() if v["assignment"] >= JUDGE_SHARE * judge[c]]


def mean_assignment(m: dict[str, Any]) -> float:
    return sum(v["assignment"] for v in m["usefulness"].values()) / len(m["usefulness"])


def judge_mean_recall(m: dict[str, Any]) -> float:
    """The judge's mean recall over classes on real test faces: about the mean assignment of samples
    the judge cannot tell from real faces, so the yardstick for MEAN_ASSIGNMENT."""
    recall = m["judge"]["real_test_recall"]
    return sum(recall.values()) / len(recall)


def recall_below(m: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """The classes whose sample recall falls below the reference's (collapse)."""
    return [c for c, v in m["usefulness"].items() if v["recall"] < reference["usefulness"][c]["recall"]]


def criteria(m: dict[str, Any], reference: dict[str, Any] | None) -> dict[str, bool]:
    """Which of the done-criteria the gan-eval metrics ``m`` meet; the two set against the
    reference recipe's (no class's recall below it, CAS above it) only when ``reference`` is given."""
    u = m["usefulness"]
    met = {
        "assigned": len(assigned(m)) == len(u),
        "mean assignment": mean_assignment(m) >= MEAN_ASSIGNMENT,
        "no banding": all(v["brightness_ratio"] <= BANDING for v in u.values()),
        "no memorisation": m["memorisation"]["near_copies"] == 0,
    }
    if reference is not None:
        met["no collapse"] = not recall_below(m, reference)
        met["useful"] = m["cas_over_seeds"]["mean"] > reference["cas_over_seeds"]["mean"]
    return met


def summary_table(runs: dict[str, dict[str, Any]]) -> str:
    """One markdown row per run; the first run is the reference."""
    reference = next(iter(runs.values()))
    classes = list(reference["usefulness"])
    lines = [
        "| run (best step) | mean assignment | classes ≥ 0.8 × judge recall | CAS macro-F1 over seeds "
        f"| recall ({', '.join(classes)}) | recall below the reference's | brightness sd ratio | near-copies "
        "| criteria met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in runs.items():
        u = m["usefulness"]
        cas = m["cas_over_seeds"]
        below = recall_below(m, reference)
        ratios = [v["brightness_ratio"] for v in u.values()]
        met = criteria(m, None if m is reference else reference)
        recall = ", ".join(f"{v['recall']:.2f}" for v in u.values())
        unmet = ", ".join(k for k, ok in met.items() if not ok)
        lines.append(
            f"| {name} ({m['checkpoint_step']:,}) | {mean_assignment(m):.3f} | {len(assigned(m))}/{len(u)} "
            f"| {cas['mean']:.3f} ± {cas['sd']:.3f} "
            f"| {recall} | {', '.join(below) or 'none'} "
            f"| {min(ratios):.2f}–{max(ratios):.2f} | {m['memorisation']['near_copies']} "
            f"| {sum(met.values())}/{len(met)}{f' (not {unmet})' if unmet else ''} |"
        )
    lines.append(
        f"\nThe judge's own mean recall on real test faces is {judge_mean_recall(reference):.3f}: samples as "
        "recognisable as real faces would be assigned about that much on average."
    )
    return "\n".join(lines)


def class_table(name: str, m: dict[str, Any]) -> str:
    """One run's figures per class, the brightness spread as samples / real."""
    u, judge = m["usefulness"], m["judge"]["real_test_recall"]
    kid, spread = m["kid"]["per_class"], m["spread"]["per_class"]
    lines = [
        f"{name} (step {m['checkpoint_step']:,}, {m['samples_per_class']} samples per class)",
        "| class | assignment (judge recall) | CAS ratio | precision | recall | KID | brightness sd samples / real |",
        "|---|---|---|---|---|---|---|",
    ]
    for c, v in u.items():
        s = spread[c]
        lines.append(
            f"| {c} | {v['assignment']:.3f} ({judge[c]:.2f}) | {v['cas_ratio']:.2f} | {v['precision']:.3f} "
            f"| {v['recall']:.3f} | {kid[c]:.3f} "
            f"| {s['brightness_std']:.1f} / {s['real_brightness_std']:.1f} = {s['brightness_ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="gan-eval'd runs; the first is the reference recipe")
    ap.add_argument("--per-class", action="store_true", help="also each run's table per class")
    args = ap.parse_args(argv)
    missing = [r for r in args.runs if not (r / "eval" / "metrics.json").is_file()]
    if missing:
        ap.error(f"{missing[0]}: no eval/metrics.json; run 'augment gan-eval {missing[0]} DATA' first")
    runs = {r.name: load(r) for r in args.runs}
    print(summary_table(runs))
    if args.per_class:
        for name, m in runs.items():
            print("\n" + class_table(name, m))


if __name__ == "__main__":
    main()
