"""A test instrument, not a probe: a synthetic sample load for the drain's tests and benches.

No rule can attach it (the registry in probes/__init__.py does not list it). It is
the one copy of what tests/live/test_loss.py and bench/bench_drain.py both need:

- `BPF_C`: raw_syscalls:sys_enter of ONE process (`-DTARGET_TGID=pid`), counting
  every hit in `th_hits` and sending a 32-byte sample (`PAYLOAD`) per syscall;
- `producer_cmd()`: that process, a getppid() loop at a set rate (C when a compiler
  exists, fast enough to overload any drain; else Python), started paused so the
  probe can attach first: `[*cmd, seconds, rate]` (rate 0: flat out), released by a
  line on stdin, printing `count elapsed` at the end;
- `drain_run()`: a BccProbeSource over it, run while the producer runs, returning
  what was produced, received and counted lost, the CPU it took and the event
  loop's lag (a ticker measures it every 10 ms); `output` picks the BPF ring
  buffer or the perf rings (default: the drain's own choice).

Samples are dressed as `sched.runq` (the drain needs a catalog stream): they are not
run-queue data.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from engine.batch import Batch

from .drain import BccProbeSource, ProbeSpec

__all__ = ["BPF_C", "PAYLOAD", "DrainRun", "decode", "drain_run", "producer_cmd", "spec"]

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

PRODUCER_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    double secs = atof(argv[1]); double rate = atof(argv[2]);  /* 0: flat out */
    getchar();
    double t0 = now(), el = 0; long n = 0;
    for (;;) {
        for (int i = 0; i < 64; i++) syscall(SYS_getppid);
        n += 64;
        el = now() - t0;
        if (el >= secs) break;
        while (rate > 0 && n > rate * el) el = now() - t0;
    }
    printf("%ld %.6f\n", n, el);
    return 0;
}
"""

PRODUCER_PY = (
    "import os, sys, time\n"
    "secs, rate = float(sys.argv[1]), float(sys.argv[2])\n"
    "sys.stdin.readline()\n"
    "t0 = time.monotonic(); n = 0\n"
    "while True:\n"
    "    for _ in range(64): os.getppid()\n"
    "    n += 64; el = time.monotonic() - t0\n"
    "    if el >= secs: break\n"
    "    while rate > 0 and n > rate * el: el = time.monotonic() - t0\n"
    "print(n, el)\n"
)


def decode(p: np.ndarray) -> Batch:
    n = p.shape[0]
    return Batch(
        "sched.runq",
        p["ts"].astype(np.int64),
        None,
        {
            "pid": np.zeros(n),
            "comm": np.full(n, "synthetic", dtype=object),
            "cpu": np.zeros(n),
            "latency": p["id"].astype(np.float64),
        },
    )


def producer_cmd(workdir: Path, compiled: bool = True) -> list[str]:
    """The producer's command (arguments to append: seconds, rate), built in `workdir`."""
    cc = (shutil.which("cc") or shutil.which("gcc")) if compiled else None
    if cc:
        exe = workdir / "th-synthetic"
        if not exe.exists():
            (workdir / "th-synthetic.c").write_text(PRODUCER_C)
            subprocess.run([cc, "-O2", "-o", str(exe), str(workdir / "th-synthetic.c")], check=True)
        return [str(exe)]
    return [sys.executable, "-c", PRODUCER_PY]


def spec(workdir: Path, tgid: int, pages: int = 256, name: str = "synthetic") -> ProbeSpec:
    """The probe's spec for producer process `tgid` (its C written into `workdir`)."""
    src = workdir / "th-synthetic.bpf.c"
    if not src.exists():
        src.write_text(BPF_C)
    return ProbeSpec(
        name, "sched.runq", src, PAYLOAD, decode, cflags=(f"-DTARGET_TGID={tgid}",), pages=pages
    )


@dataclass
class DrainRun:
    """What one drain_run saw. `hits` is the BPF side's count of samples it tried to
    send: each is either `received` or counted in `lost` (the `lost` events' sum)."""

    produced: int  # syscalls, as the producer counted them
    seconds: float  # the producer's running time
    hits: int
    received: int
    lost: int
    lost_probes: set[str] = field(default_factory=set)  # probe names on `lost` events
    cpu: float = 0.0  # this process's CPU seconds over the run
    lags: list[float] = field(default_factory=list)  # event-loop lag per 10 ms tick, s
    stats: dict[str, int] = field(default_factory=dict)  # the source's own stats()
    output: str = ""  # "ringbuf" or "perf": what the drain read
    bpf_ns: int = 0  # the program's run time while the producer ran (bpf_stats on)
    bpf_runs: int = 0  # its runs then: every syscall on the host, the hits among them

    def kernel_ns_per_hit(self) -> float:
        """In-kernel ns per sample sent, the other processes' filtered-out syscalls
        included (0 when kernel.bpf_stats_enabled is 0)."""
        return self.bpf_ns / self.hits if self.hits else 0.0

    def lag_max(self) -> float:
        return max(self.lags, default=0.0)


async def drain_run(
    workdir: Path,
    secs: float,
    rate: float = 0.0,
    *,
    pages: int = 256,
    options: dict[str, float] | None = None,
    settle: float = 0.3,
    compiled: bool = True,
    name: str = "synthetic",
    output: str | None = None,
) -> DrainRun:
    """Run the producer for `secs` at `rate` samples/s (0: flat out) under the drain.

    After the producer ends, the drain has `settle` seconds to read the rest and the
    loss counters before `th_hits` is read and the drain stopped.
    """
    proc = subprocess.Popen(
        [*producer_cmd(workdir, compiled), str(secs), str(rate)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        opts: dict[str, Any] = dict(options or {"sweep": 0.005})
        if output is not None:
            opts["output"] = output
        src = BccProbeSource(spec(workdir, proc.pid, pages, name), opts)
        src.open()
        run = DrainRun(0, 0.0, 0, 0, 0)

        async def emit(b: Batch) -> None:
            if b.stream == "lost":
                run.lost += int(b.columns["count"].sum())
                run.lost_probes.update(str(p) for p in b.columns["probe"])
            else:
                run.received += len(b)

        async def ticker() -> None:
            while True:
                t0 = time.monotonic()
                await anyio.sleep(0.01)
                run.lags.append(time.monotonic() - t0 - 0.01)

        cpu0 = time.process_time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(src.run, emit)
            tg.start_soon(ticker)
            assert proc.stdin is not None
            runs0, ns0 = src.program_stats()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            out, _ = await anyio.to_thread.run_sync(proc.communicate)
            runs1, ns1 = src.program_stats()
            run.bpf_runs, run.bpf_ns = runs1 - runs0, ns1 - ns0
            await anyio.sleep(settle)
            run.hits = src.counter("th_hits")
            tg.cancel_scope.cancel()
        run.cpu = time.process_time() - cpu0
        n, el = out.split()
        run.produced, run.seconds = int(n), float(el)
        run.stats = src.stats()
        run.output = src.output
        return run
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
