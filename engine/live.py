"""`watch` and `record`: live probes into the pipeline (or into a trace file).

The CLI's `_cmd_watch`/`_cmd_record` call these. Probes are opened (compiled and
attached) before the event loop starts, so a host problem is reported with its fix
and exit status 3 before anything runs; SIGINT/SIGTERM set the stop event, so
windows close and sinks flush exactly as at the end of `--duration`.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from .batch import Batch, concat
from .clock import INFINITY
from .config import Config, severity_rank
from .errors import HostError, UsageError
from .model import CATALOG
from .units import parse_duration

__all__ = ["parse_duration_arg", "record", "watch"]


def parse_duration_arg(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        d = parse_duration(text)
    except ValueError as e:
        raise UsageError(f"--duration: {e}") from None
    if d <= 0:
        raise UsageError("--duration: must be positive")
    return d


def _say(msg: str) -> None:
    print(f"tracehound: {msg}", file=sys.stderr, flush=True)


async def _until_signal(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    with scope, anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for sig in signals:
            _say(f"{signal.Signals(sig).name}: stopping")
            stop.set()
            return


async def _with_signals(body: Callable[[anyio.Event], Awaitable[Any]]) -> Any:
    """Run `body(stop)` with SIGINT/SIGTERM setting `stop`."""
    stop = anyio.Event()
    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_until_signal, stop, scope)
        try:
            return await body(stop)
        finally:
            scope.cancel()


_M_MMAP_THRESHOLD = -3  # mallopt(3)
_MMAP_THRESHOLD = 1 << 20
_MADV_DONTNEED = 4
_TRIM_EVERY_S = 30.0
# The compiler's shared objects (bcc links LLVM and clang): code only compiling runs.
_COMPILER_LIBS = ("libLLVM", "libclang", "libbcc")


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _trim_heap() -> None:
    """Give back to the system the free pages of the C heap (glibc on its own only
    trims the heap's top). A no-op elsewhere."""
    with contextlib.suppress(AttributeError):  # no libc, or not glibc
        _libc().malloc_trim(0)


def _after_compile() -> None:
    """Once the probes are compiled: give back what compiling left resident.

    - LLVM (inside libbcc) frees tens of MB after compiling; glibc keeps them
      mapped unless asked (malloc_trim). Measured here: 9 probes, RSS 177 -> 142 MB.
    - glibc's mmap threshold is fixed at 1 MiB: left dynamic, LLVM's large frees
      raise it to 32 MiB, so the runtime's big numpy buffers (history columns, long
      window reads) come from the heap and, once freed, stay resident as holes;
      mapped on their own, they go back to the system when freed.
    - The code pages of LLVM and clang that compiling touched (~75 MB) are
      dropped from this process's resident set: they are clean pages of the shared
      objects, read again from the file (the page cache) if ever run again.
    A no-op where any of it is unavailable.
    """
    libc = _libc()
    try:
        libc.malloc_trim(0)
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    except AttributeError:
        return
    for start, length in _compiler_code():
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(length), _MADV_DONTNEED)


def _compiler_code(smaps: str = "/proc/self/smaps") -> list[tuple[int, int]]:
    """(start, length) of the executable mappings of the compiler's shared objects
    that hold no anonymous (copied-on-write) page: only clean file pages, which
    MADV_DONTNEED drops and a later access reads back from the file."""
    out: list[tuple[int, int]] = []
    try:
        text = Path(smaps).read_text()
    except OSError:
        return out
    cur: tuple[int, int] | None = None
    for line in text.splitlines():
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):
            cur = None
            path = head[5] if len(head) == 6 else ""
            if head[1] == "r-xp" and any(n in path for n in _COMPILER_LIBS):
                lo, _, hi = head[0].partition("-")
                cur = (int(lo, 16), int(hi, 16) - int(lo, 16))
        elif cur is not None and line.startswith("Anonymous:"):
            if int(line.split()[1]) == 0:
                out.append(cur)
            cur = None
    return out


async def _trim_heap_every(seconds: float) -> None:
    """malloc_trim now and then: free pages inside the heap go back to the system
    (glibc on its own only trims the heap's top)."""
    while True:
        await anyio.sleep(seconds)
        _trim_heap()


