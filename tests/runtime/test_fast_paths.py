"""Shortcuts of the step loop against the plain per-step path they replace.

Steps decided in bulk (runtime.bulk), comparisons of percentiles decided by counting
(AggValues.test), `and`/`or` stopping early, a step reusing the previous one's
outcome when no row entered or left its windows, groups alive without folding
pending rows: every finding must be the one the plain path gives, whatever the
batching and however often the watermark advances.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rt_helpers import MS, agg, plan, rule

from engine.batch import Batch
from engine.dsl.plan import AggRef, AggSpec, Arith, BoolOp, Compare, Cond, Not, Num, PredCompare
from engine.runtime import Evaluator
from engine.runtime.groups import GroupLife
from engine.runtime.keys import KeyIndex, SeenTimes
from engine.units import Kind

TICK = 10 * MS
_FUNCS = ["count", "rate", "sum", "avg", "percentile", "min", "max", "last"]
_OPS = [">", ">=", "<", "<=", "==", "!="]


def _spec(func: str, q: float, over: int | None, where: bool) -> AggSpec:
    field = None if func in ("count", "rate") else "latency"
    kind = Kind.NUMBER if func == "count" else Kind.DURATION
    pred = PredCompare("bytes", ">=", 8192.0) if where else None
    return agg(
        func,
        "disk.io",
        field,
        q=q if func == "percentile" else None,
        over=over,
        kind=kind,
        where=pred,
        text=f"{func}#{q}#{over}#{where}",
    )


@st.composite
def _rules(draw: Any) -> tuple[tuple[AggSpec, ...], Cond]:
    n = draw(st.integers(1, 3))
    aggs = tuple(
        _spec(
            draw(st.sampled_from(_FUNCS)),
            draw(st.sampled_from([1.0, 50.0, 90.0, 99.0, 100.0])),
            draw(st.sampled_from([None, 30 * MS, 600 * MS])),
            draw(st.booleans()),
        )
        for _ in range(n)
    )
    terms: list[Cond] = []
    for i in range(n):
        other: Any = Num(float(draw(st.integers(0, 12))), Kind.NUMBER)
        if i and draw(st.booleans()):
            other = Arith("*", AggRef(i - 1), Num(2.0, Kind.NUMBER), Kind.NUMBER)
        left, right = AggRef(i), other
        if draw(st.booleans()):
            left, right = right, left
        c: Cond = Compare(draw(st.sampled_from(_OPS)), left, right)
        if draw(st.integers(0, 4)) == 0:
            c = Not(c)
        terms.append(c)
    cond = terms[0] if n == 1 else BoolOp(draw(st.sampled_from(["and", "or"])), tuple(terms))
    return aggs, cond


def _findings(
    ev: Evaluator, batches: list[Batch], cuts: list[int], every_tick: bool
) -> list[tuple[Any, ...]]:
    out = []
    prev = None
    for b, wm in zip(batches, cuts, strict=True):
        ev.push(b)
        if every_tick and prev is not None:
            # As a watchdog does: an advance per tick, most of them with nothing new.
            for t in range(prev - prev % TICK + TICK, wm, TICK):
                out.extend(ev.advance(t))
        out.extend(ev.advance(wm))
        prev = wm
    out.extend(ev.finish())
    return [(f.rule, f.ts, f.window, f.key, f.values, f.summary) for f in out]


@settings(max_examples=150, deadline=None)
@given(
    _rules(),
    st.lists(
        st.tuples(st.integers(0, 600), st.integers(0, 2), st.integers(0, 12), st.booleans()),
        min_size=1,
        max_size=120,
    ),
    st.booleans(),
    st.sampled_from([None, 30 * MS]),
    st.lists(st.integers(1, 40), min_size=1, max_size=6),
    st.booleans(),
)
def test_bulk_and_counted_steps_match_plain_steps(
    r: tuple[tuple[AggSpec, ...], Cond],
    rows: list[tuple[int, int, int, bool]],
    keyed: bool,
    for_: int | None,
    sizes: list[int],
    every_tick: bool,
) -> None:
    _compare(r[0], r[1], rows, keyed, for_, sizes, every_tick)


def _compare(
    aggs: tuple[AggSpec, ...],
    cond: Cond,
    rows: list[tuple[int, int, int, bool]],
    keyed: bool,
    for_: int | None,
    sizes: list[int],
    every_tick: bool,
) -> None:
    rows = sorted(rows)
    base = 10**12
    ts = np.array([base + x[0] * MS for x in rows], dtype=np.int64)
    devs = np.array(["sda", "sdb", "nvme0n1"], dtype=object)[[x[1] for x in rows]]
    lat = np.array([float(x[2]) for x in rows])
    size = np.array([16384.0 if x[3] else 4096.0 for x in rows])
    # Batches of varying sizes, each followed by an advance to just below the next.
    batches: list[Batch] = []
    cuts: list[int] = []
    i = 0
    k = 0
    while i < ts.shape[0]:
        j = min(ts.shape[0], i + sizes[k % len(sizes)])
        k += 1
        cols = {
            "dev": devs[i:j],
            "op": np.array(["write"] * (j - i), dtype=object),
            "bytes": size[i:j],
            "latency": lat[i:j],
            "pid": np.ones(j - i),
            "comm": np.array(["x"] * (j - i), dtype=object),
        }
        batches.append(Batch("disk.io", ts[i:j], None, cols))
        cuts.append(int(ts[j]) - 1 if j < ts.shape[0] else int(ts[-1]))
        i = j
    by = ("dev",) if keyed else ()
    p = plan(rule("r", cond, aggs, over=50 * MS, for_=for_, by=by))
    fast = Evaluator(p, tick=TICK)
    plain = Evaluator(p, tick=TICK)
    for rs in plain._rules:
        rs.bulk = None
        rs.scope.tests = {}
        rs.windows = None  # no reuse of an unchanged step's outcome
    got = _findings(fast, batches, cuts, every_tick)
    assert got == _findings(plain, batches, cuts, every_tick)


@pytest.mark.parametrize("func", _FUNCS)
@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
@pytest.mark.parametrize("every_tick", [False, True])
def test_each_aggregate_and_order_matches_plain_steps(func: str, op: str, every_tick: bool) -> None:
    """Every function and order, keyed, per tick (one step at a time) or in bulk."""
    rng = np.random.default_rng(5)
    rows = [
        (int(t), int(d), int(v), bool(w))
        for t, d, v, w in zip(
            rng.integers(0, 600, 200),
            rng.integers(0, 3, 200),
            rng.integers(0, 13, 200),
            rng.random(200) < 0.5,
            strict=True,
        )
    ]
    # 400ms: a long window (kept incrementally step by step), ~22 rows per key.
    long_thr = {"count": 20.0, "rate": 50.0, "sum": 130.0}.get(func, 6.0)
    for thr, over in ((3.0, None), (9.0, None), (long_thr, 400 * MS)):
        cond = Compare(op, AggRef(0), Num(thr, Kind.NUMBER))
        _compare((_spec(func, 90.0, over, True),), cond, rows, True, None, [7, 30], every_tick)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 8)), min_size=1, max_size=30),
    st.lists(st.integers(0, 90), min_size=1, max_size=10),
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 40)), max_size=4),
    st.integers(0, 70),
)
def test_alive_groups_match_folded_times(
    touches: list[tuple[int, int]],
    steps: list[int],
    extends: list[tuple[int, int]],
    frontier: int,
) -> None:
    ki = KeyIndex(("dev",))
    seen = SeenTimes()
    names = np.array([f"d{c}" for _, c in touches], dtype=object)
    ts = np.array([t for t, _ in touches], dtype=np.int64)
    codes = ki.encode([names], ts)
    seen.touch(codes, ts)
    seen.commit(frontier)  # some rows folded, the others still pending
    life = GroupLife(ki, [seen], ttl=10)
    for c, ttl in extends:
        if c < ki.size:
            life.extend(c, ttl)
    for t in steps:
        assert life._alive(t).tolist() == life._state(t)[0].tolist()
