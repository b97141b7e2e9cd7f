"""Rebalance plan arithmetic: targets (max, median, N, class=N), class limits, fractions, errors."""

from __future__ import annotations

import math

import pytest

from augment.core.errors import UserError
from augment.plan import ClassPlan, parse_target, plan_rebalance, share

COUNTS = {"neutral": 10, "happy": 20, "sad": 7, "disgust": 1, "contempt": 3}


def adds(plan: list[ClassPlan]) -> dict[str, int]:
    return {p.name: p.add for p in plan}


# --------------------------------------------------------------------------- targets
def test_max_fills_every_class_to_the_largest():
    plan = plan_rebalance(COUNTS, "max")
    assert [p.name for p in plan] == list(COUNTS)  # dataset order, every class listed
    assert adds(plan) == {"neutral": 10, "happy": 0, "sad": 13, "disgust": 19, "contempt": 17}
    assert all(p.target == 20 and p.final == 20 for p in plan)
    assert all(p.real == COUNTS[p.name] for p in plan)


def test_median_rounds_up_and_leaves_larger_classes_alone():
    assert parse_target("median", COUNTS) == dict.fromkeys(COUNTS, 7)
    plan = plan_rebalance(COUNTS, "median")
    assert adds(plan) == {"neutral": 0, "happy": 0, "sad": 0, "disgust": 6, "contempt": 4}
    assert {p.name: p.final for p in plan} == {"neutral": 10, "happy": 20, "sad": 7, "disgust": 7, "contempt": 7}
    # an even number of classes: median 2.5 → 3
    assert parse_target("median", {"happy": 1, "sad": 2, "fear": 3, "angry": 4}) == dict.fromkeys(
        ("happy", "sad", "fear", "angry"), 3
    )


def test_number_target():
    plan = plan_rebalance(COUNTS, " 15 ")
    assert adds(plan) == {"neutral": 5, "happy": 0, "sad": 8, "disgust": 14, "contempt": 12}
    assert {p.name: p.target for p in plan} == dict.fromkeys(COUNTS, 15)
    assert adds(plan_rebalance(COUNTS, "0")) == dict.fromkeys(COUNTS, 0)


def test_per_class_targets_with_synonyms_and_case():
    targets = parse_target("Disgusted=5, sad=9,happy=3", COUNTS)
    assert targets == {"neutral": 0, "happy": 3, "sad": 9, "disgust": 5, "contempt": 0}
    plan = plan_rebalance(COUNTS, "Disgusted=5, sad=9,happy=3")
    # happy is above its target and the unnamed classes have none: all get nothing
    assert adds(plan) == {"neutral": 0, "happy": 0, "sad": 2, "disgust": 4, "contempt": 0}
    assert parse_target("anger=4", {"angry": 1, "happy": 2}) == {"angry": 4, "happy": 0}


def test_classes_limit_who_gets_images():
    plan = plan_rebalance(COUNTS, "max", classes=["disgust", "sad"])
    assert adds(plan) == {"neutral": 0, "happy": 0, "sad": 13, "disgust": 19, "contempt": 0}
    by = {p.name: p for p in plan}
    assert by["neutral"].target == 10 and by["neutral"].final == 10  # untouched classes keep their count
    assert by["disgust"].target == 20


# --------------------------------------------------------------------------- fractions
@pytest.mark.parametrize(
    "fraction, expected",
    [
        # shortfalls: neutral 10, sad 13, disgust 19, contempt 17 (happy 0)
        (1.0, {"neutral": 10, "happy": 0, "sad": 13, "disgust": 19, "contempt": 17}),
        (0.5, {"neutral": 5, "happy": 0, "sad": 7, "disgust": 10, "contempt": 9}),  # 6.5→7, 9.5→10, 8.5→9
        (0.25, {"neutral": 3, "happy": 0, "sad": 3, "disgust": 5, "contempt": 4}),  # 2.5→3, 3.25→3, 4.75→5, 4.25→4
        (0.0, dict.fromkeys(COUNTS, 0)),
    ],
)
def test_fraction_of_the_shortfall_rounds_half_up(fraction, expected):
    plan = plan_rebalance(COUNTS, "max", fraction=fraction)
    assert adds(plan) == expected
    assert all(p.add <= max(0, p.target - p.real) for p in plan)


