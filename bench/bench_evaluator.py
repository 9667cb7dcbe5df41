"""Runtime speed: generated workloads through the Evaluator; prints CPU time.

    .venv/bin/python bench/bench_evaluator.py [N_EVENTS] [SECONDS_OF_EVENT_TIME]
    .venv/bin/python bench/bench_evaluator.py --replay [--repeat N] [--profile]
    .venv/bin/python bench/bench_evaluator.py --idle [--repeat N] [--profile]

Default: 1M events over 100s of event time (10k events/s), a dozen rules, batches
of 100ms per stream pushed in emission order with an advance after each slice.

--replay: the runtime share of bench_replay.py: its trace (generated if missing)
decoded once up front, then only the pipeline after decoding (bus, clock,
evaluator, findings) is timed, with bench_replay's 12 rules.

--idle: what `watch` costs between bursts: bench_replay's rules, a trickle of
events (a few per second per stream) and an advance at every 100ms tick, as the
live timer does; prints CPU per tick.

Figures are process CPU time (the machine is shared: wall time is noisy), the
minimum over --repeat runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch
from engine.dsl import compile_text
from engine.runtime import Evaluator

RULES = """
rule txg_stall
  when p99(disk.io.latency) > 1ms
  within 200ms of zfs.txg.sync
  cooldown 1m
rule txg_writes_by_dev
  when p90(disk.io.latency where op == "write" and bytes >= 64KiB) > 2ms
  within 100ms of zfs.txg.sync where pool == "tank"
  by dev
rule jbd2_stall
  when max(disk.io.latency) > 20ms during fs.commit by dev
rule disk_p99_over
  when p99(disk.io.latency) > 5ms over 1s
rule disk_p99_vs_baseline
  when percentile(disk.io.latency where op == "read" over 1s, 99.9)
       > 5 * p50(disk.io.latency over 30s)
  over 1s
rule disk_busy_by_dev
  when count(disk.io) > 3000 and max(disk.io.queue) > 10ms
  over 1s by dev
rule disk_slow_for
  when avg(disk.io.latency) > 800us over 500ms for 2s
rule periodic_spikes
  when p99(disk.io.latency) > 4ms over 1s
  periodic at least 3 times
  explain by zfs.txg.sync, fs.commit
rule memcg_growth
  when growth(memcg.usage) > 1MiB/s
  before oom.kill within 60s
  by cgroup
rule memcg_predict
  when predict(memcg.usage over 30s, 5m) > 8GiB over 1s by cgroup
rule runq
  when p99(sched.runq.latency where comm matches "^postgres") > 10ms over 1s by cpu
rule drops
  when count(net.drop where reason in ("NO_SOCKET", "TCP_CSUM")) > 50 over 1s
