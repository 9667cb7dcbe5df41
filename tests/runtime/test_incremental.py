"""Incremental window structures and storage against brute force."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rt_helpers import MS, agg, gt, plan, rule

from engine.batch import Batch
from engine.runtime import Evaluator
from engine.runtime.aggregates import percentile_rank
from engine.runtime.history import History
from engine.runtime.incremental import SortedWindow
from engine.runtime.keys import KeyIndex


class _Unchanged(History):
    """History of a fixed set of rows (no appends between updates)."""

    def __init__(self) -> None:
        super().__init__({})


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 20), st.integers(0, 2)), max_size=60),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 300)), min_size=1, max_size=25),
    st.booleans(),
    st.sampled_from([1.0, 50.0, 90.0, 100.0]),
)
def test_sorted_window_matches_sort(
    rows: list[tuple[int, int, int]], moves: list[tuple[int, int]], keyed: bool, q: float
) -> None:
    rows.sort()
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    vals = np.array([r[1] for r in rows], dtype=np.float64)
    codes = np.array([r[2] for r in rows], dtype=np.int64)

    def values(lo: int, hi: int, open_hi: bool) -> tuple[np.ndarray, np.ndarray | None]:
        m = (ts >= lo) & ((ts < hi) if open_hi else (ts <= hi))
        return vals[m], codes[m] if keyed else None

    sw = SortedWindow(q)
    lo = hi = 0
    for dlo, dhi in moves:
        hi += dhi
        lo = min(lo + dlo, hi)
        sw.update(values, lo, hi, _Unchanged())
        v, c = values(lo, hi, False)
        for code in range(3) if keyed else [0]:
            want = sorted(v[c == code].tolist() if c is not None else v.tolist())
            assert sw.count(code) == len(want)
            got = sw.percentile(np.array([code]))[0]
            if want:
                assert got == want[int(percentile_rank(q, np.array([len(want)]))[0]) - 1]
            else:
                assert np.isnan(got)
        assert all(sw.count(c) for c in sw.keys)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([50.0, 99.0]),
    st.sampled_from([3, 40, 100_000]),
    st.booleans(),
)
def test_sorted_window_band_moves_with_its_rank(
    seed: int, q: float, spread: int, drift: bool
) -> None:
    """Windows of thousands of rows: the band around the rank is recentred or rebuilt
    whenever the rank leaves it (drifting values, many ties), and stays exact."""
    rng = np.random.default_rng(seed)
    n = 40_000  # ~13k rows per window: bands far narrower than windows
    ts = np.sort(rng.integers(0, 60_000, n)).astype(np.int64)
    vals = rng.integers(0, spread, n).astype(np.float64)
    if drift:  # the distribution moves far past any band in the middle of the trace
        vals += np.where(ts > 30_000, 10 * spread, 0)

    def values(lo: int, hi: int, open_hi: bool) -> tuple[np.ndarray, np.ndarray | None]:
        m = (ts >= lo) & ((ts < hi) if open_hi else (ts <= hi))
        return vals[m], None

    sw = SortedWindow(q)
    for hi in range(0, 60_000, 500):
        lo = max(0, hi - 20_000)
        sw.update(values, lo, hi, _Unchanged())
        w = np.sort(values(lo, hi, False)[0])
        got = sw.percentile(np.zeros(1, dtype=np.int64))[0]
        if w.shape[0]:
            assert got == w[int(percentile_rank(q, np.array([w.shape[0]]))[0]) - 1]
        else:
            assert np.isnan(got)
        assert sw.count(0) == w.shape[0]
    assert sw.rebuilds < 60  # patched at most steps: the band is narrower than the window


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 3000), min_size=1, max_size=80),
    st.integers(1, 30),
    st.sampled_from([50.0, 90.0, 99.0]),
)
def test_sliding_percentile_rule_matches_brute_force(
    offsets: list[int], threshold: int, q: float
) -> None:
    """Every step's decision, with once-until-false, against a direct computation."""
    tick = 100 * MS
    over = 300 * MS
    ts = np.sort(np.array(offsets, dtype=np.int64)) * MS + 10**12
    lat = (np.arange(ts.shape[0]) * 7919 % 40).astype(np.float64)
    p = agg("percentile", "sched.runq", "latency", q=q)
    ev = Evaluator(plan(rule("r", gt(0, threshold), [p], over=over)), tick=tick)
    got: list[int] = []
    # Push in several batches, advancing in between.
    for chunk in np.array_split(np.arange(ts.shape[0]), 4):
        if chunk.shape[0] == 0:
            continue
        cols = {
            "pid": np.ones(chunk.shape[0]),
            "comm": np.array(["x"] * chunk.shape[0], dtype=object),
            "cpu": np.zeros(chunk.shape[0]),
            "latency": lat[chunk],
        }
        ev.push(Batch("sched.runq", ts[chunk], None, cols))
        # Everything at or before the watermark has been pushed (the bus contract).
        got.extend(f.ts for f in ev.advance(int(ts[chunk[-1]]) - 1))
    got.extend(f.ts for f in ev.finish())
    # Reference.
    want: list[int] = []
    t = -(-int(ts[0]) // tick) * tick
    last = -(-int(ts[-1]) // tick) * tick
    held_before = False
    while t <= last:
        w = np.sort(lat[(ts >= t - over) & (ts <= t)])
        held = False
        if w.shape[0]:
            v = w[int(percentile_rank(q, np.array([w.shape[0]]))[0]) - 1]
            held = v > threshold
        if held and not held_before:
            want.append(t)
        held_before = held
        t += tick
    assert got == want


def test_history_merges_out_of_order_rows() -> None:
    h = History({"v": np.float64})
    h.append({"ts": np.array([1, 5, 9]), "v": np.array([1.0, 5.0, 9.0])})
    h.append({"ts": np.array([7, 3, 10]), "v": np.array([7.0, 3.0, 10.0])})
    assert h.ts.tolist() == [1, 3, 5, 7, 9, 10]
    assert h.col("v").tolist() == [1.0, 3.0, 5.0, 7.0, 9.0, 10.0]
    assert h.span(3, 9) == (1, 5)
    assert h.expire(6) == 3
    assert h.ts.tolist() == [7, 9, 10]
    for k in range(5000):  # growth and compaction keep order
        h.append({"ts": np.array([11 + k]), "v": np.array([0.0])})
        if k % 1000 == 0:
            h.expire(k)
    assert bool(np.all(np.diff(h.ts) >= 0))


def test_key_index_codes_equal_values_and_reuse_released_codes() -> None:
    ki = KeyIndex(("dev", "pid"))
    devs = np.array(["a", "b", None, "a"], dtype=object)
    pids = np.array([1.0, 1.0, 1.0, math.nan])
    c = ki.encode([devs, pids], np.array([1, 2, 3, 4], dtype=np.int64))
    assert c[2] == -1 and c[3] == -1 and c[0] != c[1]
    assert ki.values(int(c[0])) == ("a", 1)
    again = ki.encode([np.array(["a"], dtype=object), np.array([1.0])], np.array([10]))
    assert again[0] == c[0]
    assert ki.release_before(5) == 1  # ("b", 1) last seen at 2
    assert ki.lookup(("b", 1)) == -1 and len(ki) == 1
    new = ki.encode([np.array(["z"], dtype=object), np.array([2.0])], np.array([11]))
    assert new[0] == c[1]  # the released code is reused
    assert ki.size == 2


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 2), st.integers(0, 40)), max_size=80),
    st.integers(1, 30),
    st.sampled_from(["percentile", "count", "sum", "avg"]),
    st.booleans(),
)
def test_keyed_long_window_aggregates_match_brute_force(
    rows: list[tuple[int, int, int]], threshold: int, func: str, keyed: bool
) -> None:
    """Aggregates over windows long enough to be kept incrementally, per key or not."""
    tick = 1 * MS
    over = 60 * MS
    rows.sort()
    if not rows:
        return
    ts = np.array([r[0] for r in rows], dtype=np.int64) * MS + 10**12
    cpu = np.array([r[1] for r in rows], dtype=np.float64)
    lat = np.array([r[2] for r in rows], dtype=np.float64)
    field = None if func == "count" else "latency"
    p = agg(func, "sched.runq", field, q=90.0 if func == "percentile" else None)
    by = ("cpu",) if keyed else ()
    ev = Evaluator(plan(rule("r", gt(0, threshold), [p], over=over, by=by)), tick=tick)
    got: list[tuple[int, int]] = []
    for chunk in np.array_split(np.arange(ts.shape[0]), 3):
        if chunk.shape[0] == 0:
            continue
        n = chunk.shape[0]
        cols = {
            "pid": np.ones(n),
            "comm": np.array(["x"] * n, dtype=object),
            "cpu": cpu[chunk],
            "latency": lat[chunk],
        }
        ev.push(Batch("sched.runq", ts[chunk], None, cols))
        got.extend((f.ts, f.key.get("cpu", 0)) for f in ev.advance(int(ts[chunk[-1]]) - 1))
    got.extend((f.ts, f.key.get("cpu", 0)) for f in ev.finish())
    if not keyed:
        cpu = np.zeros_like(cpu)
    want: list[tuple[int, int]] = []
    held_before: dict[int, bool] = {}
    t = int(ts[0])
    while t <= int(ts[-1]):
        for c in (0, 1, 2):
            # A key is alive while a row of it can be in a window (horizon over + tick).
            alive = bool(np.any((ts >= t - over - tick) & (ts <= t) & (cpu == c)))
            w = np.sort(lat[(ts >= t - over) & (ts <= t) & (cpu == c)])
            held = False
            if func == "count":
                held = alive and w.shape[0] > threshold
            elif alive and w.shape[0]:
                if func == "percentile":
                    v = w[int(percentile_rank(90.0, np.array([w.shape[0]]))[0]) - 1]
                else:
                    v = w.sum() if func == "sum" else w.sum() / w.shape[0]
                held = v > threshold
            if held and not held_before.get(c, False):
                want.append((t, c))
            held_before[c] = held
        t += tick
    assert sorted(got) == sorted(want)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 30), st.integers(1, 9)), max_size=40),
    st.sampled_from(["percentile", "sum"]),
    st.integers(1, 40),
)
def test_interval_rows_landing_behind_the_window_end(
    rows: list[tuple[int, int, int]], func: str, threshold: int
) -> None:
    """Interval events arrive at their end but count at their start: incremental windows
    must notice rows landing behind what they already hold."""
    if not rows:
        return
    tick = 1 * MS
    over = 60 * MS
    base = 10**12
    ts = np.array([base + r[0] * MS for r in rows], dtype=np.int64)
    end = ts + np.array([r[1] * MS for r in rows], dtype=np.int64)
    dirty = np.array([float(r[2]) for r in rows])
    p = agg(func, "zfs.txg.sync", "dirty", q=50.0 if func == "percentile" else None)
    ev = Evaluator(plan(rule("r", gt(0, threshold), [p], over=over)), tick=tick)
    got: list[int] = []
    for t in range(base, base + 240 * MS + 1, tick):
        sel = np.flatnonzero((end > t - tick) & (end <= t))
        if sel.shape[0]:
            sel = sel[np.argsort(end[sel], kind="stable")]
            cols = {
                "pool": np.array(["tank"] * sel.shape[0], dtype=object),
                "txg": np.zeros(sel.shape[0]),
                "dirty": dirty[sel],
            }
            ev.push(Batch("zfs.txg.sync", ts[sel], end[sel], cols))
        got.extend(f.ts for f in ev.advance(t))
    # Reference: steps from the first tick at or after the first pushed batch's start;
    # a step is decided at max(step, first push) with the rows known (ended) by then.
    first_push = int(end.min())
    first_batch = (end > first_push - tick) & (end <= first_push)
    step = -(-int(ts[first_batch].min()) // tick) * tick
    want: list[int] = []
    held_before = False
    while step <= base + 240 * MS:
        known = end <= max(step, first_push)
        w = np.sort(dirty[known & (ts >= step - over) & (ts <= step)])
        held = False
        if w.shape[0]:
            if func == "percentile":
                v = w[int(percentile_rank(50.0, np.array([w.shape[0]]))[0]) - 1]
            else:
                v = w.sum()
            held = bool(v > threshold)
        if held and not held_before:
            want.append(step)
        held_before = held
        step += tick
    assert got == want
