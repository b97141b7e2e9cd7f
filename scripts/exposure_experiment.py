"""Exposure experiment: does matching each sample's exposure to a real face of its class help?

For a gan-train run, over 3 sample seeds (none of them selection's), 500 samples per class are scored as drawn
("free") and after exposure matching ("match": each sample standardised, then given the mean brightness and
contrast of a random real training face of its class). Figures per class: grading-judge assignment, CAS
recall ratio and CAS macro-F1 (classifier trained on samples, tested on the real validation faces), Kynkäänniemi
precision/recall in judge features against validation, KID against training faces, and the brightness-sd and
pairwise-distance ratios (samples over real).

    python scripts/exposure_experiment.py RUN DATA [--per-class 500] [--out RUN/eval/exposure.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augment.core.atomic import write_json  # noqa: E402
from augment.core.readers import load_dataset  # noqa: E402
from classifier.judge import get_judge, judge_probabilities  # noqa: E402
from gan.cas import classification_accuracy_score  # noqa: E402
from gan.config import EVAL_SEED, CasConfig, check_checkpoint  # noqa: E402
from gan.evaluate import eval_splits  # noqa: E402
from gan.metrics import exposure_and_spread, judge_assignment, kernel_inception_distance  # noqa: E402
from gan.sample import generate_images, load_generator  # noqa: E402
from gan.validation import judge_features, per_class_precision_recall  # noqa: E402


def match_exposure(
    samples: np.ndarray, labels: np.ndarray, real: np.ndarray, real_labels: np.ndarray, seed: int
) -> np.ndarray:
    """Each sample standardised, then rescaled to the mean and standard deviation of a random real face of
    its class."""
    rng = np.random.default_rng(seed)
    x = samples.reshape(len(samples), -1).astype(np.float64)
    r = real.reshape(len(real), -1).astype(np.float64)
    r_mean, r_std = r.mean(1), r.std(1)
    out = np.empty_like(x)
    for k in np.unique(labels):
        rows, pool = np.flatnonzero(labels == k), np.flatnonzero(real_labels == k)
        pick = rng.choice(pool, size=len(rows))
        z = (x[rows] - x[rows].mean(1, keepdims=True)) / np.maximum(x[rows].std(1, keepdims=True), 1.0)
        out[rows] = z * r_std[pick, None] + r_mean[pick, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8).reshape(samples.shape)


def score(samples, labels, train, val, judge, classes, device, seed) -> dict:
    probs = judge_probabilities(judge, samples, classes, device)
    f_s, f_v = judge_features(judge, samples, device), judge_features(judge, val.images, device)
    f_t = judge_features(judge, train.images, device)
    cas = classification_accuracy_score(samples, labels, train, val, CasConfig(), device)
    if cas is None:
        raise SystemExit("the data has no validation faces of the generator's classes: CAS cannot be measured")
    pr = per_class_precision_recall(f_v, val.labels, f_s, labels, classes)
    spread = exposure_and_spread(samples, labels, train.images, train.labels, classes)
    per_class = {}
    for k, c in enumerate(classes):
        per_class[c] = {
            "assignment": judge_assignment(probs, labels, classes)[c],
            "cas_ratio": cas["per_class"][c]["ratio"],
            "cas_recall": cas["per_class"][c]["synthetic_recall"],
            "precision": (pr[c] or {}).get("precision"),
            "recall": (pr[c] or {}).get("recall"),
            "kid": kernel_inception_distance(f_s[labels == k], f_t[train.labels == k], seed=seed),
            "brightness_ratio": spread[c]["brightness_ratio"],
            "brightness_std": spread[c]["brightness_std"],
            "real_brightness_std": spread[c]["real_brightness_std"],
            "pairwise_ratio": spread[c]["pairwise_ratio"],
        }
    return {
        "cas_macro_f1": cas["synthetic_macro_f1"],
        "real_cas_macro_f1": cas["real_macro_f1"],
        "per_class": per_class,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("data")
    ap.add_argument("--per-class", type=int, default=500)
    ap.add_argument("--checkpoint", default="best", help="best or last")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    check_checkpoint(a.checkpoint)
    data = load_dataset(a.data)
    g, meta = load_generator(a.run, checkpoint=a.checkpoint, device=a.device)
    classes = meta["classes"]
    train, val, notes = eval_splits(data, meta, g)
    judge = get_judge(data, a.run, None, a.device, True, kind="grading")
    labels = np.repeat(np.arange(len(classes)), a.per_class)
    results = {"run": str(a.run), "checkpoint": meta["checkpoint"], "step": meta["step"], "notes": notes, "seeds": {}}
    for i in range(a.seeds):
        seed = EVAL_SEED + i
        drawn = generate_images(g, labels, seed=seed, device=a.device)
        variants = {"free": drawn, "match": match_exposure(drawn, labels, train.images, train.labels, seed)}
        results["seeds"][seed] = {
            v: score(x, labels, train, val, judge, classes, a.device, seed) for v, x in variants.items()
        }
        for v, r in results["seeds"][seed].items():
            mean_assign = np.mean([p["assignment"] for p in r["per_class"].values()])
            print(
                f"seed {seed} {v}: CAS macro-F1 {r['cas_macro_f1']:.3f} (real {r['real_cas_macro_f1']:.3f}), "
                f"mean assignment {mean_assign:.3f}",
                flush=True,
            )
    out = a.out or a.run / "eval" / "exposure.json"
    write_json(out, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
