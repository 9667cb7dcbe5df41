"""Writes rules/tests/: for each built-in rule, a trace with a case that must fire
and a case that must not, and the `*.test.toml` that says so.

Run: .venv/bin/python tests/dsl/gen_library_tests.py   (deterministic output)
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "rules" / "tests"
MS = 1_000_000
S = 1_000_000_000

Event = dict[str, Any]


def disk(ts: float, dev: str, lat: float, op: str = "write", queue: float | None = None) -> Event:
    e: Event = {
        "ts": int(ts),
        "stream": "disk.io",
        "dev": dev,
        "op": op,
        "bytes": 4096,
        "latency": int(lat),
        "pid": 100,
        "comm": "app",
    }
    if queue is not None:
        e["queue"] = int(queue)
    return e


def every(start: float, stop: float, per_s: float) -> list[int]:
    step = S / per_s
    out, t = [], start
    while t < stop:
        out.append(int(t))
        t += step
    return out


def write(name: str, rules: str, events: list[Event], checks: str, comment: str) -> None:
    events.sort(key=lambda e: (e.get("end", e["ts"]), e["ts"]))
    with gzip.GzipFile(OUT / f"{name}.jsonl.gz", "wb", mtime=0) as fh:
        for e in events:
            fh.write(json.dumps(e, separators=(",", ":")).encode() + b"\n")
    (OUT / f"{name}.test.toml").write_text(
        f"# {comment}\n"
        f'name = "{name}"\nrules = ["../{rules}"]\ntrace = "{name}.jsonl.gz"\n\n{checks.strip()}\n'
    )


def expect(rule: str, **kw: Any) -> str:
    return _table("expect", rule, kw)


def expect_not(rule: str, **kw: Any) -> str:
    return _table("expect_not", rule, kw)


def _table(kind: str, rule: str, kw: dict[str, Any]) -> str:
    lines = [f"[[{kind}]]", f'rule = "{rule}"']
    for k, v in kw.items():
        if isinstance(v, dict):
            inner = ", ".join(f'{a} = "{b}"' for a, b in v.items())
            lines.append(f"{k} = {{ {inner} }}")
        elif isinstance(v, str):
            lines.append(f'{k} = "{v}"')
        else:
            lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n\n"


# ---- disk ----


def disk_latency_high() -> None:
    ev = [disk(t, "sda", 80 * MS) for t in every(0, 12 * S, 30)]
    ev += [disk(t, "sdb", 80 * MS) for t in every(0, 6 * S, 30)]
    write(
        "disk_latency_high",
        "disk.rules",
        ev,
        expect("disk_latency_high", key={"dev": "sda"}, count=1)
        + expect_not("disk_latency_high", key={"dev": "sdb"}),
        "sda: 80ms for 12s fires once; sdb: 80ms for only 6s does not",
    )


def disk_latency_regression() -> None:
    ev = []
    for dev, spike in (("sda", 10 * MS), ("sdb", 1.5 * MS)):
        ev += [disk(t, dev, 100_000) for t in every(0, 30 * S, 20)]
        ev += [disk(t, dev, spike) for t in every(30 * S, 31 * S, 60)]
    write(
        "disk_latency_regression",
        "disk.rules",
        ev,
        expect("disk_latency_regression", key={"dev": "sda"}, after="30s", before="32s")
        + expect_not("disk_latency_regression", key={"dev": "sdb"}),
        "a 100x jump on sda fires; sdb's jump stays under 2ms and does not",
    )


def disk_queueing() -> None:
    ev = [disk(t, "sda", MS, queue=20 * MS) for t in every(0, 10 * S, 20)]
    ev += [disk(t, "sdb", 15 * MS, queue=20 * MS) for t in every(0, 10 * S, 20)]
    write(
        "disk_queueing",
        "disk.rules",
        ev,
        expect("disk_queueing", key={"dev": "sda"})
        + expect_not("disk_queueing", key={"dev": "sdb"}),
        "sda waits 20x its service time in the queue; sdb's queue is no worse than service",
    )


def periodic_disk_spikes() -> None:
    for name, starts, fires in (
        ("periodic_disk_spikes", [10, 30, 50, 70, 90], True),
        ("periodic_disk_spikes_irregular", [10, 18, 45, 52, 90], False),
    ):
        ev = [disk(t, "sda", 100_000) for t in every(0, 100 * S, 50)]
        for s0 in starts:
            ev += [disk(t, "sda", 20 * MS) for t in every(s0 * S, s0 * S + 300 * MS, 100)]
            ev.append(
                {
                    "ts": s0 * S - 100 * MS,
                    "end": s0 * S + 400 * MS,
                    "stream": "fs.commit",
                    "dev": "sda1",
                    "tid": s0,
                }
            )
        for k in range(7):  # a candidate that does not line up
            ev.append(
                {
                    "ts": (7 + 13 * k) * S,
                    "end": (7 + 13 * k) * S + 100 * MS,
                    "stream": "zfs.txg.sync",
                    "pool": "tank",
                    "txg": k,
                }
            )
        if fires:
            checks = expect(
                "periodic_disk_spikes",
                count=1,
                period="20s",
                tolerance="1s",
                explain_top="fs.commit",
            )
            comment = "spikes every 20s with journal commits: fires once, explained by fs.commit"
        else:
            checks = expect_not("periodic_disk_spikes")
            comment = "spikes at irregular times: no period, no finding"
        write(name, "disk.rules", ev, checks, comment)


def jbd2_commit_stall() -> None:
    ev = [
        {"ts": 10 * S, "end": 10 * S + 500 * MS, "stream": "fs.commit", "dev": "sda1", "tid": 1},
        {"ts": 20 * S, "end": 20 * S + 500 * MS, "stream": "fs.commit", "dev": "sda1", "tid": 2},
    ]
    ev += [disk(t, "sda", 30 * MS) for t in every(10 * S, 10.5 * S, 40)]
    ev += [disk(t, "sda", MS) for t in every(20 * S, 20.5 * S, 40)]
    write(
        "jbd2_commit_stall",
        "disk.rules",
        ev,
        expect("jbd2_commit_stall", count=1, window=["10s", "10.5s"], tolerance="1ms"),
        "writes at 30ms during the first commit fire; 1ms writes during the second do not",
    )


# ---- zfs ----


def txg_sync_disk_stall() -> None:
    ev = [
        {"ts": 1 * S, "end": 1190 * MS, "stream": "zfs.txg.sync", "pool": "tank", "txg": 8812},
        {"ts": 5 * S, "end": 5200 * MS, "stream": "zfs.txg.sync", "pool": "tank", "txg": 8813},
    ]
    ev += [disk(t, "sda", 2.3 * MS) for t in every(1 * S, 1.1 * S, 100)]
    ev += [disk(t, "sda", 100_000) for t in every(5 * S, 5.1 * S, 100)]
    write(
        "txg_sync_disk_stall",
        "zfs.rules",
        ev,
        expect("txg_sync_disk_stall", count=1, window=["0.8s", "1.39s"], tolerance="1ms"),
        "slow I/O around TXG 8812 fires; fast I/O around TXG 8813 does not",
    )


def txg_sync_starves_reads() -> None:
    ev = []
    for dev in ("sda", "sdb"):
        ev += [disk(t, dev, 200_000, op="read") for t in every(0, 30 * S, 20)]
    ev.append({"ts": 20 * S, "end": 20500 * MS, "stream": "zfs.txg.sync", "pool": "tank", "txg": 1})
    ev += [disk(t, "sda", 5 * MS, op="read") for t in every(20.1 * S, 20.4 * S, 40)]
    ev += [disk(t, "sdb", 300_000, op="read") for t in every(20.1 * S, 20.4 * S, 40)]
    write(
        "txg_sync_starves_reads",
        "zfs.rules",
        ev,
        expect("txg_sync_starves_reads", key={"dev": "sda"}, count=1)
        + expect_not("txg_sync_starves_reads", key={"dev": "sdb"}),
        "reads on sda go from 200us to 5ms during the sync; sdb's barely move",
    )


def txg_large_dirty_sync() -> None:
    ev = [
        {
            "ts": 10 * S,
            "end": 11 * S,
            "stream": "zfs.txg.sync",
            "pool": "tank",
            "txg": 1,
            "dirty": 2 * 1024**3,
        },
        {
            "ts": 10 * S,
            "end": 11 * S,
            "stream": "zfs.txg.sync",
            "pool": "rpool",
            "txg": 1,
            "dirty": 100 * 1024**2,
        },
    ]
    write(
        "txg_large_dirty_sync",
        "zfs.rules",
        ev,
        expect("txg_large_dirty_sync", key={"pool": "tank"}, count=1)
        + expect_not("txg_large_dirty_sync", key={"pool": "rpool"}),
        "a 2GiB TXG on tank fires; a 100MiB one on rpool does not",
    )


# ---- memory ----


def memcg_series(
    cgroup: str, start: float, slope: float, seconds: int, limit: int | None = None
) -> list[Event]:
    out = []
    for k in range(seconds):
        e: Event = {
            "ts": k * S,
            "stream": "memcg",
            "cgroup": cgroup,
            "usage": int(start + slope * k),
        }
        if limit is not None:
            e["limit"] = limit
        out.append(e)
    return out


def memcg_growth_before_oom() -> None:
    ev = memcg_series("/app", 100 * 1024**2, 2 * 1024**2, 120)
    ev += memcg_series("/db", 300 * 1024**2, 0, 120)
    for cg in ("/app", "/db"):
        ev.append(
            {
                "ts": 121 * S,
                "stream": "oom.kill",
                "pid": 7,
                "comm": "x",
                "cgroup": cg,
                "constraint": "memcg",
            }
        )
    write(
        "memcg_growth_before_oom",
        "memory.rules",
        ev,
        expect("memcg_growth_before_oom", key={"cgroup": "/app"}, severity="critical", count=1)
        + expect_not("memcg_growth_before_oom", key={"cgroup": "/db"}),
        "/app grew 2MiB/s before its OOM kill; /db was flat before its own",
    )


def memcg_heading_for_limit() -> None:
    gib = 1024**3
    ev = memcg_series("/app", 500 * 1024**2, 2 * 1024**2, 180, limit=gib)
    ev += memcg_series("/db", 200 * 1024**2, 0.1 * 1024**2, 180, limit=gib)
    write(
        "memcg_heading_for_limit",
        "memory.rules",
        ev,
        expect("memcg_heading_for_limit", key={"cgroup": "/app"}, count=1)
        + expect_not("memcg_heading_for_limit", key={"cgroup": "/db"}),
        "/app reaches its limit within 5 minutes at 2MiB/s; /db never does",
    )


def reclaim(ts: int) -> Event:
    return {"ts": ts, "end": ts + MS, "stream": "mm.reclaim", "pid": 9, "comm": "app"}


def direct_reclaim_stalls() -> None:
    ev = [reclaim(t) for t in every(0, 25 * S, 50)]
    ev += [reclaim(t) for t in every(90 * S, 130 * S, 20)]
    write(
        "direct_reclaim_stalls",
        "memory.rules",
        ev,
        expect("direct_reclaim_stalls", count=1, before="30s"),
        "1250 reclaims in 25s fire once; 20/s later (600 per 30s) does not",
    )


def reclaim_before_oom() -> None:
    ev = [reclaim(t) for t in every(10 * S, 50 * S, 5)]
    ev += [reclaim(t) for t in every(250 * S, 290 * S, 0.5)]
    for ts in (60 * S, 300 * S):
        ev.append(
            {
                "ts": ts,
                "stream": "oom.kill",
                "pid": 7,
                "comm": "x",
                "cgroup": "/app",
                "constraint": "global",
            }
        )
    write(
        "reclaim_before_oom",
        "memory.rules",
        ev,
        expect("reclaim_before_oom", count=1, at="60s", tolerance="1ms"),
        "200 reclaims before the first OOM kill fire; 20 before the second do not",
    )


def oom_kill() -> None:
    ev = [
        {
            "ts": 30 * S,
            "stream": "oom.kill",
            "pid": 7,
            "comm": "java",
            "cgroup": "/app",
            "constraint": "memcg",
            "rss": 900 * 1024**2,
        }
    ]
    ev += memcg_series("/db", 300 * 1024**2, 0, 60)
    write(
        "oom_kill",
        "memory.rules",
        ev,
        expect("oom_kill", key={"cgroup": "/app"}, severity="critical", count=1)
        + expect_not("oom_kill", key={"cgroup": "/db"}),
        "a kill in /app fires once; /db, sampled but never killed, does not",
    )


# ---- cpu ----


def runq(ts: int, comm: str, lat: float) -> Event:
    return {"ts": ts, "stream": "sched.runq", "pid": 1, "comm": comm, "cpu": 0, "latency": int(lat)}


def runq_latency_high() -> None:
    ev = [runq(t, "app", 20 * MS) for t in every(0, 15 * S, 200)]
    ev += [runq(t, "app", 2 * MS) for t in every(60 * S, 75 * S, 200)]
    write(
        "runq_latency_high",
        "cpu.rules",
        ev,
        expect("runq_latency_high", count=1, before="20s"),
        "20ms run-queue waits for 15s fire once; 2ms waits later do not",
    )


def runq_latency_per_task() -> None:
    ev = [runq(t, "postgres", MS) for t in every(0, 60 * S, 20)]
    ev += [runq(t, "postgres", 80 * MS) for t in every(60 * S, 65 * S, 20)]
    ev += [runq(t, "nginx", 60 * MS) for t in every(0, 65 * S, 20)]
    write(
        "runq_latency_per_task",
        "cpu.rules",
        ev,
        expect("runq_latency_per_task", key={"comm": "postgres"})
        + expect_not("runq_latency_per_task", key={"comm": "nginx"}),
        "postgres jumps from 1ms to 80ms; nginx is always at 60ms (no regression)",
    )


def kernel_threads_steal_cpu() -> None:
    ev = [runq(t, "qemu", 10 * MS) for t in every(0, 10 * S, 50)]
    ev += [runq(t, "khugepaged", MS) for t in every(0, 10 * S, 5)]
    ev += [runq(t, "qemu", 10 * MS) for t in every(60 * S, 70 * S, 50)]
    write(
        "kernel_threads_steal_cpu",
        "cpu.rules",
        ev,
        expect("kernel_threads_steal_cpu", count=1, before="15s"),
        "queueing with khugepaged running fires; the same queueing without it does not",
    )


def exec_storm() -> None:
    def ex(ts: int, comm: str) -> Event:
        return {
            "ts": ts,
            "stream": "proc.exec",
            "pid": 1000,
            "ppid": 1,
            "comm": comm,
            "filename": f"/usr/bin/{comm}",
        }

    ev = [ex(t, "sh") for t in every(0, 20 * S, 200)]
    ev += [ex(t, "make") for t in every(0, 20 * S, 50)]
    write(
        "exec_storm",
        "cpu.rules",
        ev,
        expect("exec_storm", key={"comm": "sh"}, count=1)
        + expect_not("exec_storm", key={"comm": "make"}),
        "200 execs/s of sh for 20s fire once; 50/s of make do not",
    )


# ---- network ----


def tcp_retransmit_storm() -> None:
    def rt(ts: int, daddr: str) -> Event:
        return {
            "ts": ts,
            "stream": "tcp.retransmit",
            "saddr": "10.0.0.1",
            "daddr": daddr,
            "sport": 40000,
            "dport": 5432,
            "state": "ESTABLISHED",
        }

    ev = [rt(t, "10.0.1.20") for t in every(0, 10 * S, 80)]
    ev += [rt(t, "10.0.2.100") for t in every(0, 10 * S, 1)]
    write(
        "tcp_retransmit_storm",
        "network.rules",
        ev,
        expect("tcp_retransmit_storm", key={"daddr": "10.0.1.20"}, count=1)
        + expect_not("tcp_retransmit_storm", key={"daddr": "10.0.2.100"}),
        "80 retransmits/s to 10.0.1.20 fire; 1/s to 10.0.2.100 does not",
    )


def net_drop_storm() -> None:
    def drop(ts: int, reason: str) -> Event:
        return {"ts": ts, "stream": "net.drop", "reason": reason, "protocol": 6}

    ev = [drop(t, "NO_SOCKET") for t in every(0, 12 * S, 1500)]
    ev += [drop(t, "TCP_CSUM") for t in every(0, 12 * S, 500)]
    write(
        "net_drop_storm",
        "network.rules",
        ev,
        expect("net_drop_storm", key={"reason": "NO_SOCKET"}, count=1)
        + expect_not("net_drop_storm", key={"reason": "TCP_CSUM"}),
        "1500 drops/s for 12s fire; 500/s do not",
    )


ALL: list[Callable[[], None]] = [
    disk_latency_high,
    disk_latency_regression,
    disk_queueing,
    periodic_disk_spikes,
    jbd2_commit_stall,
    txg_sync_disk_stall,
    txg_sync_starves_reads,
    txg_large_dirty_sync,
    memcg_growth_before_oom,
    memcg_heading_for_limit,
    direct_reclaim_stalls,
    reclaim_before_oom,
    oom_kill,
    runq_latency_high,
    runq_latency_per_task,
    kernel_threads_steal_cpu,
    exec_storm,
    tcp_retransmit_storm,
    net_drop_storm,
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for fn in ALL:
        fn()


if __name__ == "__main__":
    main()