# --------------------------------------------------------------------------- the cap (--max-ratio)
@pytest.mark.parametrize(
    "max_ratio, fraction, expected",
    [
        # real: neutral 10, happy 20, sad 7, disgust 1, contempt 3; shortfalls to max: 10, 0, 13, 19, 17
        (1.0, 1.0, {"neutral": 10, "happy": 0, "sad": 7, "disgust": 1, "contempt": 3}),
        (0.5, 1.0, {"neutral": 5, "happy": 0, "sad": 4, "disgust": 1, "contempt": 2}),  # 3.5→4, 0.5→1, 1.5→2
        (0.25, 1.0, {"neutral": 3, "happy": 0, "sad": 2, "disgust": 0, "contempt": 1}),  # 2.5→3, 1.75→2, 0.25→0
        (2.0, 1.0, {"neutral": 10, "happy": 0, "sad": 13, "disgust": 2, "contempt": 6}),  # the shortfall is less
        (2.0, 0.5, {"neutral": 5, "happy": 0, "sad": 7, "disgust": 2, "contempt": 6}),  # the cap of the fraction
        (0.0, 1.0, {"neutral": 10, "happy": 0, "sad": 13, "disgust": 19, "contempt": 17}),  # 0: no cap
    ],
)
def test_max_ratio_caps_synthetic_at_r_times_the_real_count(max_ratio, fraction, expected):
    plan = plan_rebalance(COUNTS, "max", fraction=fraction, max_ratio=max_ratio)
    assert adds(plan) == expected
    assert all(p.target == 20 for p in plan)  # the target stays; the cap only lowers what is added
    if max_ratio:
        assert all(p.add <= share(max_ratio, p.real) for p in plan)


def test_negative_max_ratio_is_refused():
    with pytest.raises(UserError, match="--max-ratio -1"):
        plan_rebalance(COUNTS, "max", max_ratio=-1)


def test_share_rounding():
    assert [share(0.5, n) for n in range(6)] == [0, 1, 1, 2, 2, 3]  # half up, not to even
    assert share(0.25, 6) == 2 and share(0.25, 10) == 3 and share(0.25, 9) == 2
    assert share(0.29, 50) == 15  # 14.499999999999998 in floating point
    assert share(1.0, 17) == 17 and share(0.0, 17) == 0
    assert adds(plan_rebalance({"happy": 3, "sad": 2}, "max", fraction=0.5)) == {"happy": 0, "sad": 1}


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("target", ["maximum", "-5", "1.5", "", "disgust", "disgust=x", "disgust=-1", "disgust=2.5"])
def test_bad_targets(target):
    with pytest.raises(UserError, match="--target"):
        plan_rebalance(COUNTS, target)


@pytest.mark.parametrize("target", ["unicorn=3", "fear=3", "sad=2,unicorn=1"])
def test_targets_for_unknown_classes(target):
    with pytest.raises(UserError, match="not a class of this dataset"):
        parse_target(target, COUNTS)


@pytest.mark.parametrize("classes", [["unicorn"], ["fear"], ["sad", "angry"]])
def test_unknown_classes(classes):
    with pytest.raises(UserError, match="--classes"):
        plan_rebalance(COUNTS, "max", classes=classes)


@pytest.mark.parametrize("fraction", [-0.1, 1.01, 2.0, math.nan])
def test_fraction_outside_0_1(fraction):
    with pytest.raises(UserError, match="--fraction"):
        plan_rebalance(COUNTS, "max", fraction=fraction)


def test_generator_must_know_the_classes_it_fills():
    available = ["neutral", "sad", "disgust", "contempt"]  # no happy: fine, happy needs nothing
    assert adds(plan_rebalance(COUNTS, "max", available=available))["disgust"] == 19
    with pytest.raises(UserError, match="cannot make 'contempt'"):
        plan_rebalance(COUNTS, "max", available=["neutral", "sad", "disgust"])
    # limiting the classes to what the generator knows is the way out
    plan = plan_rebalance(COUNTS, "max", classes=["disgust"], available=["disgust"])
    assert adds(plan)["disgust"] == 19 and sum(adds(plan).values()) == 19


def test_rebalance_max_ratio_on_the_command_line(demo_dir, tiny_gan_run, tmp_path, capsys):
    """--max-ratio 0.5: disgust and contempt (6 real, shortfall 18) get 3 synthetic faces, not 18."""
    from tests.conftest import run_cli

    out = tmp_path / "out"
    args = ("rebalance", demo_dir, "--generator", tiny_gan_run, "--out", out, "--dry-run", "--max-ratio", "0.5")
    code, stdout, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "at most 0.5 × real" in stdout
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:5]]
        for line in stdout.splitlines()
        if line.count("│") >= 5 and line.split("│")[1].strip() in ("disgust", "contempt", "happy")
    }
    assert rows["disgust"] == ["6", "+3", "9"] and rows["contempt"] == ["6", "+3", "9"]
    assert rows["happy"] == ["24", "0", "24"] and not out.exists()
    code, _, err = run_cli(capsys, *args[:-1], "-2")
    assert code != 0 and "--max-ratio -2" in err
