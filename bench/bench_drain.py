"""Drain throughput: synthetic samples (32 bytes) from a tracepoint into Batches.

Two consumers, same BPF program and driver (a C getppid loop at a set rate):
  direct  probes.drain (own BPF_OUTPUT perf events, mmap, one data_head snapshot per
          read, numpy bulk decode), woken at a byte watermark + 5 ms sweep;
  bcc     bcc's open_perf_buffer (wakeup_events=32) with a raw callback appending
          bytes to a list, decoded in bulk with np.frombuffer, woken by the reader
          fds + 5 ms sweep (lib.perf_reader_event_read reads until empty).
Prints events/s received, loss, consumer CPU ns/event and max event-loop lag.
Run as root: .venv/bin/python bench/bench_drain.py [seconds] [rates...]
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _driver import BPF_C, driver_cmd

from engine.batch import Batch
from probes import _bcc
from probes.drain import BccProbeSource, ProbeSpec

PAYLOAD = np.dtype([("ts", np.uint64), ("id", np.uint64), ("a", np.uint64), ("b", np.uint64)])
PAGES = 256


def decode(p: np.ndarray) -> Batch:
    n = p.shape[0]
    return Batch(
        "sched.runq",
        p["ts"].astype(np.int64),
        None,
        {
            "pid": np.zeros(n),
            "comm": np.full(n, "drv", dtype=object),
            "cpu": np.zeros(n),
            "latency": p["id"].astype(np.float64),
        },
    )


async def _ticker(lags: list[float]) -> None:
    while True:
        t0 = time.monotonic()
        await anyio.sleep(0.01)
        lags.append(time.monotonic() - t0 - 0.01)


async def _drive(proc: subprocess.Popen[str]) -> tuple[int, float]:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out, _ = await anyio.to_thread.run_sync(proc.communicate)
    n, el = out.split()
    return int(n), float(el)


async def run_direct(cmd: list[str], secs: float, rate: float, src_file: Path) -> dict[str, Any]:
    proc = subprocess.Popen([*cmd, str(secs), str(rate)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    spec = ProbeSpec("bench", "sched.runq", src_file, PAYLOAD, decode,
                     cflags=(f"-DTARGET_TGID={proc.pid}",), pages=PAGES)  # fmt: skip
    src = BccProbeSource(spec, {"sweep": 0.005})
    src.open()
    received = [0]
    lags: list[float] = []

    async def emit(b: Batch) -> None:
        if b.stream != "lost":
            received[0] += len(b)

    cpu0 = time.process_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(src.run, emit)
        tg.start_soon(_ticker, lags)
        n, el = await _drive(proc)
        await anyio.sleep(0.2)
        hits = src.counter("th_hits")
        tg.cancel_scope.cancel()
    cpu = time.process_time() - cpu0
    return _row("direct", n, el, hits, received[0], src.stats()["lost"], cpu, lags)


async def run_bcc(cmd: list[str], secs: float, rate: float, src_file: Path) -> dict[str, Any]:
    proc = subprocess.Popen([*cmd, str(secs), str(rate)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    prog = _bcc.Program(src_file, [f"-DTARGET_TGID={proc.pid}"])
    chunks: list[bytes] = []
    lost = [0]
    received = [0]

    def on_sample(cpu: int, data: int, size: int) -> None:
        chunks.append(ctypes.string_at(data, PAYLOAD.itemsize))  # size includes padding

    def on_lost(n: int) -> None:
        lost[0] += n

    table_readers = prog.open_bcc_buffer(on_sample, on_lost, PAGES, 32)

    def flush() -> None:
        if chunks:
            buf = b"".join(chunks)
            chunks.clear()
            p = np.frombuffer(buf, dtype=PAYLOAD)
            received[0] += len(decode(p))

    async def drain_fd(fd: int, reader: Any) -> None:
        while True:
            with anyio.move_on_after(0.005):
                await anyio.wait_readable(fd)
            prog.bcc_reader_read(reader)
            flush()

    lags: list[float] = []
    cpu0 = time.process_time()
    async with anyio.create_task_group() as tg:
        for fd, r in table_readers:
            tg.start_soon(drain_fd, fd, r)
        tg.start_soon(_ticker, lags)
        n, el = await _drive(proc)
        await anyio.sleep(0.2)
        hits = sum(prog.percpu_counter("th_hits"))
        in_bpf = sum(prog.percpu_counter())
        tg.cancel_scope.cancel()
    cpu = time.process_time() - cpu0
    prog.close()
    return _row("bcc", n, el, hits, received[0], max(in_bpf, lost[0]), cpu, lags)


def _row(name: str, n: int, el: float, hits: int, got: int, lost: int, cpu: float,
         lags: list[float]) -> dict[str, Any]:  # fmt: skip
    return {
        "reader": name,
        "offered/s": n / el,
        "received/s": got / el,
        "lost%": 100.0 * lost / max(hits, 1),
        "accounted": got + lost == hits,
        "cpu ns/event": cpu * 1e9 / max(got, 1),
        "max lag ms": 1e3 * max(lags, default=0.0),
    }


async def main() -> None:
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    rates = [float(r) for r in sys.argv[2:]] or [1e5, 3e5, 1e6, 0]
    cmd = driver_cmd()
    d = Path(tempfile.mkdtemp(prefix="th-bench-"))
    src_file = d / "bench.bpf.c"
    src_file.write_text(BPF_C)
    print(f"{'reader':8} {'rate':>8} {'offered/s':>11} {'received/s':>11} {'lost%':>7} "
          f"{'ns/event':>9} {'lag ms':>7} accounted")  # fmt: skip
    for rate in rates:
        for run in (run_direct, run_bcc):
            r = await run(cmd, secs, rate, src_file)
            label = "max" if rate == 0 else f"{rate:.0e}"
            print(f"{r['reader']:8} {label:>8} {r['offered/s']:11.0f} {r['received/s']:11.0f} "
                  f"{r['lost%']:7.2f} {r['cpu ns/event']:9.0f} {r['max lag ms']:7.1f} "
                  f"{r['accounted']}", flush=True)  # fmt: skip


if __name__ == "__main__":
    anyio.run(main)
