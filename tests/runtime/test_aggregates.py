"""Each aggregate against a brute-force reference on random grouped data."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.aggregates import aggregate, percentile_rank

START, END = 1_000, 5_000_000_000


@st.composite
def grouped(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    ngroups = draw(st.integers(1, 4))
    n = draw(st.integers(0, 30))
    ts = sorted(draw(st.lists(st.integers(START, END), min_size=n, max_size=n)))
    vals = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
    gid = draw(st.lists(st.integers(0, ngroups - 1), min_size=n, max_size=n))
    return (
        np.asarray(ts, dtype=np.int64),
        np.asarray(vals, dtype=np.float64),
        np.asarray(gid, dtype=np.int64),
        ngroups,
    )


def _ref(func: str, ts: list[int], v: list[float], q: float | None, horizon: int) -> float | None:
    n = len(v)
    if func == "count":
        return float(n)
    if func == "rate":
        return n / ((END - START) / 1e9)
    if n == 0:
        return None
    if func == "sum":
        return float(sum(v))
    if func == "avg":
        return sum(v) / n
    if func == "min":
        return min(v)
    if func == "max":
        return max(v)
    if func == "last":
        return v[-1]
    if func == "delta":
        return v[-1] - v[0]
    if func == "percentile":
        assert q is not None
        s = sorted(v)
        # Smallest value with at least q% of values <= it (exact with integer percent).
        return next(x for x in s if sum(1 for y in s if y <= x) * 100 >= q * n)
    if len(set(ts)) < 2:
        return None
    if func == "stddev":
        m = sum(v) / n
        return math.sqrt(sum((x - m) ** 2 for x in v) / n)
    t = [x / 1e9 for x in ts]
    mt = sum(t) / n
    mv = sum(v) / n
    slope = sum((a - mt) * (b - mv) for a, b in zip(t, v, strict=True)) / sum(
        (a - mt) ** 2 for a in t
    )
    if func == "growth":
        return slope
    return mv + slope * ((END + horizon) / 1e9 - mt)


FUNCS = [
    "count",
    "rate",
    "sum",
    "avg",
    "min",
    "max",
    "last",
    "delta",
    "stddev",
    "growth",
    "predict",
]


@settings(max_examples=150, deadline=None)
@given(grouped(), st.sampled_from([*FUNCS, "p50", "p90", "p99", "p100", "p1"]))
def test_matches_reference(data: tuple[np.ndarray, np.ndarray, np.ndarray, int], name: str) -> None:
    ts, vals, gid, ngroups = data
    pct = name[0] == "p" and name[1:].isdigit()
    func, q = ("percentile", float(name[1:])) if pct else (name, None)
    horizon = 300_000_000_000
    got = aggregate(func, ts, vals, gid, ngroups, START, END, q=q, horizon=horizon)
    assert got.shape == (ngroups,)
    for g in range(ngroups):
        sel = gid == g
        want = _ref(func, ts[sel].tolist(), vals[sel].tolist(), q, horizon)
        if want is None:
            assert math.isnan(got[g]), (func, g)
        else:
            assert math.isclose(got[g], want, rel_tol=1e-6, abs_tol=1e-3), (func, got[g], want)


def test_percentile_rank_is_exact() -> None:
    # 99.9% of 1000 values is exactly rank 999 and 99% of 100 exactly rank 99.
    assert percentile_rank(99.9, np.array([1000]))[0] == 999
    assert percentile_rank(99, np.array([100]))[0] == 99
    assert percentile_rank(50, np.array([1, 2, 3]))[0:3].tolist() == [1, 1, 2]


def test_rate_over_zero_length_window_has_no_value() -> None:
    ts = np.array([10], dtype=np.int64)
    got = aggregate("rate", ts, None, np.zeros(1, dtype=np.int64), 1, 10, 10)
    assert math.isnan(got[0])


def test_growth_needs_distinct_times() -> None:
    ts = np.array([10, 10], dtype=np.int64)
    v = np.array([1.0, 5.0])
    for f in ("growth", "predict", "stddev"):
        got = aggregate(f, ts, v, np.zeros(2, dtype=np.int64), 1, 0, 20, horizon=5)
        assert math.isnan(got[0]), f


def test_growth_is_per_second_on_monotonic_clock_scale() -> None:
    # Large monotonic timestamps must not cost precision: 1 MiB/s exactly.
    base = 9_000_000_000_000_000
    ts = base + np.arange(0, 10, dtype=np.int64) * 1_000_000_000
    v = np.arange(10, dtype=np.float64) * 1048576.0
    got = aggregate("growth", ts, v, np.zeros(10, dtype=np.int64), 1, base, int(ts[-1]))
    assert math.isclose(got[0], 1048576.0, rel_tol=1e-9)
    pred = aggregate(
        "predict", ts, v, np.zeros(10, dtype=np.int64), 1, base, int(ts[-1]), horizon=5_000_000_000
    )
    assert math.isclose(pred[0], 14 * 1048576.0, rel_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(1, 300),
    st.integers(2, 12),
    st.sampled_from([0.1, 50, 90, 99, 99.9, 100]),
    st.booleans(),
)
def test_keyed_percentile_is_exact_nearest_rank(
    seed: int, n: int, ngroups: int, q: float, fractional: bool
) -> None:
    """Whole numbers take a selection on a combined (group, value) key; others a sort."""
    rng = np.random.default_rng(seed)
    gid = rng.integers(0, ngroups, n)
    values = rng.integers(-1000, 10**9, n).astype(np.float64)
    if fractional:
        values += rng.random(n)
    got = aggregate("percentile", np.zeros(n, dtype=np.int64), values, gid, ngroups, 0, 1, q=q)
    for k in range(ngroups):
        v = np.sort(values[gid == k])
        if v.shape[0] == 0:
            assert np.isnan(got[k])
        else:
            assert got[k] == v[int(percentile_rank(q, np.array([v.shape[0]]))[0]) - 1]
