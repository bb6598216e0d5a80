"""Welch's t-test over seeds, checked against scipy on hand-built numbers."""

from __future__ import annotations

import math

import pytest

from labelforge.report.welch import betainc, t_two_sided_p, welch_test

scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")

CASES = [
    ([0.61, 0.63, 0.62], [0.50, 0.55, 0.52]),  # a clear gain, 3 seeds each
    ([0.212, 0.198, 0.240], [0.205, 0.221, 0.199]),  # within the noise
    ([0.30, 0.31], [0.10, 0.45, 0.20, 0.33, 0.27]),  # unequal n and very unequal spreads
    ([1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.5, 3.5]),
    ([0.09, 0.15, 0.02], [0.63, 0.64, 0.62]),  # the wall example: 0.09 +- 0.07 -> 0.63 +- 0.01
    ([10.0, 10.001, 10.002], [0.0, 0.001, 0.002]),  # a huge t: p far in the tail
]


@pytest.mark.parametrize(("a", "b"), CASES)
def test_matches_scipy_ttest_ind_unequal_var(a: list[float], b: list[float]) -> None:
    r = welch_test(a, b)
    ref = scipy_stats.ttest_ind(a, b, equal_var=False)
    assert r is not None
    assert r.t == pytest.approx(float(ref.statistic), rel=1e-12)
    assert r.df == pytest.approx(float(ref.df), rel=1e-12)
    assert r.p == pytest.approx(float(ref.pvalue), rel=1e-9, abs=1e-300)
    assert r.diff == pytest.approx(sum(a) / len(a) - sum(b) / len(b))
    assert r.significant == (float(ref.pvalue) < 0.05)


@pytest.mark.parametrize(("a", "b", "x"), [(0.5, 0.5, 0.3), (1.3, 0.5, 0.9), (20.0, 0.5, 0.99), (2.5, 7.0, 0.2)])
def test_incomplete_beta_matches_scipy(a: float, b: float, x: float) -> None:
    assert betainc(a, b, x) == pytest.approx(float(scipy_special.betainc(a, b, x)), rel=1e-12)


def test_t_tail_matches_scipy_for_fractional_df() -> None:
    for t, df in [(0.0, 3.0), (2.1, 2.59), (-4.0, 7.3), (30.0, 1.5)]:
        assert t_two_sided_p(t, df) == pytest.approx(2 * float(scipy_stats.t.sf(abs(t), df)), rel=1e-10)


def test_too_few_seeds_and_no_spread() -> None:
    assert welch_test([0.5], [0.4, 0.6]) is None
    same = welch_test([0.5, 0.5], [0.5, 0.5])
    assert same is not None and same.p == 1.0 and not same.significant
    apart = welch_test([0.6, 0.6], [0.5, 0.5])
    assert apart is not None and apart.p == 0.0 and apart.significant and math.isinf(apart.t)
