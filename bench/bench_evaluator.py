"""Runtime speed: a generated multi-stream workload through Evaluator; prints events/s.

Run: .venv/bin/python bench/bench_evaluator.py [N_EVENTS] [SECONDS_OF_EVENT_TIME]
Default 1M events over 100s of event time (10k events/s), a dozen rules, batches of
100ms per stream pushed in emission order with an advance after each slice.
"""

from __future__ import annotations

import sys
import time

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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    plan = compile_text(RULES, "bench.rules")
    batches = generate(n, seconds)
    total = sum(len(b) for part, _ in batches for b in part)
    ev = Evaluator(plan)
    t0 = time.perf_counter()
    found = 0
    for part, wm in batches:
        for b in part:
            ev.push(b)
        found += len(ev.advance(wm))
    found += len(ev.finish())
    dt = time.perf_counter() - t0
    print(f"{total} events, {len(plan.rules)} rules, {seconds}s of event time")
    print(f"{dt:.2f}s  {total / dt:,.0f} events/s  {found} findings")
    print(ev.stats())


if __name__ == "__main__":
    main()
