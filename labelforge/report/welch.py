"""Welch's t-test over seeds: does a condition's mean differ from the baseline's by more than seed noise?

Each condition is trained with several seeds; the seeds' scores are two independent samples with
possibly different spreads, which is what Welch's unequal-variance t-test is for:

    t = (mean_a - mean_b) / sqrt(s_a^2 / n_a + s_b^2 / n_b)
    df = (s_a^2/n_a + s_b^2/n_b)^2 / ((s_a^2/n_a)^2 / (n_a - 1) + (s_b^2/n_b)^2 / (n_b - 1))

and the two-sided p-value is ``P(|T_df| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2)``, the regularised
incomplete beta function, computed here from its continued fraction (Lentz's method) so the
runtime needs no scipy; tests check it against ``scipy.stats.ttest_ind(equal_var=False)``.

Example:
    >>> r = welch_test([0.61, 0.63, 0.62], [0.50, 0.55, 0.52])
    >>> round(r.t, 3), round(r.df, 2), round(r.p, 4)
    (6.183, 2.62, 0.0126)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ALPHA", "WelchResult", "welch_test", "t_two_sided_p", "betainc"]

ALPHA = 0.05  # a change "exceeds the seed spread" when p < ALPHA


@dataclass(frozen=True)
class WelchResult:
    diff: float  # mean(a) - mean(b)
    t: float
    df: float
    p: float  # two-sided

    @property
    def significant(self) -> bool:
        return self.p < ALPHA


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), converged to ~1e-15."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function ``I_x(a, b)`` for ``a, b > 0`` and ``0 <= x <= 1``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The fraction converges fast for x < (a + 1) / (a + b + 2); beyond, use I_x(a, b) = 1 - I_{1-x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """``P(|T| >= |t|)`` for Student's t with ``df`` (real, > 0) degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def welch_test(a: Sequence[float], b: Sequence[float]) -> WelchResult | None:
    """Welch's t-test of ``mean(a) != mean(b)``; None when either sample has fewer than 2 values.

    Two samples without any spread (every seed gave the same score) have no t distribution: the
    result is then ``p = 1`` for equal means and ``p = 0`` for different ones.
    """
    if len(a) < 2 or len(b) < 2:
        return None
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff, se2 = ma - mb, va + vb
    if se2 == 0.0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return WelchResult(diff, t, math.nan, 1.0 if diff == 0 else 0.0)
    t = diff / math.sqrt(se2)
    df = se2 * se2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return WelchResult(diff, t, df, t_two_sided_p(t, df))
