"""watch's evaluator input: batches overlapping in time (one per CPU ring) still give
the findings replay gives for the same events. No kernel needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.batch import Batch
from engine.dsl import compile_paths
from engine.dsl.plan import Plan
from engine.live import _InOrder
from engine.runtime.evaluator import Evaluator
from engine.tracefile import TraceWriter

MS = 1_000_000
T = 10_000 * MS


def _plan(tmp: Path) -> Plan:
    p = tmp / "w.rules"
    p.write_text("rule w\n  when count(disk.io) > 0 over 1s\n")
    return compile_paths([str(p)])


def _io(*ts: int) -> Batch:
    n = len(ts)
    return Batch(
        "disk.io",
        np.array(ts, dtype=np.int64),
        None,
        {
            "dev": np.array(["sda"] * n, dtype=object),
            "op": np.array(["write"] * n, dtype=object),
            "bytes": np.full(n, 4096.0),
            "latency": np.full(n, 1000.0),
            "pid": np.ones(n),
            "comm": np.array(["x"] * n, dtype=object),
            "queue": np.full(n, np.nan),
        },
    )


def _run(ev: object, steps: list[Batch | int]) -> list[tuple[int, tuple[int, int], float]]:
    out = []
    for x in steps:
        if isinstance(x, Batch):
            ev.push(x)  # type: ignore[attr-defined]
        else:
            out += ev.advance(x)  # type: ignore[attr-defined]
    out += ev.finish()  # type: ignore[attr-defined]
    return [(f.ts, f.window, f.values["count(disk.io)"]) for f in out]


def test_overlapping_batches_after_idle_fire_in_replays_window(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    # idle, then two samples straddling a step boundary arrive from two rings, the
    # later one first; neither is late (both above the watermark when pushed)
    a, b = T + 5099 * MS + 900_000, T + 5100 * MS + 100_000
    live: list[Batch | int] = [_io(T + 5 * MS), T + 6 * MS, _io(b), T + 5000 * MS, _io(a)]
    replay: list[Batch | int] = [_io(T + 5 * MS), T + 6 * MS, _io(a, b)]
    live.append(T + 5200 * MS)
    replay.append(T + 5200 * MS)
    want = _run(Evaluator(plan), replay)
    assert want[-1][0] == T + 5100 * MS
    assert _run(_InOrder(Evaluator(plan)), live) == want


def test_first_batch_not_earliest_starts_steps_as_replay(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    want = _run(Evaluator(plan), [_io(T + 95 * MS, T + 105 * MS), T + 300 * MS])
    live: list[Batch | int] = [_io(T + 105 * MS), _io(T + 95 * MS), T + 300 * MS]
    assert _run(_InOrder(Evaluator(plan)), live) == want


def test_events_wait_for_the_watermark_and_all_go_at_the_end(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    path = tmp_path / "t.jsonl"
    w = TraceWriter(path)
    ev = _InOrder(Evaluator(plan), w)
    ev.push(_io(T + 1 * MS, T + 3 * MS, T + 5 * MS))
    ev.advance(T + 3 * MS)
    assert w.events == 2  # at or below the watermark only
    ev.push(_io(T + 4 * MS))
    ev.finish()
    w.close()
    lines = path.read_text().splitlines()
    assert [int(x.split('"ts":')[1].split(",")[0]) for x in lines] == [
        T + 1 * MS, T + 3 * MS, T + 4 * MS, T + 5 * MS
    ]  # fmt: skip