def _no_sources_error(unavailable: dict[str, str]) -> HostError:
    lines = [f"  {s}: {why}" for s, why in sorted(unavailable.items())]
    return HostError("this host cannot provide the streams asked for:\n" + "\n".join(lines))


def watch(
    rules: Sequence[str] | None,
    config: Config,
    *,
    json: bool = False,
    duration: int | None = None,
    fail_on: str | None = None,
    record: str | None = None,
) -> int:
    """Evaluate `rules` live; with `record`, also write to that trace file every batch
    the evaluator consumed (replaying it gives the same findings)."""
    from .rulepaths import load_plan

    plan = load_plan(rules, config)
    writer = None
    if record is not None:  # a path that cannot be written fails before probes compile
        from .tracefile import TraceWriter

        writer = TraceWriter(record)
    try:
        live, result = _watch_live(plan, config, json, duration, writer)
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        _say(f"recorded {writer.events} event(s) to {record}")
    lost = sum(s.stats().get("lost", 0) for s in live.sources)
    _say(f"{result.findings} finding(s); {lost} event(s) lost in the probes")
    worst = result.worst()
    if fail_on and worst is not None and severity_rank(worst) >= severity_rank(fail_on):
        return 1
    return 0


def _watch_live(
    plan: Any, config: Config, json: bool, duration: int | None, writer: Any
) -> tuple[Any, Any]:
    from probes import PROBES
    from probes.live import sources_for_plan

    from .bus import Bus
    from .clock import LiveClock
    from .pipeline import run_pipeline
    from .rulepaths import needed_streams
    from .sinks.console import ConsoleSink
    from .sinks.delivery import open_delivery
    from .sinks.metrics import Metrics

    wanted = needed_streams(plan)  # None: an `explain` ranks every stream there is
    live = sources_for_plan(
        plan,
        streams=set(PROBES) if wanted is None else wanted,
        lateness=config.engine.lateness,
    )
    _after_compile()
    try:
        for line in live.report():
            _say(line)
        if plan.streams and not live.sources:
            raise _no_sources_error(live.unavailable)
        _say(
            f"watching {len(plan.rules) - len(live.inactive)} rule(s) with "
            f"{', '.join(sorted(live.attached)) or 'no probes'}"
        )
        metrics = Metrics()
        sources = live.sources

        def _probe_metrics(m: Metrics) -> None:
            for s in sources:
                st = s.stats()
                m.set("tracehound_events_lost_total", {"probe": s.name}, st.get("lost", 0))
                own = sorted(s.streams - {"lost"})
                if len(own) == 1 and "events" in st:
                    m.set("tracehound_events_received_total", {"stream": own[0]}, st["events"])

        metrics.add_collector(_probe_metrics)
        bus = Bus()
        clock = LiveClock(config.engine.lateness, sources)

        def _pipeline_metrics(m: Metrics) -> None:
            for name, st in bus.statistics()["subscribers"].items():
                m.set("tracehound_bus_dropped_total", {"subscriber": name}, st["dropped_events"])
            m.set("tracehound_late_events_total", None, clock.late_events)

        metrics.add_collector(_pipeline_metrics)

        make_evaluator = _live_evaluator(writer)

        async def body(stop: anyio.Event) -> Any:
            console = ConsoleSink(json=json)
            async with (
                open_delivery(config, console=console, metrics=metrics, serve=True) as r,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(_trim_heap_every, _TRIM_EVERY_S)
                try:
                    return await run_pipeline(
                        sources,
                        plan,
                        r,
                        clock,
                        tick=config.engine.tick,
                        duration=duration,
                        stop=stop,
                        make_evaluator=make_evaluator,
                        bus=bus,
                    )
                finally:
                    tg.cancel_scope.cancel()

        result = anyio.run(_with_signals, body)
    finally:
        live.close()
    return live, result


class _InOrder:
    """Feeds the runtime each stream's events in emission order, as replay does.

    The drain reads each CPU's ring on its own wakeup, so consecutive batches of one
    stream may overlap in time (a sample read from CPU 1 after a later one from
    CPU 0). The runtime schedules its steps from the rows it already holds (the
    first batch starts a rule's steps; an idle rule skips to the next row it
    holds), so an overlap could move a finding to another window than replaying
    the same events gives. Holding batches until the watermark passes them costs
    nothing in latency (no window closes before that anyway) and makes the
    runtime's input exactly a sorted trace: live and replay agree.

    With a `writer`, every batch handed to the runtime is also written to the trace
    file: exactly what was evaluated (nothing the bus dropped, everything the final
    drain delivered after a stop).
    """

    def __init__(self, inner: Any, writer: Any = None) -> None:
        self._inner = inner
        self._writer = writer
        self._pending: dict[str, list[Batch]] = {}

    def push(self, batch: Batch) -> None:
        if not len(batch):
            return
        e = batch.emit
        if e.shape[0] > 1 and bool(np.any(e[1:] < e[:-1])):
            batch = batch.take(np.argsort(e, kind="stable"))
        self._pending.setdefault(batch.stream, []).append(batch)

    def _release(self, wm: int | None) -> None:
        """Hand the runtime every pending event emitted at or before `wm` (None: all)."""
        for stream in list(self._pending):
            pending = self._pending[stream]
            out: list[Batch] = []
            keep: list[Batch] = []
            for b in pending:
                e = b.emit
                if wm is None or int(e[-1]) <= wm:
                    out.append(b)
                elif int(e[0]) > wm:
                    keep.append(b)
                else:
                    k = int(np.searchsorted(e, wm, "right"))
                    out.append(b.take(slice(0, k)))
                    keep.append(b.take(slice(k, None)))
            if not out:
                continue
            if keep:
                self._pending[stream] = keep
            else:
                del self._pending[stream]
            merged = concat(out)
            if len(out) > 1:
                e = merged.emit
                if bool(np.any(e[1:] < e[:-1])):
                    merged = merged.take(np.argsort(e, kind="stable"))
            if self._writer is not None:
                self._writer.write(merged)
            self._inner.push(merged)

    def advance(self, watermark: int) -> Any:
        self._release(None if watermark >= INFINITY else watermark)
        return self._inner.advance(watermark)

    def finish(self) -> Any:
        self._release(None)
        return self._inner.finish()

    def stats(self) -> Any:
        return self._inner.stats()


def _live_evaluator(writer: Any = None) -> Callable[[Any, int], Any]:
    def make(plan: Any, tick: int) -> Any:
        from .runtime.evaluator import Evaluator

        return _InOrder(Evaluator(plan, tick=tick), writer)

    return make


def record(path: str, streams: Sequence[str] | None, *, duration: int | None = None) -> int:
    from probes import PROBES
    from probes.live import open_streams

    from .tracefile import TraceWriter

    if streams:
        unknown = [s for s in streams if s not in CATALOG]
        if unknown:
            raise UsageError(f"--streams: unknown stream(s) {', '.join(unknown)}")
        wanted = set(streams)
    else:
        wanted = set(PROBES)
    live = open_streams(wanted)
    _after_compile()
    try:
        for s, why in sorted(live.unavailable.items()):
            _say(f"stream {s} unavailable: {why}")
        if not live.sources:
            raise _no_sources_error(live.unavailable)
        if streams and live.unavailable:  # asked for by name: all of them are required
            raise _no_sources_error(live.unavailable)
        writer = TraceWriter(path)
        counts: dict[str, int] = {}
        keep = wanted | {"lost"}

        async def emit(batch: Batch) -> None:
            if batch.stream in keep and len(batch):
                writer.write(batch)
                counts[batch.stream] = counts.get(batch.stream, 0) + len(batch)

        async def body(stop: anyio.Event) -> None:
            async with anyio.create_task_group() as tg:
                for s in live.sources:
                    tg.start_soon(s.run, emit)
                with anyio.move_on_after(None if duration is None else duration / 1e9):
                    await stop.wait()
                tg.cancel_scope.cancel()

        _say(f"recording {', '.join(sorted(live.attached))} to {path}")
        try:
            anyio.run(_with_signals, body)
        finally:
            writer.close()
    finally:
        live.close()
    summary = ", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "no events"
    _say(f"recorded {summary}")
    return 0
