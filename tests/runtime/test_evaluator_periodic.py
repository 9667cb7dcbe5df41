"""Periodic episodes, explain ranking, and bounded memory under key churn."""

from __future__ import annotations

import numpy as np
from rt_helpers import MS, S, agg, batch, gt, plan, rule, within

from engine.batch import Batch
from engine.dsl.plan import ExplainSpec, PeriodicSpec
from engine.runtime import Evaluator
from engine.units import Kind

COUNT = agg("count", "disk.io", kind=Kind.NUMBER)


def burst(t: int) -> list[dict[str, int]]:
    return [{"ts": t + i * 10 * MS} for i in range(3)]


def test_periodic_fires_at_nth_steady_episode_with_period() -> None:
    r = rule(
        "p", gt(0, 0, Kind.NUMBER), [COUNT], over=100 * MS, periodic=PeriodicSpec(None, None, 3)
    )
    ev = Evaluator(plan(r))
    rows = [row for t in (10, 40, 70, 100) for row in burst(t * S)]
    ev.push(batch("disk.io", *rows))
    found = ev.finish()
    assert len(found) == 1
    f = found[0]
    assert f.ts == 70 * S and f.period == 30 * S
    assert f.episodes == [10 * S, 40 * S, 70 * S]
    assert f.summary == "count(disk.io) = 1 (> 0) over 100ms (recurring every 30s)"


def test_periodic_unsteady_spacing_does_not_fire() -> None:
    r = rule(
        "p", gt(0, 0, Kind.NUMBER), [COUNT], over=100 * MS, periodic=PeriodicSpec(None, None, 3)
    )
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", *[row for t in (10, 40, 90, 100) for row in burst(t * S)]))
    assert ev.finish() == []


def test_explain_ranks_aligned_stream_first() -> None:
    r = rule(
        "p",
        gt(0, 0, Kind.NUMBER),
        [COUNT],
        over=100 * MS,
        periodic=PeriodicSpec(None, None, 3),
        explain=ExplainSpec(("zfs.txg.sync", "fs.commit"), 1 * S),
    )
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", *[row for t in (10, 40, 70) for row in burst(t * S)]))
    ev.push(batch("fs.commit", {"ts": 25 * S, "end": 25 * S}, {"ts": 55 * S, "end": 55 * S}))
    ev.push(
        batch(
            "zfs.txg.sync",
            *({"ts": t * S - 200 * MS, "end": t * S - 100 * MS} for t in (10, 40, 70)),
        )
    )
    (f,) = ev.finish()
    assert f.explain is not None
    assert [e.stream for e in f.explain] == ["zfs.txg.sync", "fs.commit"]
    assert f.explain[0].support == 3 and f.explain[1].support == 0


def test_explain_for_trigger_rule_uses_finding_window_starts() -> None:
    r = rule(
        "t",
        gt(0, 0, Kind.NUMBER),
        [COUNT],
        correlation=within("oom.kill", 100 * MS),
        explain=ExplainSpec((), 1 * S),
    )
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", {"ts": 10 * S}, {"ts": 20 * S}))
    ev.push(batch("net.drop", {"ts": 10 * S}, {"ts": 20 * S}))
    ev.push(batch("oom.kill", {"ts": 10 * S}, {"ts": 20 * S}))
    found = ev.finish()
    last = found[-1]
    assert last.explain is not None
    streams = [e.stream for e in last.explain]
    assert "disk.io" not in streams and "net.drop" in streams
    assert next(e for e in last.explain if e.stream == "net.drop").support == 2


def _churn_batch(t0: int, n: int, step: int, first_pid: int) -> Batch:
    ts = t0 + np.arange(n, dtype=np.int64) * step
    pids = np.arange(first_pid, first_pid + n, dtype=np.float64)
    return Batch(
        "disk.io",
        ts,
        None,
        {
            "dev": np.array(["sda"] * n, dtype=object),
            "op": np.array(["write"] * n, dtype=object),
            "bytes": np.full(n, 4096.0),
            "latency": np.full(n, 1000.0),
            "queue": np.full(n, np.nan),
            "pid": pids,
            "comm": np.array(["x"] * n, dtype=object),
        },
    )


def test_memory_stays_bounded_under_key_churn() -> None:
    keyed = rule("k", gt(0, 0, Kind.NUMBER), [COUNT], over=1 * S, by=("pid",), cooldown=5 * S)
    trig = rule(
        "t", gt(0, 1000, Kind.NUMBER), [COUNT], correlation=within("oom.kill", 1 * S), by=("pid",)
    )
    ev = Evaluator(plan(keyed, trig), margin=10 * S)
    per_s = 100  # a new pid every 10ms, each seen once
    peak_rows = peak_keys = peak_runs = peak_states = fired = 0
    for sec in range(300):
        t0 = sec * S
        ev.push(_churn_batch(t0, per_s, S // per_s, sec * per_s))
        ev.push(batch("oom.kill", {"ts": t0 + 500 * MS, "pid": sec * per_s}))
        fired += len(ev.advance(t0 + S - 1))
        st = ev.stats()
        peak_states = max(peak_states, st["key_states"])
        peak_rows = max(peak_rows, st["rows_retained"])
        peak_keys = max(peak_keys, st["keys_alive"])
        peak_runs = max(peak_runs, st["run_states"])
    total = 300 * per_s
    # Retention is about baseline (60s) + margin (10s) + windows: ~75s of 100 events/s.
    assert peak_rows < 120 * per_s < total
    assert peak_keys < 120 * per_s
    assert peak_runs <= 2 * per_s
    assert fired >= total - per_s  # every pid fires once
    assert peak_states < 30 * per_s  # cooldowns are dropped once they can no longer apply
    assert ev.stats()["pending_triggers"] <= 2
