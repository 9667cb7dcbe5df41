"""The async drain: a bcc probe's per-CPU perf rings into Batches, on the event loop.

One task per ring waits for its fd (the kernel wakes it at a byte watermark, so a
busy ring costs one wakeup per batch, not per event) and reads one bounded chunk;
one sweeper per probe reads every ring on a short timer so a lone event is not held
back, and turns lost-sample counts into `lost` events. Nothing here blocks: bcc
compiles in `open()`, before the loop starts draining.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from engine.batch import Batch
from engine.errors import HostError
from engine.source import Emit

from .perf_ring import PerfRing

__all__ = ["BccProbeSource", "ProbeSpec"]

Decode = Callable[[np.ndarray], Batch]


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """What a probe module declares: its C, its sample layout and how to decode it."""

    name: str  # the probe, as `lost` events name it
    stream: str
    bpf: Path
    payload: np.dtype  # the C sample struct, field for field (align=True)
    decode: Decode  # payload records (in ring order) -> a Batch of `stream`
    cflags: tuple[str, ...] = ()
    pages: int = 64  # per CPU, a power of two
    wakeup_events: int = 0  # > 0: wake per N samples (rare streams) instead of a watermark
    tracepoints: tuple[str, ...] = field(default=())


def _options_cflags(options: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(f) for f in options.get("cflags", ()))


class BccProbeSource:
    """A Source over one bcc probe: open() compiles and attaches; run() drains."""

    def __init__(self, spec: ProbeSpec, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(options or {})
        self.spec = spec
        self.name = spec.name
        self.streams = frozenset({spec.stream, "lost"})
        self.sweep_s = float(opts.get("sweep", 0.01))
        self.lost_poll_s = float(opts.get("lost_poll", 0.1))
        self.pages = int(opts.get("pages", spec.pages))
        self.cflags = spec.cflags + _options_cflags(opts)
        self._per_sample = spec.wakeup_events == 1
        self._program: Any = None
        self._rings: list[PerfRing] = []
        self._locks: list[anyio.Lock] = []
        self._last_read: list[int] = []
        self._lost_seen: dict[int, int] = {}  # cpu -> lost samples already published
        self._lost_records: dict[int, int] = {}  # cpu -> from PERF_RECORD_LOST
        self._stats = {"events": 0, "lost": 0, "reads": 0, "bad": 0, "batches": 0}

    # ---- set-up ----

    def open(self) -> None:
        """Compile, attach and map the rings. Raises HostError with the fix."""
        if self._program is not None:
            return
        from . import _bcc

        program = _bcc.Program(self.spec.bpf, self.cflags)
        rings: list[PerfRing] = []
        try:
            for cpu in _bcc.online_cpus():
                if self.spec.wakeup_events > 0:
                    ring = PerfRing(
                        cpu, self.spec.payload, self.pages, wakeup_events=self.spec.wakeup_events
                    )
                else:
                    ring = PerfRing(
                        cpu, self.spec.payload, self.pages, wakeup_bytes=self.pages * 4096 // 4
                    )
                rings.append(ring)
                program.set_perf_fd(cpu, ring.fd)
        except OSError as e:
            for r in rings:
                r.close()
            program.close()
            raise HostError(f"probe {self.name}: cannot open its perf rings: {e}") from None
        self.adopt(program, rings)

    def adopt(self, program: Any, rings: Sequence[Any]) -> None:
        """Drain these rings of this program (what open() builds; tests pass fakes).

        `program` needs percpu_counter() and close(); a ring needs cpu, fd, pending(),
        read() -> RingRead and close().
        """
        self._program, self._rings = program, list(rings)
        self._locks = [anyio.Lock() for _ in self._rings]
        # bcc attaches tracepoints as it loads: samples refused before our rings were
        # in the map were never ours to read, so they are not losses.
        self._lost_seen = self.lost_by_cpu()
        now = time.monotonic_ns()
        self._last_read = [now for _ in self._rings]

    def close(self) -> None:
        for r in self._rings:
            r.close()
        self._rings = []
        if self._program is not None:
            self._program.close()
            self._program = None

    # ---- Source ----

    async def run(self, emit: Emit) -> None:
        """Drain until cancelled; then read what the rings still hold, and close."""
        self.open()
        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(self._rings)):
                    tg.start_soon(self._drain_ring, i, emit)
                tg.start_soon(self._sweep, emit)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self._final(emit)
                finally:
                    self.close()

    async def _final(self, emit: Emit) -> None:
        """A stop (SIGINT, --duration) still delivers what reached the rings before it."""
        try:
            await self._read_rings(range(len(self._rings)), emit)
            await self._publish_lost(emit)
        except (RuntimeError, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the consumer is gone already: nobody to deliver to

    def progress(self) -> int | None:
        """Every sample stamped before this time has been emitted.

        A ring read after time t holds nothing older than t (less a slack for a sample
        in flight at the read). A ring that wakes per sample and is empty now holds
        nothing at all: it needs no timer sweep to keep the watermark moving.
        """
        if not self._last_read:
            return None
        now = time.monotonic_ns()
        oldest = now
        for i, ring in enumerate(self._rings):
            if self._per_sample and ring.pending() == 0 and not self._locks[i].locked():
                continue
            oldest = min(oldest, self._last_read[i])
        return oldest - 1_000_000

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def counter(self, name: str) -> int:
        """The sum over CPUs of a BPF_PERCPU_ARRAY(name, u64, 1) in this probe's program."""
        if self._program is None:
            return 0
        return sum(self._program.percpu_counter(name))

    # ---- draining ----

    async def _drain_ring(self, i: int, emit: Emit) -> None:
        fd = self._rings[i].fd
        while True:
            await anyio.wait_readable(fd)
            await self._read_rings([i], emit)

    async def _sweep(self, emit: Emit) -> None:
        """Reads what waits below the watermark; polls the loss counters.

        An idle probe's sweep backs off to 4x `sweep` (still inside the default 50ms
        lateness, so the watermark does not wait on it), and rings that wake per
        sample are not swept at all: only the loss poll runs for them. Wakeups are
        the cost of an idle watchdog, not the reads.
        """
        fast = self.lost_poll_s if self._per_sample else self.sweep_s
        slow = self.lost_poll_s if self._per_sample else 4 * self.sweep_s
        interval = fast
        next_lost = 0.0
        while True:
            await anyio.sleep(interval)
            busy = await self._read_rings(range(len(self._rings)), emit)
            interval = fast if busy else min(2 * interval, slow)
            now = anyio.current_time()
            if now >= next_lost:
                next_lost = now + self.lost_poll_s
                await self._publish_lost(emit)

    async def _read_rings(self, which: Iterable[int], emit: Emit) -> bool:
        """Read the given rings that hold data and emit them as ONE batch.

        One batch per sweep, not per ring: downstream work is per batch. Each ring's
        lock is held until its samples are emitted, so a ring's samples never
        overtake each other (locks are taken in index order: no deadlock).
        """
        held: list[int] = []
        payloads: list[np.ndarray] = []
        lost = 0
        t0 = time.monotonic_ns()  # every sample stamped before this will be read below
        try:
            for i in which:
                ring = self._rings[i]
                if ring.pending() <= 0:
                    if not self._locks[i].locked():
                        self._last_read[i] = time.monotonic_ns()
                    continue
                await self._locks[i].acquire()
                held.append(i)
                got = ring.read()
                self._stats["reads"] += 1
                self._stats["bad"] += got.bad
                if got.lost:
                    lost += got.lost
                    self._lost_records[ring.cpu] = self._lost_records.get(ring.cpu, 0) + got.lost
                if got.payload.shape[0]:
                    payloads.append(got.payload)
            if payloads:
                p = payloads[0] if len(payloads) == 1 else np.concatenate(payloads)
                batch = self.spec.decode(p)
                order = np.argsort(batch.emit, kind="stable")
                if order.shape[0] > 1 and bool(np.any(order[1:] < order[:-1])):
                    batch = batch.take(order)
                self._stats["events"] += len(batch)
                self._stats["batches"] += 1
                await emit(batch)
            for i in held:
                self._last_read[i] = t0
        finally:
            for i in held:
                self._locks[i].release()
        if lost:
            await self._publish_lost(emit)
        return bool(held)

    def lost_by_cpu(self) -> dict[int, int]:
        """Per CPU: the larger of the BPF-side count and the ring's LOST records.

        Both count the same refused samples; the BPF map also sees those at the end
        of a burst, which the ring reports only with its next successful write.
        """
        in_bpf: list[int] = []
        if self._program is not None:
            try:
                in_bpf = self._program.percpu_counter()
            except Exception:  # a map read failing must not stop the drain
                in_bpf = []
        cpus = set(self._lost_records) | {r.cpu for r in self._rings}
        return {
            c: max(in_bpf[c] if c < len(in_bpf) else 0, self._lost_records.get(c, 0)) for c in cpus
        }

    async def _publish_lost(self, emit: Emit) -> None:
        total = 0
        for cpu, n in self.lost_by_cpu().items():
            seen = self._lost_seen.get(cpu, 0)
            if n > seen:
                total += n - seen
                self._lost_seen[cpu] = n
        if total:
            self._stats["lost"] += total
            await emit(
                Batch(
                    "lost",
                    np.array([time.monotonic_ns()], dtype=np.int64),
                    None,
                    {
                        "probe": np.array([self.name], dtype=object),
                        "count": np.array([float(total)]),
                    },
                )
            )
