"""Grouped aggregates over one window, vectorized over every key at once.

Inputs are the rows of one stream that fall in the window and pass the filters,
already sorted by `ts`, with a dense group id per row. Every function returns one
float64 per group with NaN meaning "no value" (rules.md: an empty window has a
count of 0 and no other value). Nothing here loops over events in Python.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

__all__ = ["FUNCS", "aggregate", "percentile_rank", "rank_of"]

FUNCS = frozenset(
    {
        "count",
        "rate",
        "sum",
        "avg",
        "min",
        "max",
        "last",
        "percentile",
        "stddev",
        "delta",
        "growth",
        "predict",
    }
)

_NS_PER_S = 1e9
_I64_MAX = int(np.iinfo(np.int64).max)
_I64_MIN = int(np.iinfo(np.int64).min)


@functools.lru_cache(maxsize=256)
def _rational(q: float) -> tuple[int, int]:
    f = Fraction(str(q))
    return f.numerator, f.denominator * 100


def percentile_rank(q: float, n: np.ndarray) -> np.ndarray:
    """Nearest rank (1-based) of the q-th percentile among n values, in exact arithmetic.

    Exact so that p99 of 100 values is rank 99, not 100 through float round-off.
    """
    num, den = _rational(q)
    n = n.astype(np.int64)
    r = -((-(n * num)) // den)
    return np.minimum(np.maximum(r, 1), np.maximum(n, 1))


def rank_of(q: float, n: int) -> int:
    """percentile_rank for one count, in plain integers (no array round trip)."""
    num, den = _rational(q)
    return min(max(-((-n * num) // den), 1), max(n, 1))


def _counts(gid: np.ndarray, ngroups: int) -> np.ndarray:
    return np.bincount(gid, minlength=ngroups).astype(np.float64)


def _sums(gid: np.ndarray, weights: np.ndarray, ngroups: int) -> np.ndarray:
    # bincount of no rows gives ints, even with weights.
    return np.bincount(gid, weights=weights, minlength=ngroups).astype(np.float64)


def _extreme_index(gid: np.ndarray, ngroups: int, last: bool) -> np.ndarray:
    """Row index of the first (or last) row of each group; -1 for empty groups."""
    idx = np.arange(gid.shape[0], dtype=np.int64)
    if last:
        out = np.full(ngroups, -1, dtype=np.int64)
        np.maximum.at(out, gid, idx)
    else:
        out = np.full(ngroups, gid.shape[0], dtype=np.int64)
        np.minimum.at(out, gid, idx)
        out[out == gid.shape[0]] = -1
    return out


def _pick(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    out = np.full(index.shape[0], np.nan)
    ok = index >= 0
    out[ok] = values[index[ok]]
    return out


def _time_spread(ts: np.ndarray, gid: np.ndarray, ngroups: int) -> np.ndarray:
    """True for groups with at least two rows at distinct times."""
    lo = np.full(ngroups, _I64_MAX, dtype=np.int64)
    hi = np.full(ngroups, _I64_MIN, dtype=np.int64)
    np.minimum.at(lo, gid, ts)
    np.maximum.at(hi, gid, ts)
    return hi > lo


def _line(
    ts: np.ndarray, values: np.ndarray, gid: np.ndarray, ngroups: int, origin: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line per group: (slope per second, mean time (s), mean value).

    Time is taken relative to `origin` and centred per group (two passes) so that
    squares of monotonic-clock nanoseconds never lose precision.
    """
    n = _counts(gid, ngroups)
    t = (ts - origin).astype(np.float64) / _NS_PER_S
    with np.errstate(invalid="ignore", divide="ignore"):
        mt = _sums(gid, t, ngroups) / n
        mv = _sums(gid, values, ngroups) / n
        dt = t - mt[gid]
        sxx = _sums(gid, dt * dt, ngroups)
        sxy = _sums(gid, dt * (values - mv[gid]), ngroups)
        slope = sxy / sxx
    slope[~_time_spread(ts, gid, ngroups)] = np.nan
    return slope, mt, mv


