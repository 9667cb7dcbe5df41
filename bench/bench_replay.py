"""Replay throughput: a >= 1M-event multi-stream trace through the real pipeline.

    .venv/bin/python bench/bench_replay.py [--events N] [--interleave ordered|slices]
                                           [--repeat N]

Prints events/s for: decoding alone (TraceSource), the whole pipeline with a dozen
rules, and plain `json.loads` of the same lines, each by wall clock and by process
CPU time (steadier on a shared machine; with --repeat the least time of N runs),
with the ratio pipeline/json.loads (aim: >= 1). The trace is generated once and
cached under /tmp.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio

from engine.clock import ReplayClock
from engine.dsl import compile_text
from engine.findings import Finding
from engine.pipeline import run_pipeline
from engine.rulepaths import needed_streams
from engine.sources import TraceSource

MS = 1_000_000
S = 1_000_000_000
T = TypeVar("T")

RULES = """
define hot_write = op == "write" and bytes >= 64KiB

rule txg_stall "p99 around TXG syncs"
  when p99(disk.io.latency) > 1ms within 200ms of zfs.txg.sync by pool cooldown 10s
rule commit_stall
  when p99(disk.io.latency where hot_write) > 2ms within 100ms of fs.commit by dev
rule disk_p99 when p99(disk.io.latency) > 5ms over 1s by dev cooldown 30s
rule disk_slow_for when p90(disk.io.latency) > 500us over 1s for 2s by dev
rule disk_rate when rate(disk.io where op == "read") > 20000/s over 1s
rule disk_bytes when sum(disk.io.bytes) > 2GiB over 1s
rule queue_vs_base
  when p99(disk.io.queue) > 5 * p50(disk.io.queue over 30s) over 1s cooldown 1m
rule runq when p99(sched.runq.latency) > 10ms over 1s by cpu cooldown 30s
rule runq_comm when max(sched.runq.latency where comm matches "^kworker") > 50ms over 1s
rule leak "memory growth before OOM"
  when growth(memcg.usage) > 1MiB/s before oom.kill within 5m by cgroup severity critical
rule retrans when count(tcp.retransmit) > 20 over 5s by daddr
rule periodic_p99
  when p99(disk.io.latency) > 3ms over 1s periodic at least 3 times explain by zfs.txg.sync
