"""Long-window percentiles from per-tick log histograms (runtime/sketch.py).

Window membership is exact (counts per key equal a direct selection of the closed
window [t - D, t]); the percentile is within 1% of the exact nearest-rank value;
rows of a sketched window are not retained for it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rt_helpers import MS, S, agg, gt, plan, rule

from engine.batch import Batch
from engine.dsl import compile_text
from engine.dsl.plan import Correlation, Trigger
from engine.runtime import Evaluator
from engine.runtime.aggregates import percentile_rank
from engine.runtime.sketch import SlicedPercentile, SlicedRows, ordinals, representative

TICK = 10


def _close(got: float, want: float) -> bool:
    if math.isinf(want) or want == 0:
        return got == want
    return abs(got - want) <= 0.01 * abs(want)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=True, width=64),
)
def test_bucket_representative_within_one_percent(v: float) -> None:
    got = float(representative(ordinals(np.array([v])))[0])
    assert _close(got, v), (v, got)


def test_ordinals_follow_the_values() -> None:
    v = [-np.inf, -1e300, -5.0, -1e-300, -0.0, 0.0, 5e-324, 1e-9, 1.0, 1.03, 1e308, np.inf]
    o = ordinals(np.array(v))
    assert np.all(np.diff(o) >= 0)
    assert o[4] == o[5]  # -0.0 and 0.0


_values = st.one_of(
    st.integers(0, 50).map(float),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(1e3, 1e9).map(math.floor),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.booleans(), st.integers(0, 3), _values),
        max_size=120,
    ),
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), min_size=1, max_size=30),
    st.integers(2, 20),
    st.sampled_from([1.0, 50.0, 90.0, 99.0, 100.0]),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_sketch_matches_exact_percentile(
    rows: list[tuple[int, bool, int, float]],
    moves: list[tuple[int, int]],
    d: int,
    q: float,
    keyed: bool,
    rnd: Any,
) -> None:
    """Random streams ingested in random chunks (late rows, rows on tick boundaries),
    steps moving forward by random amounts: per key, the count is exact and the
    percentile within 1% of the nearest-rank value of the rows ingested so far."""
    # A row: time (on the tick grid when asked), key, value.
    ts = np.array([r[0] * TICK if r[1] else r[0] * TICK + r[0] % 7 + 1 for r in rows])
    ts = ts.astype(np.int64)
    codes = np.array([r[2] if keyed else 0 for r in rows], dtype=np.int64)
    vals = np.array([r[3] for r in rows], dtype=np.float64)
    order = list(range(len(rows)))
    rnd.shuffle(order)
    span = d * TICK
    sk = SlicedPercentile(q, span, TICK)
    known = np.zeros(len(rows), dtype=bool)
    pos = 0
    t = 0
    prev: int | None = None
    for feed, step in moves:
        chunk = np.array(order[pos : pos + feed], dtype=np.int64)
        pos += feed
        if chunk.shape[0]:
            sk.ingest(ts[chunk], vals[chunk], codes[chunk] if keyed else None)
            known[chunk] = True
        t += step * TICK
        if prev is not None and t > prev:
            gone = known & (ts >= prev - span) & (ts < t - span)
            assert sk.left_between(prev - span, t - span) == bool(gone.any())
        sk.update(t)
        prev = t
        inw = known & (ts >= t - span) & (ts <= t)
        keys = np.arange(4, dtype=np.int64)
        got = sk.percentile(keys)
        n = sk.count(keys)
        for c in range(4):
            w = np.sort(vals[inw & (codes == c)])
            assert int(n[c]) == w.shape[0]
            if w.shape[0] == 0:
                assert np.isnan(got[c])
            else:
                want = float(w[int(percentile_rank(q, np.array([w.shape[0]]))[0]) - 1])
                assert _close(float(got[c]), want), (c, got[c], want)
        assert sk.rows == int(np.count_nonzero(inw))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3), _values), max_size=120),
    st.lists(st.tuples(st.integers(0, 400), st.integers(0, 300)), min_size=1, max_size=10),
    st.integers(1, 6),
    st.sampled_from([1.0, 50.0, 99.0, 100.0]),
)
def test_sliced_rows_match_exact_percentile_over_any_window(
    rows: list[tuple[int, int, float]],
    windows: list[tuple[int, int]],
    chunks: int,
    q: float,
) -> None:
    """Compact rows per tick slice: any [lo, hi] (edges inside slices or on their
    bounds), rows ingested in chunks out of order: within 1% of the exact value."""
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    codes = np.array([r[1] for r in rows], dtype=np.int64)
    vals = np.array([r[2] for r in rows], dtype=np.float64)
    sr = SlicedRows(q, TICK)
    for part in np.array_split(np.arange(len(rows))[::-1], chunks):
        sr.ingest(ts[part], vals[part], codes[part])
    keys = np.arange(4, dtype=np.int64)
    for lo, length in windows:
        hi = lo + length
        got = sr.percentile(lo, hi, keys)
        for c in range(4):
            w = np.sort(vals[(ts >= lo) & (ts <= hi) & (codes == c)])
            if w.shape[0] == 0:
                assert np.isnan(got[c])
            else:
                want = float(w[int(percentile_rank(q, np.array([w.shape[0]]))[0]) - 1])
                assert _close(float(got[c]), want), (lo, hi, c, got[c], want)
    sr.expire(200)
    assert all(j * TICK >= 200 for j in sr._slices)


def _runq(ts: np.ndarray, lat: np.ndarray, comm: np.ndarray) -> Batch:
    n = ts.shape[0]
    cols = {"pid": np.ones(n), "comm": comm, "cpu": np.zeros(n), "latency": lat}
    return Batch("sched.runq", ts, None, cols)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4000), st.integers(0, 1), st.integers(1, 30)),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 30),
    st.booleans(),
)
def test_sketched_rule_decides_as_brute_force_once_rows_are_gone(
    rows: list[tuple[int, int, int]], threshold: int, every_tick: bool
) -> None:
    """A long p50 (1s, 100 ticks) with rows kept ~0.2s: every step decides as the
    exact percentile would (thresholds half-way between the whole values), through
    windows that drain and fill again after their rows left the history."""
    tick = 10 * MS
    over = 1000 * MS
    rows.sort()
    base = 10**12
    ts = np.array([base + r[0] * MS for r in rows], dtype=np.int64)
    comm = np.array(["a", "b"], dtype=object)[[r[1] for r in rows]]
    lat = np.array([float(r[2]) for r in rows])
    thr = threshold + 0.5
    p = agg("percentile", "sched.runq", "latency", q=50.0, over=over)
    r = rule("r", gt(0, thr), [p], over=tick, by=("comm",), baseline=tick)
    ev = Evaluator(plan(r), tick=tick, margin=100 * MS)
    assert ev._retention["sched.runq"] < 300 * MS
    got: list[tuple[int, str]] = []
    t_end = base + 6000 * MS
    i = 0
    for t in range(base, t_end + 1, tick):
        j = int(np.searchsorted(ts, t, "right"))
        if j > i:
            ev.push(_runq(ts[i:j], lat[i:j], comm[i:j]))
            i = j
        if every_tick or j == len(rows) or t % (50 * tick) == 0:
            got.extend((f.ts, f.key["comm"]) for f in ev.advance(t))
    got.extend((f.ts, f.key["comm"]) for f in ev.finish())
    assert ev.stats()["rows_retained"] == 0  # long after the last row
    want: list[tuple[int, str]] = []
    held_before = {"a": False, "b": False}
    t = -(-int(ts[0]) // tick) * tick
    while t <= t_end:
        for c in ("a", "b"):
            w = np.sort(lat[(ts >= t - over) & (ts <= t) & (comm == c)])
            held = False
            if w.shape[0]:
                held = bool(w[int(percentile_rank(50.0, np.array([w.shape[0]]))[0]) - 1] > thr)
            if held and not held_before[c]:
                want.append((t, c))
            held_before[c] = held
        t += tick
    assert sorted(got) == sorted(want)


def test_long_p50_keeps_no_rows_for_its_window() -> None:
    """The library's run-queue rule: rows stay for the 5s window and the 60s evidence
    baseline, not for the 10m median, which still covers its whole 10 minutes."""
    tick, margin = 100 * MS, 30 * S
    text = (
        "rule r when p99(sched.runq.latency) > 50ms"
        " and p99(sched.runq.latency) > 10 * p50(sched.runq.latency over 10m)"
        " over 5s by comm"
    )
    ev = Evaluator(compile_text(text), tick=tick, margin=margin)
    assert ev._retention["sched.runq"] == 5 * S + tick + 60 * S + margin
    rng = np.random.default_rng(3)
    base = 10**12
    rate = 200  # rows per second
    peak = 0
    findings = []
    for sec in range(660):
        t = base + sec * S
        ts = np.sort(t + rng.integers(0, S, rate)).astype(np.int64)
        # 1ms for 10 minutes, then 20s of 200ms: the 10m median is still ~1ms
        # (rows 10 minutes old, long expired from the history).
        lat = rng.uniform(0.99e6, 1.01e6, rate) if sec < 640 else np.full(rate, 200e6)
        ev.push(_runq(ts, lat, np.full(rate, "a", dtype=object)))
        findings += ev.advance(t + S - 1)
        peak = max(peak, ev.stats()["rows_retained"])
    # Rows of at most ~(5s + 60s + 30s margin + 30s between expiries).
    assert peak <= rate * 130
    assert len(findings) == 1
    med = findings[0].values["p50(sched.runq.latency over 10m)"]
    assert med is not None and 0.98e6 <= med <= 1.02e6
    assert findings[0].ts >= base + 640 * S


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3000), st.integers(0, 1), st.integers(1, 30)),
        min_size=1,
        max_size=400,
    ),
    st.lists(st.tuples(st.integers(0, 3000_000), st.integers(0, 200_000)), min_size=1, max_size=8),
    st.integers(1, 30),
)
def test_correlation_long_percentile_from_compact_rows(
    rows: list[tuple[int, int, int]], syncs: list[tuple[int, int]], threshold: int
) -> None:
    """A correlation rule's `p50(... over 1s)` (windows ending anywhere, not on the tick
    grid) from per-tick compact rows once the stream's rows are gone: each trigger
    decides as the exact percentile over [end - 1s, end] would."""
    tick = 10 * MS
    over = 1000 * MS
    rows.sort()
    base = 10**12
    ts = np.array([base + r[0] * MS for r in rows], dtype=np.int64)
    dev = np.array(["sda", "sdb"], dtype=object)[[r[1] for r in rows]]
    lat = np.array([float(r[2]) for r in rows])
    # Syncs: start and end anywhere (microseconds), in end order.
    sy = sorted((base + s * 1000, base + s * 1000 + d * 1000) for s, d in syncs)
    sy.sort(key=lambda x: x[1])
    thr = threshold + 0.5
    p = agg("percentile", "disk.io", "latency", q=50.0, over=over)
    trig = Trigger("zfs.txg.sync", None, True)
    r = rule(
        "r", gt(0, thr), [p], by=("dev",), baseline=tick, correlation=Correlation("during", trig, 0)
    )
    ev = Evaluator(plan(r), tick=tick, margin=100 * MS)
    assert ev._retention["disk.io"] < 300 * MS
    got: list[tuple[int, str]] = []
    i = k = 0
    for t in range(base, base + 3400 * MS, tick):
        j = int(np.searchsorted(ts, t, "right"))
        if j > i:
            n = j - i
            cols = {
                "dev": dev[i:j],
                "op": np.array(["read"] * n, dtype=object),
                "bytes": np.full(n, 4096.0),
                "latency": lat[i:j],
                "queue": np.zeros(n),
                "pid": np.ones(n),
                "comm": np.array(["x"] * n, dtype=object),
            }
            ev.push(Batch("disk.io", ts[i:j], None, cols))
            i = j
        while k < len(sy) and sy[k][1] <= t:
            s, e = sy[k]
            cols = {"pool": np.array(["tank"], dtype=object), "txg": np.ones(1)}
            ev.push(Batch("zfs.txg.sync", np.array([s]), np.array([e]), cols))
            k += 1
        got.extend((f.ts, f.key["dev"]) for f in ev.advance(t))
    got.extend((f.ts, f.key["dev"]) for f in ev.finish())
    want: list[tuple[int, str]] = []
    for _, e in sy:
        if e > base + 3400 * MS - tick:
            continue  # never pushed
        for c in ("sda", "sdb"):
            w = np.sort(lat[(ts >= e - over) & (ts <= e) & (dev == c)])
            if w.shape[0] and w[int(percentile_rank(50.0, np.array([w.shape[0]]))[0]) - 1] > thr:
                want.append((e, c))
    assert sorted(got) == sorted(want)


def test_window_columns_are_the_buckets_seen() -> None:
    """Zeros and values around 1e6 are 38k ordinals apart: the window's array holds
    the few buckets seen, not the span between them."""
    sk = SlicedPercentile(50.0, 100 * TICK, TICK)
    ts = np.arange(1, 201, dtype=np.int64)
    vals = np.where(ts % 2 == 0, 0.0, 1e6)
    sk.ingest(ts, vals, ts % 3)
    sk.update(200)
    assert sk._w.shape[1] == 2
    got = sk.percentile(np.arange(3, dtype=np.int64))
    assert all(_close(float(g), 0.0) or _close(float(g), 1e6) for g in got)
