"""`watch` and `record`: live probes into the pipeline (or into a trace file).

The CLI's `_cmd_watch`/`_cmd_record` call these. Probes are opened (compiled and
attached) before the event loop starts, so a host problem is reported with its fix
and exit status 3 before anything runs; SIGINT/SIGTERM set the stop event, so
windows close and sinks flush exactly as at the end of `--duration`.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from .batch import Batch
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
    from probes import PROBES
    from probes.live import sources_for_plan

    from .clock import LiveClock
    from .pipeline import run_pipeline
    from .rulepaths import load_plan, needed_streams
    from .sinks.console import ConsoleSink
    from .sinks.delivery import open_delivery
    from .sinks.metrics import Metrics

    plan = load_plan(rules, config)
    wanted = needed_streams(plan)  # None: an `explain` ranks every stream there is
    live = sources_for_plan(plan, streams=set(PROBES) if wanted is None else wanted)
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

        writer = None
        make_evaluator = None
        if record is not None:
            from .tracefile import TraceWriter

            writer = TraceWriter(record)
            make_evaluator = _recording_evaluator(writer)

        async def body(stop: anyio.Event) -> Any:
            console = ConsoleSink(json=json)
            async with open_delivery(config, console=console, metrics=metrics, serve=True) as r:
                return await run_pipeline(
                    sources,
                    plan,
                    r,
                    LiveClock(config.engine.lateness, sources),
                    tick=config.engine.tick,
                    duration=duration,
                    stop=stop,
                    **({} if make_evaluator is None else {"make_evaluator": make_evaluator}),
                )

        try:
            result = anyio.run(_with_signals, body)
        finally:
            if writer is not None:
                writer.close()
    finally:
        live.close()
    if writer is not None:
        _say(f"recorded {writer.events} event(s) to {record}")
    lost = sum(s.stats().get("lost", 0) for s in live.sources)
    _say(f"{result.findings} finding(s); {lost} event(s) lost in perf buffers")
    worst = result.worst()
    if fail_on and worst is not None and severity_rank(worst) >= severity_rank(fail_on):
        return 1
    return 0


class _Recording:
    """An evaluator that first writes every batch it is pushed to a trace file.

    Teeing here, where the pipeline's subscriber hands batches to the runtime, records
    exactly what was evaluated: nothing the bus dropped, everything the final drain
    delivered after a stop, in the order it was evaluated.
    """

    def __init__(self, inner: Any, writer: Any) -> None:
        self._inner = inner
        self._writer = writer

    def push(self, batch: Batch) -> None:
        self._writer.write(batch)
        self._inner.push(batch)

    def advance(self, watermark: int) -> Any:
        return self._inner.advance(watermark)

    def finish(self) -> Any:
        return self._inner.finish()

    def stats(self) -> Any:
        return self._inner.stats()


def _recording_evaluator(writer: Any) -> Callable[[Any, int], Any]:
    def make(plan: Any, tick: int) -> Any:
        from .runtime.evaluator import Evaluator

        return _Recording(Evaluator(plan, tick=tick), writer)

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
