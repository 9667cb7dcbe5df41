"""Drain throughput: synthetic samples (32 bytes) from a tracepoint into Batches.

Three consumers, same load (probes/synthetic.py: its BPF program and a C getppid
loop at a set rate, the instrument tests/live/test_loss.py uses too):
  ringbuf probes.drain over the BPF ring buffer (one ring for all CPUs, mmapped,
          one producer_pos snapshot per read, numpy bulk decode), woken at each
          quarter of the ring + 5 ms sweep (synthetic.drain_run, output ringbuf);
  perf    probes.drain over its own BPF_OUTPUT perf events (one ring per CPU, mmap,
          one data_head snapshot per read), woken at a byte watermark + 5 ms sweep
          (output perf: the fallback for kernels before 5.8);
  bcc     bcc's open_perf_buffer (wakeup_events=32) with a raw callback appending
          bytes to a list, decoded in bulk with np.frombuffer, woken by the reader
          fds + 5 ms sweep (lib.perf_reader_event_read reads until empty).
Prints events/s offered and received, loss, the consumer's CPU (process_time) per
event, max event-loop lag, whether received + lost == the BPF side's hits, and for
the drain's rows the probe's in-kernel ns per sample (bpf_stats run_time_ns over
the hits; needs kernel.bpf_stats_enabled=1, else "-"). The
host is shared and noisy: rerun and compare the minimum ns/event.
A rate of 0 is flat out: the producer's own speed then depends on the output's
in-kernel cost (the ring buffer's is lower), so compare the rows at a set rate.
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

from probes import _bcc, synthetic

PAGES = 256


async def _ticker(lags: list[float]) -> None:
    while True:
        t0 = time.monotonic()
        await anyio.sleep(0.01)
        lags.append(time.monotonic() - t0 - 0.01)


async def _run_drain(output: str, workdir: Path, secs: float, rate: float) -> dict[str, Any]:
    r = await synthetic.drain_run(
        workdir, secs, rate, pages=PAGES, options={"sweep": 0.005}, settle=0.2, output=output
    )
    row = _row(output, r.produced, r.seconds, r.hits, r.received, r.lost, r.cpu, r.lags)
    row["kernel ns/hit"] = r.kernel_ns_per_hit()
    return row


async def run_ringbuf(workdir: Path, secs: float, rate: float) -> dict[str, Any]:
    return await _run_drain("ringbuf", workdir, secs, rate)


async def run_perf(workdir: Path, secs: float, rate: float) -> dict[str, Any]:
    return await _run_drain("perf", workdir, secs, rate)


async def run_bcc(workdir: Path, secs: float, rate: float) -> dict[str, Any]:
    cmd = synthetic.producer_cmd(workdir)
    proc = subprocess.Popen([*cmd, str(secs), str(rate)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    src = synthetic.spec(workdir, proc.pid, PAGES)
    prog = _bcc.Program(src.bpf, src.cflags)  # no output cflags: the perf rings
    chunks: list[bytes] = []
    lost = [0]
    received = [0]
    size = synthetic.PAYLOAD.itemsize

    def on_sample(cpu: int, data: int, nbytes: int) -> None:
        chunks.append(ctypes.string_at(data, size))  # nbytes includes padding

    def on_lost(n: int) -> None:
        lost[0] += n

    table_readers = prog.open_bcc_buffer(on_sample, on_lost, PAGES, 32)

    def flush() -> None:
        if chunks:
            buf = b"".join(chunks)
            chunks.clear()
            p = np.frombuffer(buf, dtype=synthetic.PAYLOAD)
            received[0] += len(synthetic.decode(p))

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
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = await anyio.to_thread.run_sync(proc.communicate)
        await anyio.sleep(0.2)
        hits = sum(prog.percpu_counter("th_hits"))
        in_bpf = sum(prog.percpu_counter())
        tg.cancel_scope.cancel()
    cpu = time.process_time() - cpu0
    prog.close()
    n, el = out.split()
    return _row("bcc", int(n), float(el), hits, received[0], max(in_bpf, lost[0]), cpu, lags)


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


def _kern(row: dict[str, Any]) -> str:
    ns = row.get("kernel ns/hit", 0.0)
    return f"{ns:.0f}" if ns else "-"


async def main() -> None:
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    rates = [float(r) for r in sys.argv[2:]] or [1e5, 3e5, 1e6, 0]
    with tempfile.TemporaryDirectory(prefix="th-bench-") as d:
        workdir = Path(d)
        print(f"{'reader':8} {'rate':>8} {'offered/s':>11} {'received/s':>11} {'lost%':>7} "
              f"{'ns/event':>9} {'lag ms':>7} {'kern ns':>7} accounted")  # fmt: skip
        runs = (run_ringbuf, run_perf, run_bcc) if _bcc.ringbuf_supported() else (run_perf, run_bcc)
        for rate in rates:
            for run in runs:
                r = await run(workdir, secs, rate)
                label = "max" if rate == 0 else f"{rate:.0e}"
                print(f"{r['reader']:8} {label:>8} {r['offered/s']:11.0f} "
                      f"{r['received/s']:11.0f} {r['lost%']:7.2f} {r['cpu ns/event']:9.0f} "
                      f"{r['max lag ms']:7.1f} {_kern(r):>7} {r['accounted']}",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    anyio.run(main)