def aggregate(
    func: str,
    ts: np.ndarray,
    values: np.ndarray | None,
    gid: np.ndarray,
    ngroups: int,
    start: int,
    end: int,
    *,
    q: float | None = None,
    horizon: int | None = None,
    whole: bool = False,
) -> np.ndarray:
    """One value per group of `func` over the window [start, end].

    `whole`: the caller knows every value is a whole number (a percentile can then
    select on one exact key instead of sorting).

    ts (int64, sorted), values (float64, no NaN; None for count/rate) and gid
    (int64 in [0, ngroups)) are the rows that count.
    """
    if func == "count":
        return _counts(gid, ngroups)
    if func == "rate":
        if end <= start:
            return np.full(ngroups, np.nan)
        return _counts(gid, ngroups) / ((end - start) / _NS_PER_S)
    if values is None:
        raise ValueError(f"{func} needs a field")
    n = _counts(gid, ngroups)
    empty = n == 0
    if func in ("sum", "avg"):
        s = _sums(gid, values, ngroups)
        if func == "avg":
            with np.errstate(invalid="ignore", divide="ignore"):
                s = s / n
        s[empty] = np.nan
        return s
    if func in ("min", "max"):
        if func == "min":
            out = np.full(ngroups, np.inf)
            np.minimum.at(out, gid, values)
        else:
            out = np.full(ngroups, -np.inf)
            np.maximum.at(out, gid, values)
        out[empty] = np.nan
        return out
    if func == "last":
        return _pick(values, _extreme_index(gid, ngroups, last=True))
    if func == "delta":
        return _pick(values, _extreme_index(gid, ngroups, last=True)) - _pick(
            values, _extreme_index(gid, ngroups, last=False)
        )
    if func == "percentile":
        if q is None:
            raise ValueError("percentile needs q")
        return _percentile(values, gid, ngroups, q, whole)
    if func == "stddev":
        with np.errstate(invalid="ignore", divide="ignore"):
            mv = _sums(gid, values, ngroups) / n
            d = values - mv[gid]
            var = _sums(gid, d * d, ngroups) / n
        out = np.sqrt(np.maximum(var, 0.0))
        out[~_time_spread(ts, gid, ngroups)] = np.nan
        return out
    if func in ("growth", "predict"):
        slope, mt, mv = _line(ts, values, gid, ngroups, end)
        if func == "growth":
            return slope
        # The line at (end + horizon), time measured in seconds from `end`.
        return mv + slope * ((horizon or 0) / _NS_PER_S - mt)
    raise ValueError(f"unknown aggregate {func!r}")


def _percentile(
    values: np.ndarray, gid: np.ndarray, ngroups: int, q: float, whole: bool = False
) -> np.ndarray:
    out = np.full(ngroups, np.nan)
    m = values.shape[0]
    if m == 0:
        return out
    if ngroups == 1:
        r = int(percentile_rank(q, np.array([m]))[0])
        out[0] = np.partition(values, r - 1)[r - 1]
        return out
    counts = np.bincount(gid, minlength=ngroups)
    has = counts > 0
    ranks = percentile_rank(q, counts[has])
    pos = (np.cumsum(counts) - counts)[has] + ranks - 1  # in (group, value) order
    lo = float(values.min())
    span = float(values.max()) - lo + 1.0
    if span * ngroups < 2.0**52 and (whole or bool(np.all(values == np.floor(values)))):
        # Whole numbers (ns, bytes): one exact float key per (group, value), and a
        # selection at each group's rank instead of a sort.
        key = gid * span + (values - lo)
        part = np.partition(key, pos)
        out[has] = part[pos] - np.flatnonzero(has) * span + lo
        return out
    order = np.argsort(values)  # ties: equal values, either will do
    g = gid[order]
    order = order[np.argsort(g.astype(np.int16) if ngroups < 2**15 else g, kind="stable")]
    out[has] = values[order[pos]]
    return out
