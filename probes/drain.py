"""The async drain: a bcc probe's output rings into Batches, on the event loop.

A probe's output is one BPF ring buffer for all CPUs where the kernel has it
(probes/bpf_ring.py), else one perf ring per CPU (probes/perf_ring.py); option
`output` / env TRACEHOUND_PROBE_OUTPUT (`auto`, `ringbuf`, `perf`) forces one.
One task per ring waits for its fd (the kernel wakes it at a byte watermark, so a
busy ring costs one wakeup per batch, not per event) and reads one bounded chunk
(with whatever the probe's other rings hold).
One sweeper per event loop, shared by every probe, reads what waits below the
watermarks so a lone event is not held back: a single timer for all probes (their
sweeps coalesce into one wakeup), each ring's head checked before any decode work,
and each probe's samples emitted as one batch per sweep. Loss counters are read when
a ring was seen (nearly) full or reported LOST records, the only times a sample can
have been refused, plus a slow safety poll, which also reads the kernel's count of
the probe's program runs it skipped (recursion misses: lost samples too). Nothing
here blocks: bcc compiles in `open()`, before the loop starts draining.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np

from engine.batch import Batch
from engine.errors import HostError
from engine.source import Emit

from .perf_ring import PerfRing

__all__ = ["DEFAULT_LATENESS_NS", "OUTPUT_ENV", "BccProbeSource", "ProbeSpec", "sweep_for"]

Decode = Callable[[np.ndarray], Batch]

DEFAULT_LATENESS_NS = 50_000_000  # engine.config's default `lateness`
OUTPUT_ENV = "TRACEHOUND_PROBE_OUTPUT"  # auto (default), ringbuf or perf
_OUTPUTS = ("auto", "ringbuf", "perf")


def sweep_for(lateness_ns: int) -> tuple[float, float]:
    """(sweep, sweep_idle) in seconds for a watermark `lateness_ns` behind wall time.

    A sample below a ring's wakeup watermark waits for the next sweep, so the sweep
    period bounds how long a lone event takes to reach the bus. 0.6 x lateness
    (30 ms for the default 50 ms) leaves the rest for the read and event-loop lag,
    so the drain's progress never holds the watermark back; when every ring was
    empty at the last sweep the period backs off to 0.8 x lateness. Reading sooner
    would buy nothing: no window closes before the watermark passes anyway.
    """
    s = max(lateness_ns, 2_000_000) / 1e9
    return 0.6 * s, 0.8 * s


_SWEEP, _SWEEP_IDLE = sweep_for(DEFAULT_LATENESS_NS)


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """What a probe module declares: its C, its sample layout and how to decode it."""

    name: str  # the probe, as `lost` events name it
    stream: str
    bpf: Path
    payload: np.dtype  # the C sample struct, field for field (align=True)
    decode: Decode  # payload records (in ring order) -> a Batch of `stream`
    cflags: tuple[str, ...] = ()
    pages: int = 64  # per CPU, a power of two (the ring buffer: this times the CPUs)
    wakeup_events: int = 0  # > 0: wake per N samples (rare streams) instead of a watermark
    tracepoints: tuple[str, ...] = field(default=())
    # BPF_PERCPU_ARRAY(name, u64, 1) counters of the program that stats() reports (as
    # `name` without its `th_`), read with the loss counters
    counters: tuple[str, ...] = ()
    # functions whose skipped runs lose no sample (block_rq_insert: only a queue time)
    misses_harmless: tuple[str, ...] = ()


def _options_cflags(options: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(f) for f in options.get("cflags", ()))


class BccProbeSource:
    """A Source over one bcc probe: open() compiles and attaches; run() drains.

    Options: `sweep` (s, the longest a sample below the wakeup watermark waits while
    the probe's rings hold data), `sweep_idle` (s, the same once a sweep found them
    all empty), `lost_poll` (s, the safety poll of the loss counters), `pages`,
    `cflags`, `preferred_cflags` (tried first, dropped if the program fails to load
    with them), `output` (`auto`: the BPF ring buffer where the kernel has it, else
    perf rings; `ringbuf`; `perf`; default from env TRACEHOUND_PROBE_OUTPUT).
    `sweep`/`sweep_idle` default from the lateness (`sweep_for`).
    """

    def __init__(self, spec: ProbeSpec, options: Mapping[str, Any] | None = None) -> None:
        opts = dict(options or {})
        self.spec = spec
        self.name = spec.name
        self.streams = frozenset({spec.stream, "lost"})
        self.sweep_s = float(opts.get("sweep", _SWEEP))
        self.sweep_idle_s = max(self.sweep_s, float(opts.get("sweep_idle", _SWEEP_IDLE)))
        if "sweep" in opts and "sweep_idle" not in opts:
            self.sweep_idle_s = self.sweep_s  # an explicit period is kept, busy or idle
        self.lost_poll_s = float(opts.get("lost_poll", 1.0))
        self.pages = int(opts.get("pages", spec.pages))
        self.cflags = spec.cflags + _options_cflags(opts)
        # tried first, dropped if the program does not load with them (a raw tracepoint
        # variant on a kernel or bcc that refuses it): `preferred` says which loaded
        self.preferred_cflags = tuple(str(f) for f in opts.get("preferred_cflags", ()))
        self.preferred = False
        self.fallback: str | None = None  # why the preferred cflags did not load
        self.output = str(opts.get("output") or os.environ.get(OUTPUT_ENV) or "auto").lower()
        if self.output not in _OUTPUTS:
            raise HostError(
                f"probe {self.name}: output {self.output!r} is not one of {', '.join(_OUTPUTS)} "
                f"(option `output` or env {OUTPUT_ENV})"
            )
        self._per_sample = spec.wakeup_events == 1
        self._program: Any = None
        self._rings: list[Any] = []  # PerfRing per CPU, or one BpfRing
        self._locks: list[anyio.Lock] = []
        self._last_read: list[int] = []
        self._busy = True  # whether the last sweep found data (sets the next period)
        self._suspect_loss = False  # a ring was seen full: read the loss counters
        self._next_lost = 0.0
        self._lost_seen: dict[int, int] = {}  # cpu -> lost samples already published
        self._lost_records: dict[int, int] = {}  # cpu -> from PERF_RECORD_LOST
        self._misses_seen = 0  # the programs' recursion misses already published
        self._stats = {"events": 0, "lost": 0, "misses": 0, "reads": 0, "bad": 0, "batches": 0}
        for c in spec.counters:
            self._stats[c.removeprefix("th_")] = 0

    # ---- set-up ----

    def open(self) -> None:
        """Compile, attach and map the rings. Raises HostError with the fix."""
        if self._program is not None:
            return
        from . import _bcc

        if self.output == "auto" and _bcc.ringbuf_supported():
            try:
                self._open_ringbuf(_bcc)
                self.output = "ringbuf"
                return
            except HostError:  # e.g. a bcc without BPF_RINGBUF_OUTPUT: the perf rings then
                pass
        if self.output == "ringbuf":
            self._open_ringbuf(_bcc)
            return
        self.output = "perf"
        program = self._compile(_bcc, ())
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

    def _open_ringbuf(self, _bcc: Any) -> None:
        """One BPF ring buffer for all CPUs: as many bytes as the perf rings would have
        had (pages x CPUs, rounded up to a power of two)."""
        from .bpf_ring import BpfRing

        page = os.sysconf("SC_PAGE_SIZE")
        want = self.pages * page * max(len(_bcc.online_cpus()), 1)
        size = 1 << max(want - 1, page - 1).bit_length()
        program = self._compile(_bcc, _bcc.output_cflags(size, self.spec.wakeup_events))
        try:
            fd, size = program.ringbuf()
            ring = BpfRing(fd, size, self.spec.payload)
        except (OSError, ValueError) as e:
            program.close()
            raise HostError(f"probe {self.name}: cannot map its ring buffer: {e}") from None
        self.adopt(program, [ring])

    def _compile(self, _bcc: Any, output: tuple[str, ...]) -> Any:
        """The program with the preferred cflags if it loads so, else without them
        (`fallback` then says why; the compiler's complaints are kept out of the
        operator's terminal: the program that loads is all they need)."""
        if self.preferred_cflags:
            with _bcc.captured_stderr() as said:
                try:
                    program = _bcc.Program(
                        self.spec.bpf, self.cflags + self.preferred_cflags + output
                    )
                except HostError as e:
                    program, why = None, str(e)
            if program is not None:
                for line in said:  # warnings of a program that loaded: shown as usual
                    print(line, file=sys.stderr)
                self.preferred, self.fallback = True, None
                return program
            errors = [ln.strip() for ln in said if "error" in ln.lower()]
            self.fallback = (errors[0] if errors else why.split(" (check")[0])[:200]
        program = _bcc.Program(self.spec.bpf, self.cflags + output)
        if self.preferred_cflags:  # the program loads, just not with them: not again
            self.preferred_cflags = ()
        self.preferred = False
        return program

    def adopt(self, program: Any, rings: Sequence[Any]) -> None:
        """Drain these rings of this program (what open() builds; tests pass fakes).

        `program` needs percpu_counter() and close(); a ring needs cpu, fd, pending(),
        read() -> RingRead and close(), and may have ack() (called when its fd woke
        the drain, before the read: a ring buffer's epoll, edge-triggered). A ring
        serving every CPU (the ring buffer) has cpu -1: its loss is the program's
        per-CPU count.
        """
        self._program, self._rings = program, list(rings)
        # fast_acquire: an uncontended lock (nearly always) costs no trip round the loop
        self._locks = [anyio.Lock(fast_acquire=True) for _ in self._rings]
        # bcc attaches tracepoints as it loads: samples refused before our rings were
        # in the map were never ours to read, so they are not losses.
        self._lost_seen = self.lost_by_cpu()
        self._misses_seen = self._misses()
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
                tg.start_soon(_sweeper().serve, self, emit)
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

    def program_stats(self) -> tuple[int, int]:
        """(run_cnt, run_time_ns) of this probe's BPF programs (kernel.bpf_stats_enabled)."""
        stats = getattr(self._program, "run_stats", None)
        return stats() if stats is not None else (0, 0)

    def counter(self, name: str) -> int:
        """The sum over CPUs of a BPF_PERCPU_ARRAY(name, u64, 1) in this probe's program."""
        if self._program is None:
            return 0
        return sum(self._program.percpu_counter(name))

    # ---- draining ----

    async def _drain_ring(self, i: int, emit: Emit) -> None:
        """Woken at ring i's watermark: read it, and every other ring of this probe that
        holds data, as one batch (under load the CPUs' rings fill alike; reading them
        together halves the wakeups and the batches)."""
        fd = self._rings[i].fd
        ack = getattr(self._rings[i], "ack", None)
        every = range(len(self._rings))
        while True:
            await anyio.wait_readable(fd)
            if ack is not None:
                ack()
            await self._read_rings(every, emit)

    def sweep_period(self) -> float:
        """How long until this probe wants its next sweep."""
        return self.sweep_s if self._busy else self.sweep_idle_s

    async def sweep(self, emit: Emit) -> None:
        """One sweep (the shared sweeper calls it): read every ring holding data; poll
        the loss counters when a ring was seen full, or when the safety poll is due."""
        self._busy = await self._read_rings(range(len(self._rings)), emit)
        now = time.monotonic()
        if now >= self._next_lost:
            self._next_lost = now + self.lost_poll_s
            await self._publish_lost(emit)

    async def _read_rings(self, which: Iterable[int], emit: Emit) -> bool:
        """Read the given rings that hold data and emit them as ONE batch.

        One batch per sweep, not per ring: downstream work is per batch. A ring whose
        head equals its tail (two loads from its header page) costs nothing more.
        Each ring's lock is held until its samples are emitted, so a ring's samples
        never overtake each other (locks are taken in index order: no deadlock).
        """
        held: list[int] = []
        stalled: list[int] = []  # reads that stopped at a record still being written
        payloads: list[np.ndarray] = []
        lost = 0
        t0 = time.monotonic_ns()  # every sample stamped before this will be read below
        rings, locks = self._rings, self._locks
        try:
            for i in which:
                ring = rings[i]
                if ring.pending() <= 0:
                    if not locks[i].locked():
                        self._last_read[i] = t0
                    continue
                await locks[i].acquire()
                held.append(i)
                got = ring.read()
                self._stats["reads"] += 1
                self._stats["bad"] += got.bad
                if got.full:
                    self._suspect_loss = True
                if not got.complete:
                    stalled.append(i)
                if got.lost:
                    lost += got.lost
                    self._lost_records[ring.cpu] = self._lost_records.get(ring.cpu, 0) + got.lost
                if got.payload.shape[0]:
                    payloads.append(got.payload)
            if payloads:
                p = payloads[0] if len(payloads) == 1 else np.concatenate(payloads)
                batch = self.spec.decode(p)
                e = batch.emit
                if e.shape[0] > 1 and bool(np.any(e[1:] < e[:-1])):
                    batch = batch.take(np.argsort(e, kind="stable"))
                self._stats["events"] += len(batch)
                self._stats["batches"] += 1
                await emit(batch)
            for i in held:
                if i not in stalled:  # else samples stamped before t0 may still wait
                    self._last_read[i] = t0
        finally:
            for i in held:
                locks[i].release()
        if lost or self._suspect_loss:
            await self._publish_lost(emit, skipped=False)
        return bool(held)

    def lost_by_cpu(self) -> dict[int, int]:
        """Per CPU: the larger of the BPF-side count and the ring's LOST records.

        Both count the same refused samples; the BPF map also sees those at the end
        of a burst, which a perf ring reports only with its next successful write.
        The ring buffer has no LOST records: its loss is the BPF count alone, on
        whichever CPU the sample was refused (every possible CPU is read).
        """
        in_bpf: list[int] = []
        if self._program is not None:
            try:
                in_bpf = self._program.percpu_counter()
            except Exception:  # a map read failing must not stop the drain
                in_bpf = []
        cpus = set(self._lost_records) | {r.cpu for r in self._rings if r.cpu >= 0}
        cpus |= set(range(len(in_bpf)))
        return {
            c: max(in_bpf[c] if c < len(in_bpf) else 0, self._lost_records.get(c, 0)) for c in cpus
        }

    def _misses(self) -> int:
        """The kernel's count of runs of this probe's programs it skipped (fdinfo's
        recursion_misses): a tracepoint that fires while another BPF tracing program
        runs on its CPU (an interrupt's block completion during a block_rq_issue
        program, say) does not run its program at all."""
        misses = getattr(self._program, "misses", None)
        if misses is None:
            return self._misses_seen
        try:
            return int(misses(self.spec.misses_harmless))
        except Exception:  # a read failing must not stop the drain
            return self._misses_seen

    def _read_counters(self) -> None:
        if self._program is None:  # closed: keep the last values
            return
        for c in self.spec.counters:
            with contextlib.suppress(Exception):  # a map read failing must not stop the drain
                self._stats[c.removeprefix("th_")] = self.counter(c)

    async def _publish_lost(self, emit: Emit, skipped: bool = True) -> None:
        """Emit one `lost` event for the samples refused since the last one, and for
        the program runs the kernel skipped (each may have been a sample).

        A sample is refused only while its ring is full, and a full ring stays full
        until it is read: the read that finds it so (`RingRead.full`) sets
        `_suspect_loss`, and the poll after it counts every refusal up to then.
        A skipped run leaves no trace but the kernel's count, read (with the probe's
        counters) by the safety poll and at stop (`skipped`), not on every full ring.
        """
        self._suspect_loss = False
        total = 0
        for cpu, n in self.lost_by_cpu().items():
            seen = self._lost_seen.get(cpu, 0)
            if n > seen:
                total += n - seen
                self._lost_seen[cpu] = n
        if skipped:
            misses = self._misses()
            if misses > self._misses_seen:
                self._stats["misses"] += misses - self._misses_seen
                total += misses - self._misses_seen
                self._misses_seen = misses
            self._read_counters()
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


# ---- the shared sweeper ----


@dataclass(eq=False)
class _Member:
    src: BccProbeSource
    emit: Emit
    wake: anyio.Event | None = None
    error: Exception | None = None


class _Sweeper:
    """One timer for every probe draining on an event loop.

    Each probe's `run()` joins with `serve()`; the first to join leads (runs the
    timer and sweeps every member), the others wait on an event and one of them
    takes over when the leader leaves. One wakeup per period sweeps all probes
    (a probe's period is only an upper bound, so sweeping it sooner costs nothing but
    a head check); the period is the shortest any member asks for. A member's error
    is raised in its own task, and a sweep runs shielded: a leader cancelled
    mid-sweep still emits what it read from another probe's rings.
    """

    def __init__(self) -> None:
        self._members: list[_Member] = []
        self._leader: _Member | None = None
        self._sleep: anyio.CancelScope | None = None

    async def serve(self, src: BccProbeSource, emit: Emit) -> None:
        me = _Member(src, emit)
        self._members.append(me)
        if self._sleep is not None:
            self._sleep.cancel()  # the leader recomputes its period with this member
        try:
            while True:
                if me.error is not None:
                    raise me.error
                if self._leader is None:
                    self._leader = me
                    try:
                        await self._lead(me)
                    finally:
                        self._leader = None
                        for m in self._members:
                            if m.wake is not None:
                                m.wake.set()
                else:
                    me.wake = anyio.Event()
                    await me.wake.wait()
                    me.wake = None
        finally:
            self._members.remove(me)

    async def _lead(self, me: _Member) -> None:
        last = time.monotonic()
        while True:
            period = min(m.src.sweep_period() for m in self._members)
            delay = last + period - time.monotonic()
            if delay > 0:
                scope = self._sleep = anyio.CancelScope()
                with scope:
                    await anyio.sleep(delay)
                self._sleep = None
                if scope.cancel_called:  # a member joined: its period may be shorter
                    continue
            last = time.monotonic()
            for m in list(self._members):
                if m.error is not None or m not in self._members:
                    continue
                try:
                    with anyio.CancelScope(shield=True):
                        await m.src.sweep(m.emit)
                except Exception as e:
                    if m is me:
                        raise
                    m.error = e
                    if m.wake is not None:
                        m.wake.set()


_SWEEPERS: weakref.WeakKeyDictionary[Any, _Sweeper] = weakref.WeakKeyDictionary()


def _sweeper() -> _Sweeper:
    """The sweeper of the running event loop (sources of another loop never share it)."""
    loop = anyio.lowlevel.current_token().native_token
    s = _SWEEPERS.get(loop)
    if s is None:
        s = _SWEEPERS[loop] = _Sweeper()
    return s
