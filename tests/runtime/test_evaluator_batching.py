"""Findings do not depend on how events are cut into batches or when advance is called."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rt_helpers import MS, S, agg, gt, plan, rule, within

from engine.batch import Batch
from engine.runtime import Evaluator
from engine.units import Kind

P99 = agg("percentile", "disk.io", "latency", q=99, text="p99(disk.io.latency)")
P90_LONG = agg(
    "percentile", "disk.io", "latency", q=90, over=2 * S, text="p90(disk.io.latency over 2s)"
)
PLAN = plan(
    rule("sync", gt(0, 1 * MS), [P99], correlation=within("zfs.txg.sync", 200 * MS), by=("dev",)),
    rule("over", gt(0, 1 * MS), [P99], over=500 * MS, by=("dev",)),
    rule("long", gt(0, 500_000), [P90_LONG], over=100 * MS),
    rule("cnt", gt(0, 3, Kind.NUMBER), [agg("count", "disk.io", kind=Kind.NUMBER)], over=1 * S),
)


def _events(seed: int) -> tuple[Batch, Batch]:
    rng = np.random.default_rng(seed)
    n = 400
    ts = np.sort(rng.integers(0, 20 * S, n)).astype(np.int64)
    disk = Batch(
        "disk.io",
        ts,
        None,
        {
            "dev": rng.choice(np.array(["a", "b", "c"], dtype=object), n),
            "op": np.array(["write"] * n, dtype=object),
            "bytes": np.full(n, 4096.0),
            "latency": rng.choice([10_000.0, 500_000.0, 2_000_000.0], n, p=[0.6, 0.3, 0.1]),
            "queue": np.full(n, np.nan),
            "pid": np.ones(n),
            "comm": np.array(["x"] * n, dtype=object),
        },
    )
    starts = np.arange(1, 20, 3, dtype=np.int64) * S
    sync = Batch(
        "zfs.txg.sync",
        starts,
        starts + 150 * MS,
        {
            "pool": np.array(["tank"] * len(starts), dtype=object),
            "txg": np.arange(len(starts), dtype=np.float64),
            "dirty": np.full(len(starts), np.nan),
        },
    )
    return disk, sync


def _run(disk: Batch, sync: Batch, cuts: list[int]) -> list[bytes]:
    """Push both streams in emission order, cut at the given times, advancing at each cut."""
    ev = Evaluator(PLAN)
    out = []
    bounds = [*sorted(set(cuts)), 2**62]
    lo = -1
    for hi in bounds:
        for b in (disk, sync):
            e = b.emit
            sel = (e > lo) & (e <= hi)
            if sel.any():
                ev.push(b.take(sel))
        if hi < 2**62:
            out.extend(ev.advance(hi))
        lo = hi
    out.extend(ev.finish())
    return [f.to_json() for f in out]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(0, 21 * S), max_size=30))
def test_same_findings_whatever_the_batching(seed: int, cuts: list[int]) -> None:
    disk, sync = _events(seed)
    # A replay's watermark never passes the last event (then finish() takes over).
    last = max(int(disk.emit.max()), int(sync.emit.max()))
    one = _run(disk, sync, [])
    many = _run(disk, sync, [c for c in cuts if c <= last])
    assert one == many
