"""Overload: a producer far faster than the drain, into a tiny ring.

Losses must be counted (none hidden: received + lost == produced), published as
`lost` events, and the event loop must stay responsive while the drain struggles.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import anyio
import numpy as np

from engine.batch import Batch
from probes.drain import BccProbeSource, ProbeSpec

from .conftest import collect, joined, needs_bpf

BPF_C = r"""
BPF_PERCPU_ARRAY(th_hits, u64, 1);
struct hit { u64 ts; u64 id; u64 a; u64 b; };
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_TGID)
        return 0;
    int zero = 0;
    u64 *n = th_hits.lookup(&zero);
    if (n)
        (*n)++;
    struct hit h = {};
    h.ts = bpf_ktime_get_ns();
    h.id = args->id;
    th_submit(args, &h, sizeof(h));
    return 0;
}
"""

PAYLOAD = np.dtype([("ts", np.uint64), ("id", np.uint64), ("a", np.uint64), ("b", np.uint64)])

HAMMER = (
    "import os, sys, time\n"
    "sys.stdin.readline()\n"
    "t = time.monotonic() + 1.5\n"
    "while time.monotonic() < t:\n"
    "    for _ in range(1000): os.getppid()\n"
)


def _decode(p: np.ndarray) -> Batch:
    """Test samples dressed as a catalog stream (the drain needs one), not real runq data."""
    n = p.shape[0]
    return Batch(
        "sched.runq",
        p["ts"].astype(np.int64),
        None,
        {
            "pid": np.zeros(n),
            "comm": np.full(n, "hammer", dtype=object),
            "cpu": np.zeros(n),
            "latency": p["id"].astype(np.float64),
        },
    )


@needs_bpf
async def test_overload_counts_losses_and_keeps_loop_responsive(tmp_path: Path) -> None:
    src_file = tmp_path / "hammer.bpf.c"
    src_file.write_text(BPF_C)
    hammer = subprocess.Popen([sys.executable, "-c", HAMMER], stdin=subprocess.PIPE, text=True)
    try:
        spec = ProbeSpec(
            name="hammer",
            stream="sched.runq",
            bpf=src_file,
            payload=PAYLOAD,
            decode=_decode,
            cflags=(f"-DTARGET_TGID={hammer.pid}",),
            pages=1,
        )
        src = BccProbeSource(spec, {"sweep": 0.005})
        lags: list[float] = []
        hits: list[int] = []

        async def ticker() -> None:
            while True:
                t0 = time.monotonic()
                await anyio.sleep(0.01)
                lags.append(time.monotonic() - t0 - 0.01)

        async def work() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(ticker)
                assert hammer.stdin is not None
                hammer.stdin.write("go\n")
                hammer.stdin.flush()
                await anyio.to_thread.run_sync(hammer.wait)
                await anyio.sleep(0.3)  # the sweeper drains the rest and reads the counters
                hits.append(src.counter("th_hits"))
                tg.cancel_scope.cancel()

        got = await collect(src, work)
    finally:
        hammer.kill()
        hammer.wait()
    received = len(joined(got, "sched.runq"))
    lost_events = joined(got, "lost")
    published = int(lost_events.columns["count"].sum()) if len(lost_events) else 0
    p90 = sorted(lags)[int(len(lags) * 0.9)]
    print(f"hits {hits[0]} received {received} lost {published}")
    print(f"loop lag max {max(lags) * 1e3:.1f}ms p90 {p90 * 1e3:.1f}ms")
    assert hits[0] > 100_000, "the hammer must produce a heavy load"
    assert published > 0, "an overloaded tiny ring must report losses"
    assert set(lost_events.columns["probe"]) == {"hammer"}
    assert published == src.stats()["lost"]
    assert received + published == hits[0], "every sample is either received or counted lost"
    assert received > 0
    assert max(lags) < 0.5, f"event loop lag {max(lags):.3f}s while draining"