"""

S = 1_000_000_000
MS = 1_000_000


def generate(n: int, seconds: int, seed: int = 1) -> list[tuple[list[Batch], int]]:
    """Slices of 100ms: the batches of each stream in it, and the slice's watermark."""
    rng = np.random.default_rng(seed)
    span = seconds * S
    shares = {"disk.io": 0.7, "sched.runq": 0.2, "net.drop": 0.06, "memcg": 0.04}
    streams: dict[str, Batch] = {}
    for name, share in shares.items():
        m = int(n * share)
        ts = np.sort(rng.integers(0, span, m)).astype(np.int64)
        cols: dict[str, np.ndarray] = {}
        if name == "disk.io":
            spike = (ts % (30 * S)) < 300 * MS  # a 30s periodic latency spike
            lat = rng.lognormal(11.5, 0.8, m) * np.where(spike, 20, 1)
            cols = {
                "dev": rng.choice(np.array(["sda", "sdb", "nvme0n1", "nvme1n1"], dtype=object), m),
                "op": rng.choice(np.array(["read", "write", "flush"], dtype=object), m),
                "bytes": rng.choice([4096.0, 65536.0, 131072.0], m),
                "latency": np.round(lat),
                "queue": np.where(rng.random(m) < 0.5, np.nan, rng.integers(0, 20 * MS, m)),
                "pid": rng.integers(1, 500, m).astype(np.float64),
                "comm": rng.choice(
                    np.array(["postgres", "z_wr_iss", "kworker/1"], dtype=object), m
                ),
            }
        elif name == "sched.runq":
            cols = {
                "pid": rng.integers(1, 2000, m).astype(np.float64),
                "comm": rng.choice(np.array(["postgres", "java", "kworker/0"], dtype=object), m),
                "cpu": rng.integers(0, 16, m).astype(np.float64),
                "latency": np.round(rng.lognormal(10, 1.5, m)),
            }
        elif name == "net.drop":
            cols = {
                "reason": rng.choice(np.array(["NO_SOCKET", "TCP_CSUM", "OTHER"], dtype=object), m),
                "protocol": np.full(m, 6.0),
            }
        elif name == "memcg":
            cg = rng.choice(
                np.array([f"/system.slice/s{i}.service" for i in range(40)], dtype=object), m
            )
            cols = {"cgroup": cg, "usage": 1e9 + ts / S * 2e6, "limit": np.full(m, 4e9)}
        streams[name] = Batch(name, ts, None, cols)
    # Interval and rare streams.
    syncs = np.arange(5 * S, span, 5 * S, dtype=np.int64)
    streams["zfs.txg.sync"] = Batch(
        "zfs.txg.sync",
        syncs,
        syncs + 190 * MS,
        {
            "pool": np.array(["tank"] * len(syncs), dtype=object),
            "txg": np.arange(len(syncs), dtype=np.float64),
            "dirty": np.full(len(syncs), np.nan),
        },
    )
    commits = np.arange(3 * S, span, 5 * S, dtype=np.int64)
    streams["fs.commit"] = Batch(
        "fs.commit",
        commits,
        commits + 40 * MS,
        {
            "dev": np.array(["sda"] * len(commits), dtype=object),
            "tid": np.arange(len(commits), dtype=np.float64),
        },
    )
    ooms = np.arange(50 * S, span, 50 * S, dtype=np.int64)
    streams["oom.kill"] = Batch(
        "oom.kill",
        ooms,
        None,
        {
            "pid": np.full(len(ooms), 7.0),
            "comm": np.array(["java"] * len(ooms), dtype=object),
            "cgroup": np.array(["/system.slice/s1.service"] * len(ooms), dtype=object),
            "constraint": np.array(["memcg"] * len(ooms), dtype=object),
            "rss": np.full(len(ooms), np.nan),
        },
    )
    out: list[tuple[list[Batch], int]] = []
    for lo in range(0, span, 100 * MS):
        part: list[Batch] = []
        for b in streams.values():
            e = b.emit
            i, j = np.searchsorted(e, lo, "left"), np.searchsorted(e, lo + 100 * MS, "left")
            if j > i:
                part.append(b.take(slice(i, j)))
        out.append((part, lo + 100 * MS - 1))
    return out


def _bench_replay_parts() -> tuple[Any, Path]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_replay

    path = Path("/tmp/tracehound-bench/trace-1200000.jsonl")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        bench_replay.generate(path, 1_200_000)
    return bench_replay, path


def _cpu(fn: Any, repeat: int, profile: bool) -> list[float]:
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    out = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return out


def replay(repeat: int, profile: bool) -> None:
    import anyio

    from engine.clock import ReplayClock
    from engine.pipeline import run_pipeline
    from engine.rulepaths import needed_streams
    from engine.sources import TraceSource

    bench_replay, path = _bench_replay_parts()
    plan = compile_text(bench_replay.RULES, "bench.rules")
    src = TraceSource([str(path)], interleave="slices", streams=needed_streams(plan))
    decoded = list(src.batches())
    events = sum(len(b) for b in decoded)

    class Source:
        name = "predecoded"
        streams = frozenset(b.stream for b in decoded)

        def __init__(self) -> None:
            # Fresh arrays per run: nothing cached on a column carries over.
            self.batches: list[Batch] | None = [
                Batch(
                    b.stream,
                    b.ts.copy(),
                    None if b.end is None else b.end.copy(),
                    {k: v.copy() for k, v in b.columns.items()},
                )
                for b in decoded
            ]

        async def run(self, emit: Any) -> None:
            batches, self.batches = self.batches, None
            assert batches is not None
            for b in batches:
                await emit(b)

        def progress(self) -> int | None:
            return None

        def stats(self) -> dict[str, int]:
            return {}

    class Count:
        n = 0

        async def send(self, finding: Any, notify: Any = None) -> None:
            self.n += 1

    found: list[int] = []
    fresh = [Source() for _ in range(repeat + int(profile))]  # copied before timing

    def run() -> None:
        sink = Count()
        anyio.run(run_pipeline, [fresh.pop()], plan, sink, ReplayClock())
        found.append(sink.n)

    times = _cpu(run, repeat, profile)
    best = min(times)
    print(f"{events} events in {len(decoded)} batches, {len(plan.rules)} rules")
    print(
        f"runtime after decoding: CPU min {best:.3f}s over {len(times)} runs "
        f"({events / best:,.0f} events/s), all {[round(t, 3) for t in times]}; "
        f"{found[0]} findings"
    )


