"""Memory of the runtime under a steady, known load: the rule library over simulated time.

bench_memory.py measures the real `tracehound watch`, whose probes see the whole
host: on a shared machine the event rates (and so the memory) follow whatever
else runs. This one feeds the runtime (the whole rule library, as `watch` builds
it) a synthetic load at fixed rates, about what bench_memory's own load gives on
a quiet host: sched.runq 3.3k/s (60 commands), disk.io 300/s (3 devices),
fs.commit 70/s, proc.exec 20/s, memcg 7 cgroups/s; in 100 ms batches, the
watermark following. At each simulated minute it prints the process RSS, what
the runtime's history buffers hold and what the long-window percentile sketches
hold (runtime/sketch.py: the 10m and 5m medians keep per-tick histograms, not
rows), so one sees the windows fill (the longest reaches back 11.5 minutes) and
then stay flat.

    .venv/bin/python bench/bench_memory_sim.py [--minutes M] [--runq-rate R] [--disk-rate R]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_memory import _slope  # bench/ is on sys.path when run as a script

from engine.batch import Batch
from engine.config import parse_config
from engine.live import _after_compile, _trim_heap
from engine.rulepaths import load_plan
from engine.runtime.evaluator import Evaluator

S = 1_000_000_000
STEP = S // 10


def _rss_mb() -> tuple[float, float]:
    got = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon"):
            got[k] = int(v.split()[0]) / 1024
    return got.get("VmRSS", 0.0), got.get("RssAnon", 0.0)


class Load:
    """Batches of each stream for one 100 ms step."""

    def __init__(self, runq_rate: float, seed: int = 1, disk_rate: float = 300.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.comms = np.array([f"task{i}" for i in range(60)], dtype=object)
        self.devs = np.array(["sda", "sdb", "loop0"], dtype=object)
        self.cgroups = np.array([f"/sys/fs/cgroup/app{i}" for i in range(7)], dtype=object)
        self.rates = {"sched.runq": runq_rate, "disk.io": disk_rate, "fs.commit": 70.0}
        self.rates |= {"proc.exec": 20.0}

    def _n(self, stream: str) -> int:
        return int(self.rng.poisson(self.rates[stream] * STEP / S))

    def _ts(self, t: int, n: int) -> np.ndarray:
        return np.sort(t + self.rng.integers(0, STEP, n)).astype(np.int64)

    def step(self, t: int) -> list[Batch]:
        """Events with ts in [t, t + STEP)."""
        r = self.rng
        out = []
        n = self._n("sched.runq")
        out.append(
            Batch(
                "sched.runq",
                self._ts(t, n),
                None,
                {
                    "pid": r.integers(1, 5000, n).astype(np.float64),
                    "comm": self.comms[r.zipf(1.5, n) % 60],
                    "cpu": r.integers(0, 2, n).astype(np.float64),
                    "latency": np.floor(r.lognormal(11, 1.5, n)),
                },
            )
        )
        n = self._n("disk.io")
        out.append(
            Batch(
                "disk.io",
                self._ts(t, n),
                None,
                {
                    "dev": self.devs[r.integers(0, 3, n)],
                    "op": np.array(["read", "write"], dtype=object)[r.integers(0, 2, n)],
                    "bytes": (4096 * r.integers(1, 64, n)).astype(np.float64),
                    "latency": np.floor(r.lognormal(12, 1, n)),
                    "queue": np.floor(r.lognormal(9, 1, n)),
                    "pid": r.integers(1, 5000, n).astype(np.float64),
                    "comm": self.comms[r.integers(0, 60, n)],
                },
            )
        )
        n = self._n("fs.commit")
        start = self._ts(t - STEP, n)
        out.append(
            Batch(
                "fs.commit",
                start,
                start + STEP,
                {
                    "dev": self.devs[r.integers(0, 3, n)],
                    "tid": r.integers(1, 10**6, n).astype(np.float64),
                },
            )
        )
        n = self._n("proc.exec")
        out.append(
            Batch(
                "proc.exec",
                self._ts(t, n),
                None,
                {
                    "pid": r.integers(1, 5000, n).astype(np.float64),
                    "ppid": r.integers(1, 5000, n).astype(np.float64),
                    "comm": self.comms[r.integers(0, 5, n)],
                    "filename": np.full(n, "/bin/true", dtype=object),
                },
            )
        )
        if t % S == 0:
            out.append(
                Batch(
                    "memcg",
                    np.full(7, t, dtype=np.int64),
                    None,
                    {
                        "cgroup": self.cgroups,
                        "usage": np.full(7, 1e8) + t / S * 1000,
                        "limit": np.full(7, 1e9),
                    },
                )
            )
        return [b for b in out if len(b)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0, help="simulated minutes (15)")
    ap.add_argument("--runq-rate", type=float, default=3300.0, help="sched.runq events/s")
    ap.add_argument("--disk-rate", type=float, default=300.0, help="disk.io events/s")
    args = ap.parse_args()
    plan = load_plan(None, parse_config(""))
    ev = Evaluator(plan)
    load = Load(args.runq_rate, disk_rate=args.disk_rate)
    _after_compile()  # the heap settings `watch` runs with (no compiler here)
    t0 = 1_000 * S
    steps = int(args.minutes * 60 * S / STEP)
    xs: list[float] = []
    ys: list[float] = []
    head = f"{'sim min':>7} {'RSS MB':>7} {'anon MB':>7} {'history MB':>10} {'rows':>9}"
    print(f"{head} {'sketch MB':>9} {'CPU s':>6}")
    c0 = time.process_time()
    findings = 0
    for i in range(steps + 1):
        t = t0 + i * STEP
        for b in load.step(t):
            ev.push(b)
        findings += len(ev.advance(t + STEP))
        if i % 600 == 0:
            if i % 3000 == 0:
                _trim_heap()  # as `watch` does every 30 s
            stores = [st.history for st in ev._stores.values() if st.history is not None]
            hist = sum(h.nbytes for h in stores) / 1e6
            rows = sum(len(h) for h in stores)
            sketch = sum(getattr(rs.scope, "sketch_bytes", 0) for rs in ev._rules) / 1e6
            rss, anon = _rss_mb()
            xs.append(i * STEP / S / 60)
            ys.append(rss)
            cpu = time.process_time() - c0
            line = f"{xs[-1]:7.1f} {rss:7.1f} {anon:7.1f} {hist:10.1f} {rows:9d}"
            print(f"{line} {sketch:9.1f} {cpu:6.1f}")
    last5 = [k for k, x in enumerate(xs) if x >= xs[-1] - 5]
    print(
        f"RSS at 5 min {ys[min(5, len(ys) - 1)]:.1f} MB, 10 min {ys[min(10, len(ys) - 1)]:.1f} MB, "
        f"end {ys[-1]:.1f} MB; slope over the last 5 min "
        f"{_slope([xs[k] for k in last5], [ys[k] for k in last5]):+.3f} MB/min; "
        f"{findings} finding(s)"
    )


if __name__ == "__main__":
    main()
