"""Small-sample statistics for seed-replicated results: t confidence intervals and paired t-tests.

Written out (not SciPy) to keep the dependency list short; checked against SciPy's values
in the tests.
"""

from __future__ import annotations

import math

import numpy as np


def _t_pdf(x: float, df: int) -> float:
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    return c * (1 + x * x / df) ** (-(df + 1) / 2)


def t_cdf(t: float, df: int) -> float:
    """Student-t CDF via the regularised incomplete beta function (continued fraction)."""
    if df <= 0:
        return float("nan")
    x = df / (df + t * t)
    ib = _betainc(df / 2, 0.5, x)
    return 1 - 0.5 * ib if t >= 0 else 0.5 * ib


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    front = math.exp(lbeta)
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-14:
            break
    return h


def t_quantile(p: float, df: int) -> float:
    """Inverse of ``t_cdf`` by bisection (p in (0, 1))."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mean_ci(values: list[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t confidence interval (0 with one value)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), 0.0
    half = t_quantile(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def paired_test(a: list[float], b: list[float], level: float = 0.95) -> dict[str, float | bool | int]:
    """Paired t-test of a − b over matched seeds: mean difference, its CI, two-sided p."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    mean, half = mean_ci(d, level)
    if n < 2:
        return {"n": n, "mean_diff": mean, "ci": half, "p": float("nan"), "significant": False}
    sd = d.std(ddof=1)
    if sd == 0:
        p = 0.0 if mean != 0 else 1.0
    else:
        t = mean / (sd / math.sqrt(n))
        p = 2 * (1 - t_cdf(abs(t), n - 1))
    return {"n": n, "mean_diff": mean, "ci": half, "p": float(p), "significant": bool(p < 1 - level)}
