"""scripts/gan_variants.py: the done-criteria read from gan-eval's metrics.json, each way."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gan_variants", ROOT / "scripts" / "gan_variants.py")
gan_variants = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gan_variants)

CLASSES = ("happy", "fear")


def metrics(assignment, recall, cas=0.2, brightness=1.0, near_copies=0, step=4000):
    """The parts of a gan-eval metrics.json the script reads; judge recall 0.8 (happy) and 0.2 (fear)."""
    return {
        "checkpoint_step": step,
        "samples_per_class": 500,
        "judge": {"real_test_recall": {"happy": 0.8, "fear": 0.2}},
        "usefulness": {
            c: {"assignment": a, "cas_ratio": 0.5, "precision": 0.9, "recall": r, "brightness_ratio": brightness}
            for c, a, r in zip(CLASSES, assignment, recall, strict=True)
        },
        "cas_over_seeds": {"mean": cas, "sd": 0.01},
        "kid": {"per_class": dict.fromkeys(CLASSES, 0.1)},
        "spread": {
            "per_class": {
                c: {"brightness_std": 32.0 * brightness, "real_brightness_std": 32.0, "brightness_ratio": brightness}
                for c in CLASSES
            }
        },
        "memorisation": {"near_copies": near_copies},
    }


def write(tmp_path: Path, name: str, m: dict) -> Path:
    (tmp_path / name / "eval").mkdir(parents=True)
    (tmp_path / name / "eval" / "metrics.json").write_text(json.dumps(m))
    return tmp_path / name


def test_a_variant_that_beats_the_default_everywhere_meets_every_criterion():
    default = metrics([0.7, 0.1], [0.2, 0.1])
    better = metrics([0.9, 0.3], [0.3, 0.1], cas=0.25)
    assert all(gan_variants.criteria(better, default).values())
    met = gan_variants.criteria(default, None)  # the default alone: only the criteria that need no reference
    assert set(met) == {"assigned", "mean assignment", "no banding", "no memorisation"}
    assert not met["assigned"] and not met["mean assignment"]  # fear 0.1 < 0.8 × 0.2; mean 0.4 < 0.55


@pytest.mark.parametrize(
    ("variant", "unmet"),
    [
        (metrics([0.9, 0.3], [0.3, 0.09], cas=0.25), "no collapse"),  # fear's recall below the reference's
        (metrics([0.9, 0.3], [0.3, 0.1], cas=0.2), "useful"),  # CAS only level with the reference's
        (metrics([0.9, 0.3], [0.3, 0.1], cas=0.25, brightness=1.6), "no banding"),
        (metrics([0.9, 0.3], [0.3, 0.1], cas=0.25, near_copies=1), "no memorisation"),
        (metrics([1.0, 0.15], [0.3, 0.1], cas=0.25), "assigned"),  # fear 0.15 < 0.8 × 0.2
        (metrics([0.7, 0.35], [0.3, 0.1], cas=0.25), "mean assignment"),  # 0.525
    ],
)
def test_each_criterion_fails_alone(variant, unmet):
    met = gan_variants.criteria(variant, metrics([0.7, 0.1], [0.2, 0.1]))
    assert [k for k, ok in met.items() if not ok] == [unmet]


def test_the_table_names_what_each_run_misses(tmp_path, capsys):
    default = write(tmp_path, "default", metrics([0.7, 0.1], [0.2, 0.1]))
    variant = write(tmp_path, "variant", metrics([0.9, 0.3], [0.3, 0.05], cas=0.25, step=5500))
    gan_variants.main([str(default), str(variant), "--per-class"])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| default (") or line.startswith("| variant (")]
    assert rows[0].endswith("| 2/4 (not assigned, mean assignment) |")
    assert "| variant (5,500) | 0.600 | 2/2 | 0.250 ± 0.010 | 0.30, 0.05 | fear |" in rows[1]
    assert rows[1].endswith("| 5/6 (not no collapse) |")
    assert "The judge's own mean recall on real test faces is 0.500:" in out  # (0.8 + 0.2) / 2
    assert "| fear | 0.300 (0.20) | 0.50 | 0.900 | 0.050 | 0.100 | 32.0 / 32.0 = 1.00 |" in out


def test_a_run_not_yet_evaluated_is_named(tmp_path, capsys):
    default = write(tmp_path, "default", metrics([0.7, 0.1], [0.2, 0.1]))
    (tmp_path / "fresh").mkdir()
    with pytest.raises(SystemExit) as e:
        gan_variants.main([str(default), str(tmp_path / "fresh")])
    assert e.value.code == 2
    assert "fresh: no eval/metrics.json; run 'augment gan-eval" in capsys.readouterr().err