def idle(repeat: int, profile: bool, seconds: int = 600) -> None:
    bench_replay, _ = _bench_replay_parts()
    plan = compile_text(bench_replay.RULES, "bench.rules")
    rng = np.random.default_rng(7)
    tick = 100 * MS
    per_tick: list[list[Batch]] = []
    for k in range(seconds * S // tick):
        lo = k * tick
        part = []
        if rng.random() < 0.3:  # a few disk requests per second
            m = int(rng.integers(1, 4))
            ts = np.sort(rng.integers(lo, lo + tick, m)).astype(np.int64)
            lat = np.round(rng.lognormal(10.5, 0.6, m))
            part.append(
                Batch(
                    "disk.io",
                    ts,
                    None,
                    {
                        "dev": rng.choice(np.array(["sda", "sdb"], dtype=object), m),
                        "op": rng.choice(np.array(["read", "write"], dtype=object), m),
                        "bytes": np.full(m, 4096.0),
                        "latency": lat,
                        "queue": lat // 10,
                        "pid": np.ones(m),
                        "comm": np.array(["postgres"] * m, dtype=object),
                    },
                )
            )
        if k % 10 == 0:  # memcg poller: once a second
            part.append(
                Batch(
                    "memcg",
                    np.array([lo], dtype=np.int64),
                    None,
                    {
                        "cgroup": np.array(["/system.slice/a.service"], dtype=object),
                        "usage": np.array([2.0**30]),
                        "limit": np.array([2.0**32]),
                    },
                )
            )
        per_tick.append(part)

    def run() -> None:
        ev = Evaluator(plan)
        for k, part in enumerate(per_tick):
            for b in part:
                ev.push(b)
            ev.advance((k + 1) * tick)

    times = _cpu(run, repeat, profile)
    best = min(times)
    ticks = len(per_tick)
    print(f"{ticks} ticks of 100ms, {len(plan.rules)} rules, a trickle of events")
    print(
        f"CPU min {best:.3f}s over {repeat} runs: {best / ticks * 1e6:,.0f} us per tick, "
        f"all {[round(t, 3) for t in times]}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=1_000_000)
    ap.add_argument("seconds", nargs="?", type=int, default=100)
    ap.add_argument("--replay", action="store_true")
    ap.add_argument("--idle", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if args.replay:
        replay(args.repeat, args.profile)
        return
    if args.idle:
        idle(args.repeat, args.profile)
        return
    plan = compile_text(RULES, "bench.rules")
    batches = generate(args.n, args.seconds)
    total = sum(len(b) for part, _ in batches for b in part)

    def run() -> tuple[Evaluator, int]:
        ev = Evaluator(plan)
        found = 0
        for part, wm in batches:
            for b in part:
                ev.push(b)
            found += len(ev.advance(wm))
        found += len(ev.finish())
        return ev, found

    times = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        ev, found = run()
        times.append(time.process_time() - t0)
    best = min(times)
    print(f"{total} events, {len(plan.rules)} rules, {args.seconds}s of event time")
    print(
        f"CPU min {best:.2f}s over {args.repeat} runs  {total / best:,.0f} events/s  "
        f"{found} findings"
    )
    print(ev.stats())


if __name__ == "__main__":
    main()
