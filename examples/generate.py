"""Regenerates the example incident traces (deterministic: fixed seeds, gzip mtime 0).

    .venv/bin/python examples/generate.py

Each incident folder holds its trace, its rules and a `*.test.toml` that
`tracehound test examples/` runs.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
MS = 1_000_000
S = 1_000_000_000

Event = dict[str, object]


def write(path: Path, events: list[Event]) -> None:
    """Sorted by emission time, as `tracehound record` writes them."""
    events.sort(key=lambda e: int(e.get("end", e["ts"])))  # type: ignore[call-overload]
    lines = [json.dumps(e, separators=(",", ":")) for e in events]
    data = ("\n".join(lines) + "\n").encode()
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(data)
    print(f"{path.relative_to(HERE)}: {len(events)} events, {path.stat().st_size} bytes")


def disk_io(
    rnd: random.Random,
    t0: int,
    t1: int,
    rate: float,
    dev: str,
    slow: list[tuple[int, int]],
    slow_lat: tuple[float, float],
    fast_mu: float = 10.3,
) -> Iterator[Event]:
    """Poisson I/O; inside a `slow` interval the latency is uniform in slow_lat (ns)."""
    t = t0
    while True:
        t += int(rnd.expovariate(rate) * S)
        if t >= t1:
            return
        if any(a <= t <= b for a, b in slow):
            lat = int(rnd.uniform(*slow_lat))
        else:
            lat = int(min(rnd.lognormvariate(fast_mu, 0.5), 400_000))
        op = "write" if rnd.random() < 0.7 else "read"
        yield {
            "ts": t,
            "stream": "disk.io",
            "dev": dev,
            "op": op,
            "bytes": 4096 * rnd.choice((1, 2, 8, 32)),
            "latency": lat,
            "queue": int(lat * rnd.uniform(0.05, 0.3)),
            "pid": rnd.choice((411, 2210, 2211)),
            "comm": rnd.choice(("z_wr_iss", "postgres")),
        }


def zfs_txg() -> None:
    """(a) p99 write latency spikes around ZFS TXG syncs on pool tank."""
    rnd = random.Random(8812)
    events: list[Event] = []
    txg = 8810
    slow = []
    for k in range(4):  # tank syncs every 30s, ~190ms each, flushing ~1.5GiB
        ts = 5 * S + k * 30 * S
        end = ts + int(rnd.uniform(178, 201) * MS)
        slow.append((ts, end))
        events.append(
            {
                "ts": ts,
                "stream": "zfs.txg.sync",
                "end": end,
                "pool": "tank",
                "txg": txg,
                "dirty": int(rnd.uniform(1.2, 1.8) * 2**30),
            }
        )
        txg += 1
    for k in range(24):  # rpool: small syncs every 5s, 2.5s away from tank's
        ts = int(2.5 * S) + k * 5 * S
        events.append(
            {
                "ts": ts,
                "stream": "zfs.txg.sync",
                "end": ts + int(rnd.uniform(20, 40) * MS),
                "pool": "rpool",
                "txg": 120400 + k,
                "dirty": int(rnd.uniform(5, 30) * 2**20),
            }
        )
    events += disk_io(rnd, 0, 120 * S, 200.0, "sda", slow, (128_000, 2_047_000))
    write(HERE / "zfs-txg-latency" / "trace.jsonl.gz", events)


def memcg_oom() -> None:
    """(b) a cgroup leaking memory (~2MiB/s) until its 8GiB limit and the OOM kill."""
    rnd = random.Random(18234)
    events: list[Event] = []
    gib = 2**30
    leak = "/system.slice/myapp.service"
    batch = "/system.slice/batch.service"
    steady = "/system.slice/cache.service"
    for sec in range(601):
        t = sec * S + 13 * MS
        events.append(
            {
                "ts": t,
                "stream": "memcg",
                "cgroup": leak,
                "limit": 8 * gib,
                "usage": int(7.2 * gib + sec * 2.0 * 2**20 + rnd.uniform(-4, 4) * 2**20),
            }
        )
        events.append(
            {
                "ts": t + 1 * MS,
                "stream": "memcg",
                "cgroup": batch,
                "limit": 2 * gib,
                "usage": int(1.9 * gib + rnd.uniform(-8, 8) * 2**20),
            }
        )
        events.append(
            {
                "ts": t + 2 * MS,
                "stream": "memcg",
                "cgroup": steady,
                "usage": int(3 * gib + rnd.uniform(-16, 16) * 2**20),
            }
        )
    # batch.service: one allocation burst kills it with no growth before (not a leak)
    events.append(
        {
            "ts": 300 * S + 500 * MS,
            "stream": "oom.kill",
            "pid": 7001,
            "comm": "sort",
            "cgroup": batch,
            "constraint": "memcg",
            "rss": int(1.95 * gib),
        }
    )
    events.append(
        {
            "ts": 600 * S + 400 * MS,
            "stream": "oom.kill",
            "pid": 18234,
            "comm": "java",
            "cgroup": leak,
            "constraint": "memcg",
            "rss": 8 * gib - 2**20,
        }
    )
    write(HERE / "memcg-leak-oom" / "trace.jsonl.gz", events)


def periodic_jbd2() -> None:
    """(c) p99 spikes every ~30s, aligned with jbd2 journal commits (commit=30)."""
    rnd = random.Random(30)
    events: list[Event] = []
    slow = []
    for k in range(6):
        ts = 10 * S + k * 30 * S + int(rnd.uniform(-150, 150) * MS)
        end = ts + int(rnd.uniform(250, 400) * MS)
        slow.append((ts, end))
        events.append(
            {"ts": ts, "stream": "fs.commit", "end": end, "dev": "nvme0n1p2", "tid": 5530 + k}
        )
    t = 0
    while True:  # unrelated retransmits, every ~4s at random
        t += int(rnd.expovariate(0.25) * S)
        if t >= 190 * S:
            break
        events.append(
            {
                "ts": t,
                "stream": "tcp.retransmit",
                "saddr": "10.0.1.5",
                "daddr": "10.0.1.20",
                "sport": 5432,
                "dport": rnd.randint(30000, 60000),
                "state": "ESTABLISHED",
            }
        )
    events += disk_io(rnd, 0, 190 * S, 150.0, "nvme0n1", slow, (6 * MS, 20 * MS), fast_mu=10.8)
    write(HERE / "periodic-jbd2" / "trace.jsonl.gz", events)


if __name__ == "__main__":
    zfs_txg()
    memcg_oom()
    periodic_jbd2()
