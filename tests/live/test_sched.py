"""sched.runq from real contention: more runnable tasks than CPUs make waits longer."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import anyio
import numpy as np
import pytest

from probes import sched_runq

from .conftest import RAW_VARIANTS, collect, joined, needs_bpf

SPIN = "import time\nt = time.time() + 1.5\nwhile time.time() < t: pass\n"


@needs_bpf
@pytest.mark.parametrize("raw", RAW_VARIANTS)
async def test_runq_latency_rises_under_contention(raw: bool) -> None:
    src = sched_runq.make_source(frozenset({"sched.runq"}), {"raw": raw})
    marks: dict[str, int] = {}
    pids: list[int] = []

    async def work() -> None:
        await anyio.sleep(0.5)  # an idle phase for the baseline
        marks["busy"] = time.monotonic_ns()
        n = 3 * (os.cpu_count() or 2)
        procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
        pids.extend(p.pid for p in procs)
        await anyio.to_thread.run_sync(lambda: [p.wait() for p in procs])
        marks["done"] = time.monotonic_ns()

    got = await collect(src, work)
    assert src.preferred == raw, "the raw wakeups load where the kernel has BTF"
    b = joined(got, "sched.runq")
    assert len(b) > 0
    lat = b.columns["latency"]
    assert np.all(lat >= 0)
    assert set(np.unique(b.columns["cpu"]).tolist()) <= set(range(os.cpu_count() or 1))
    busy = (b.ts >= marks["busy"]) & (b.ts <= marks["done"])
    spinners = busy & np.isin(b.columns["pid"], pids)
    assert spinners.sum() > 0, "the spinning processes must be seen switching in"
    idle = b.ts < marks["busy"]
    assert idle.sum() > 0
    # Three spinners per CPU wait whole time slices for each other: milliseconds,
    # against microseconds for a wakeup on an idle CPU.
    assert np.percentile(lat[spinners], 90) > np.percentile(lat[idle], 90)
    assert lat[spinners].max() > 1_000_000


@needs_bpf
async def test_min_latency_pushdown_filters_in_kernel() -> None:
    src = sched_runq.make_source(frozenset({"sched.runq"}), {"min_latency": 2_000_000})

    async def work() -> None:
        procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(6)]
        await anyio.to_thread.run_sync(lambda: [p.wait() for p in procs])

    got = await collect(src, work)
    b = joined(got, "sched.runq")
    assert len(b) > 0, "six spinners on few CPUs must wait more than 2ms at times"
    assert np.all(b.columns["latency"] >= 2_000_000)
