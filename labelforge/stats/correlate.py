"""Pearson and Spearman correlation in plain numpy (Spearman with average ranks for ties).

Example:
    >>> from labelforge.stats.correlate import pearson, spearman, rankdata
    >>> rankdata([10, 20, 20, 5]).tolist()
    [2.0, 3.5, 3.5, 1.0]
    >>> round(pearson([1, 2, 3, 4], [2, 4, 5, 9]), 4), spearman([1, 2, 3, 4], [2, 4, 5, 9])
    (0.9648, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["rankdata", "pearson", "spearman"]


def rankdata(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts_group = np.r_[True, xs[1:] != xs[:-1]]  # True where a run of equal values begins
    group = np.cumsum(starts_group) - 1  # run index of each sorted position
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], x.size]  # exclusive
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Pearson's r of two equally long samples; None when undefined (n < 2 or a constant sample)."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"samples differ in length: {a.size} and {b.size}")
    if a.size < 2:
        return None
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt(np.dot(da, da) * np.dot(db, db))
    if denom == 0 or not np.isfinite(denom):
        return None
    return float(np.clip(np.dot(da, db) / denom, -1.0, 1.0))


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Spearman's rho: Pearson's r of the average ranks; None when undefined."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"samples differ in length: {a.size} and {b.size}")
    return pearson(rankdata(a), rankdata(b))
