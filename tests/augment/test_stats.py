"""The hand-written t distribution, confidence intervals and paired t-test, against SciPy's numbers.

Reference values come from SciPy 1.17 (``scipy.stats.t`` and ``ttest_rel``), hard-coded so the
tests do not need SciPy.
"""

from __future__ import annotations

import math

import pytest

from augment.stats import mean_ci, paired_test, t_cdf, t_quantile

REL = 1e-9


@pytest.mark.parametrize(
    "t, df, expected",
    [
        (2.0, 5, 0.9490302605850709),
        (-1.5, 3, 0.11529193262241147),
        (0.7, 12, 0.7513629231046463),
        (10.0, 2, 0.9950737714883372),
        (3.0, 100, 0.9982960423283352),
        (1.0, 1, 0.75),  # Cauchy
        (0.0, 7, 0.5),
    ],
)
def test_t_cdf_matches_scipy(t, df, expected):
    assert t_cdf(t, df) == pytest.approx(expected, rel=REL)
    assert t_cdf(-t, df) == pytest.approx(1 - expected, rel=1e-8, abs=1e-12)  # symmetric


@pytest.mark.parametrize(
    "p, df, expected",
    [
        (0.975, 2, 4.302652729749464),
        (0.975, 30, 2.0422724563012373),
        (0.975, 4, 2.7764451051977987),
        (0.9, 7, 1.4149239276505086),
        (0.025, 4, -2.7764451051977943),
        (0.995, 1, 63.656741162871526),
    ],
)
def test_t_quantile_matches_scipy(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, rel=REL)
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, rel=REL)


def test_t_cdf_bad_df():
    assert math.isnan(t_cdf(1.0, 0))


def test_mean_ci_known_data():
    mean, half = mean_ci([1, 2, 3, 4, 5])
    assert mean == 3.0
    assert half == pytest.approx(2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5), rel=REL)  # t * sd / sqrt(n)
    assert half == pytest.approx(1.9632431614775552, rel=REL)
    mean, half = mean_ci([0.5, 0.7, 0.6, 0.9])
    assert mean == pytest.approx(0.675)
    assert half == pytest.approx(0.27175308837960155, rel=REL)
    assert mean_ci([0.5, 0.7, 0.6, 0.9], level=0.9)[1] == pytest.approx(0.20095666042353214, rel=REL)


def test_mean_ci_small_samples():
    assert mean_ci([0.42]) == (0.42, 0.0)  # one value: no spread to estimate
    assert mean_ci([0.3, 0.3, 0.3]) == (pytest.approx(0.3), 0.0)
    m, h = mean_ci([])
    assert math.isnan(m) and math.isnan(h)


def test_paired_test_known_example():
    # scipy.stats.ttest_rel(a, b): statistic 4.743416490252569, pvalue 0.009014481333908936
    a = [0.61, 0.58, 0.64, 0.60, 0.63]
    b = [0.57, 0.57, 0.60, 0.58, 0.59]
    r = paired_test(a, b)
    assert r["n"] == 5
    assert r["mean_diff"] == pytest.approx(0.03, rel=REL)
    assert r["ci"] == pytest.approx(0.01755978066170167, rel=1e-8)
    assert r["p"] == pytest.approx(0.009014481333908936, rel=1e-8)
    assert r["significant"] is True
    # the other way round: same p, negative difference
    back = paired_test(b, a)
    assert back["mean_diff"] == pytest.approx(-0.03) and back["p"] == pytest.approx(r["p"], rel=1e-12)
    assert back["significant"] is True


def test_paired_test_not_significant():
    # ttest_rel([0.6, 0.5, 0.7], [0.55, 0.56, 0.62]): pvalue 0.6385215543539752
    r = paired_test([0.6, 0.5, 0.7], [0.55, 0.56, 0.62])
    assert r["n"] == 3
    assert r["mean_diff"] == pytest.approx(0.023333333333333, rel=1e-9)
    assert r["ci"] == pytest.approx(0.18310864241967093, rel=1e-8)
    assert r["p"] == pytest.approx(0.6385215543539752, rel=1e-8)
    assert r["significant"] is False
    assert paired_test([0.8, 0.7], [0.7, 0.6], level=0.99)["significant"] is True  # constant difference


def test_paired_test_one_seed_and_constant_differences():
    r = paired_test([0.7], [0.6])
    assert r["n"] == 1 and r["mean_diff"] == pytest.approx(0.1) and r["ci"] == 0.0
    assert math.isnan(r["p"]) and r["significant"] is False  # one pair: no test, never "significant"
    same = paired_test([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert same["mean_diff"] == 0 and same["p"] == 1.0 and same["significant"] is False
    shifted = paired_test([0.5, 0.6], [0.4, 0.5])
    assert shifted["p"] == 0.0 and shifted["significant"] is True