"""


def generate(path: Path, n: int, seed: int = 1) -> None:
    """Events in emission order (as `record` writes them): disk.io dominant."""
    rnd = random.Random(seed)
    duration = max(n // 10_000, 10) * S  # ~10k events/s
    out: list[tuple[int, str]] = []

    def add(e: dict[str, object]) -> None:
        out.append((int(e.get("end", e["ts"])), json.dumps(e, separators=(",", ":"))))  # type: ignore[call-overload]

    txgs = [(t, t + rnd.randint(50, 250) * MS) for t in range(2 * S, duration, 5 * S)]
    for i, (a, b) in enumerate(txgs):
        add({"ts": a, "stream": "zfs.txg.sync", "end": b, "pool": "tank", "txg": 8000 + i})
    for i, t in enumerate(range(3 * S, duration, 5 * S)):
        add({"ts": t, "stream": "fs.commit", "end": t + 30 * MS, "dev": "sdb1", "tid": i})
    for t in range(0, duration, S):
        for c in range(20):
            add(
                {
                    "ts": t + c * MS,
                    "stream": "memcg",
                    "cgroup": f"/system.slice/s{c}.service",
                    "usage": 2**30 + c * 2**20 + (t // S) * (2**21 if c == 3 else 0),
                    "limit": 4 * 2**30,
                }
            )
    add(
        {
            "ts": duration - S // 2,
            "stream": "oom.kill",
            "pid": 4242,
            "comm": "java",
            "cgroup": "/system.slice/s3.service",
            "constraint": "memcg",
        }
    )
    for _ in range(duration // (S // 5)):
        add(
            {
                "ts": rnd.randrange(duration),
                "stream": "tcp.retransmit",
                "saddr": "10.0.0.1",
                "daddr": f"10.0.0.{rnd.randint(2, 9)}",
                "sport": 443,
                "dport": rnd.randint(30000, 60000),
                "state": "ESTABLISHED",
            }
        )
    rest = n - len(out)
    runq = rest // 8
    for _ in range(runq):
        add(
            {
                "ts": rnd.randrange(duration),
                "stream": "sched.runq",
                "pid": rnd.randint(1, 5000),
                "comm": rnd.choice(("postgres", "kworker/0:1", "java")),
                "cpu": rnd.randint(0, 7),
                "latency": int(rnd.lognormvariate(10, 1)),
            }
        )
    devs = ("sda", "sdb", "nvme0n1")
    for _ in range(rest - runq):
        t = rnd.randrange(duration)
        slow = any(a <= t <= b for a, b in txgs[t // (5 * S) - 1 : t // (5 * S) + 1])
        lat = int(rnd.lognormvariate(13.5 if slow else 10.5, 0.6))
        add(
            {
                "ts": t,
                "stream": "disk.io",
                "dev": rnd.choice(devs),
                "op": "write" if rnd.random() < 0.6 else "read",
                "bytes": 4096 * rnd.choice((1, 2, 16, 32)),
                "latency": lat,
                "queue": lat // 10,
                "pid": rnd.randint(1, 5000),
                "comm": "postgres",
            }
        )
    out.sort(key=lambda x: x[0])
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for _, line in out))
    tmp.rename(path)


class _Count:
    def __init__(self) -> None:
        self.n = 0

    async def send(self, finding: Finding, notify: object = None) -> None:
        self.n += 1


def _timed(fn: Callable[[], T], repeat: int) -> tuple[T, float, float]:
    """fn's result, and the least wall-clock and process CPU seconds over `repeat` runs
    (CPU time is the steadier figure on a shared machine)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        cpu = min(cpu, time.process_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return out, wall, cpu


def _rates(n: int, wall: float, cpu: float, unit: str) -> str:
    return f"{n / wall:>12,.0f} {unit}/s wall, {n / cpu:>12,.0f} {unit}/s CPU"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_200_000)
    ap.add_argument("--interleave", choices=["ordered", "slices"], default="slices")
    ap.add_argument(
        "--run-size", type=int, default=1 << 20, help="events decoded in memory at most"
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the least time counts")
    args = ap.parse_args()
    path = Path(f"/tmp/tracehound-bench/trace-{args.events}.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, args.events)
        print(f"generated {path} in {time.perf_counter() - t0:.1f}s")
    size = path.stat().st_size
    plan = compile_text(RULES, "bench.rules")
    print(f"trace: {path} ({size / 2**20:.0f} MiB), {len(plan.rules)} rules")

    def loads() -> int:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip() and json.loads(line))

    lines, json_wall, json_cpu = _timed(loads, args.repeat)
    print(f"json.loads per line:      {_rates(lines, json_wall, json_cpu, 'lines')}")

    def decode() -> tuple[int, TraceSource]:
        src = TraceSource([str(path)], interleave=args.interleave, run_size=args.run_size)
        return sum(1 for _ in src.batches()), src

    (batches, src), wall, cpu = _timed(decode, args.repeat)
    mode = "in memory" if src.stats()["passes"] == 1 else "streamed, 2 passes"
    print(
        f"TraceSource decode+order: {_rates(lines, wall, cpu, 'events')} "
        f"({batches} batches, {mode})"
    )

    def pipeline() -> tuple[int, int]:
        src = TraceSource(
            [str(path)],
            interleave=args.interleave,
            streams=needed_streams(plan),
            run_size=args.run_size,
        )
        result = anyio.run(lambda: run_pipeline([src], plan, _Count(), ReplayClock()))
        return result.findings, src.stats()["batches"]

    (findings, batches), pipe_wall, pipe_cpu = _timed(pipeline, args.repeat)
    print(
        f"replay pipeline:          {_rates(lines, pipe_wall, pipe_cpu, 'events')} "
        f"({findings} findings, {batches} batches)"
    )
    print(
        f"ratio pipeline/json.loads: {json_wall / pipe_wall:.2f} "
        f"(wall clock; by CPU time {json_cpu / pipe_cpu:.2f})"
    )


if __name__ == "__main__":
    main()
