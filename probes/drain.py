"""The async drain: a bcc probe's per-CPU perf rings into Batches, on the event loop.

One task per ring waits for its fd (the kernel wakes it at a byte watermark, so a
busy ring costs one wakeup per batch, not per event) and reads one bounded chunk;
one sweeper per probe reads every ring on a short timer so a lone event is not held
back, and turns lost-sample counts into `lost` events. Nothing here blocks: bcc
compiles in `open()`, before the loop starts draining.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
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
        self.sweep_s = float(opts.get("sweep", 0.005))
        self.lost_poll_s = float(opts.get("lost_poll", 0.1))
        self.pages = int(opts.get("pages", spec.pages))
        self.cflags = spec.cflags + _options_cflags(opts)
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
        self._program, self._rings = program, rings
        self._locks = [anyio.Lock() for _ in rings]
        now = time.monotonic_ns()
        self._last_read = [now for _ in rings]

    def close(self) -> None:
        for r in self._rings:
            r.close()
        self._rings = []
        if self._program is not None:
            self._program.close()
            self._program = None

    # ---- Source ----

    async def run(self, emit: Emit) -> None:
        self.open()
        try:
            async with anyio.create_task_group() as tg:
                for i in range(len(self._rings)):
                    tg.start_soon(self._drain_ring, i, emit)
                tg.start_soon(self._sweep, emit)
        finally:
            with anyio.CancelScope(shield=True):
                self.close()

    def progress(self) -> int | None:
        """Every ring was read after this time; a sample stamped before it is out."""
        if not self._last_read:
            return None
        return min(self._last_read) - 1_000_000  # slack: a sample in flight at the read

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
            await self._read(i, emit)

    async def _sweep(self, emit: Emit) -> None:
        next_lost = 0.0
        while True:
            await anyio.sleep(self.sweep_s)
            for i, ring in enumerate(self._rings):
                if ring.pending() > 0:
                    await self._read(i, emit)
                else:
                    self._last_read[i] = time.monotonic_ns()
            now = anyio.current_time()
            if now >= next_lost:
                next_lost = now + self.lost_poll_s
                await self._publish_lost(emit)

    async def _read(self, i: int, emit: Emit) -> None:
        async with self._locks[i]:
            t0 = time.monotonic_ns()
            ring = self._rings[i]
            got = ring.read()
            self._stats["reads"] += 1
            self._stats["bad"] += got.bad
            if got.lost:
                self._lost_records[ring.cpu] = self._lost_records.get(ring.cpu, 0) + got.lost
            if got.payload.shape[0]:
                batch = self.spec.decode(got.payload)
                order = np.argsort(batch.emit, kind="stable")
                if order.shape[0] > 1 and bool(np.any(order[1:] < order[:-1])):
                    batch = batch.take(order)
                self._stats["events"] += len(batch)
                self._stats["batches"] += 1
                await emit(batch)
            self._last_read[i] = t0
        if got.lost:
            await self._publish_lost(emit)

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
