"""The one pipeline: sources -> bus -> evaluator -> sinks, for replay, tests and watch.

Only the sources and the clock differ between replay and live. With a replay clock
sources publish with backpressure (nothing dropped); with a live clock they never
block (drops are counted by the bus) and a timer advances the watermark with wall
time so windows close even when events stop coming.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
import anyio.lowlevel

from .batch import Batch
from .bus import Bus
from .clock import INFINITY, Clock, LiveClock
from .config import SEVERITIES
from .dsl.plan import Plan
from .errors import TraceHoundError
from .findings import Finding
from .source import Source

__all__ = ["EvaluatorLike", "PipelineResult", "Router", "run_pipeline"]


class EvaluatorLike(Protocol):
    def push(self, batch: Batch) -> None: ...

    def advance(self, watermark: int) -> list[Finding]: ...

    def finish(self) -> list[Finding]: ...

    def stats(self) -> Any: ...


class Router(Protocol):
    """Where findings go: `notify` is the rule's sink names (None: every sink)."""

    async def send(self, finding: Finding, notify: Sequence[str] | None = None) -> None: ...


class SinkLike(Protocol):
    name: str

    async def send(self, finding: Finding) -> None: ...


class _ByName:
    """Plain sinks routed by name: a rule's `notify` list picks among them."""

    def __init__(self, sinks: Sequence[SinkLike]) -> None:
        self.sinks = list(sinks)

    async def send(self, finding: Finding, notify: Sequence[str] | None = None) -> None:
        for s in self.sinks:
            if notify is None or s.name in notify:
                await s.send(finding)


@dataclass
class PipelineResult:
    findings: int = 0
    by_severity: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    stats: dict[str, Any] = field(default_factory=dict)

    def worst(self) -> str | None:
        for sev in reversed(SEVERITIES):
            if self.by_severity.get(sev):
                return sev
        return None


def _default_evaluator(plan: Plan, tick: int) -> EvaluatorLike:
    from .runtime.evaluator import Evaluator

    return Evaluator(plan, tick=tick)  # type: ignore[no-any-return,unused-ignore]


async def run_pipeline(
    sources: Sequence[Source],
    plan: Plan,
    sinks: Router | Sequence[SinkLike],
    clock: Clock,
    *,
    tick: int = 100_000_000,
    duration: int | None = None,
    stop: anyio.Event | None = None,
    capacity: int = 64,
    backpressure: bool | None = None,
    evaluator: EvaluatorLike | None = None,
    make_evaluator: Callable[[Plan, int], EvaluatorLike] = _default_evaluator,
    bus: Bus | None = None,
) -> PipelineResult:
    """Run until every source ends (replay), `stop` is set or `duration` ns passed.

    Open windows are closed (`finish`) in every case. Sinks are not closed here:
    their owner decides how long to wait for pending deliveries. Pass `bus` to
    read its statistics while the pipeline runs (metrics).

    Live, the watermark moves with wall time, so windows are closed by a timer once
    per tick rather than after every batch (drains deliver many small batches);
    batches the bus dropped for the evaluator become `lost` events, so the findings
    whose windows they fall in say their evidence may be incomplete.
    """
    router: Router = _ByName(sinks) if isinstance(sinks, Sequence) else sinks
    ev = evaluator if evaluator is not None else make_evaluator(plan, tick)
    live = isinstance(clock, LiveClock) if backpressure is None else not backpressure
    notify = {r.name: r.notify for r in plan.rules}
    bus = bus if bus is not None else Bus()
    sub = bus.subscribe("evaluator", None, capacity)
    result = PipelineResult()
    started = time.monotonic()

    async def deliver(found: list[Finding]) -> None:
        for f in found:
            result.findings += 1
            result.by_severity[f.severity] = result.by_severity.get(f.severity, 0) + 1
            await router.send(f, notify.get(f.rule))

    last_wm: list[int | None] = [None]

    async def advance() -> None:
        wm = clock.watermark()
        if wm is not None and wm != last_wm[0]:
            last_wm[0] = wm
            await deliver(ev.advance(wm))

    async def emit_wait(batch: Batch) -> None:
        await bus.publish(batch)

    async def emit_nowait(batch: Batch) -> None:
        bus.publish_nowait(batch)
        await anyio.lowlevel.checkpoint()

    emit = emit_nowait if live else emit_wait
    sources_scope = anyio.CancelScope()
    helpers_scope = anyio.CancelScope()

    async def run_sources() -> None:
        try:
            with sources_scope:
                async with anyio.create_task_group() as tg:
                    for s in sources:
                        tg.start_soon(s.run, emit)
        finally:
            bus.close()

    async def evaluate() -> None:
        try:
            async for batch in sub:
                clock.observe(batch)
                ev.push(batch)
                if live:
                    drops = sub.take_drops()
                    if drops is not None:
                        ev.push(drops)
                else:
                    await advance()
            clock.finish()
            await deliver(ev.advance(INFINITY))
            await deliver(ev.finish())
        finally:
            helpers_scope.cancel()

    async def stopper() -> None:
        with anyio.move_on_after(None if duration is None else duration / 1e9):
            if stop is None:
                await anyio.sleep_forever()
            else:
                await stop.wait()
        sources_scope.cancel()

    async def timer() -> None:
        while True:
            await anyio.sleep(tick / 1e9)
            await advance()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_sources)
            tg.start_soon(evaluate)
            with helpers_scope:
                async with anyio.create_task_group() as helpers:
                    if stop is not None or duration is not None:
                        helpers.start_soon(stopper)
                    if live:
                        helpers.start_soon(timer)
    except BaseExceptionGroup as group:
        raise _first_user_error(group) from None

    result.stats = {
        "seconds": round(time.monotonic() - started, 3),
        "bus": bus.statistics(),
        "late_events": clock.late_events,
        "sources": _by_name(sources),
        "evaluator": ev.stats(),
    }
    return result


def _by_name(sources: Sequence[Source]) -> dict[str, dict[str, int]]:
    """Each source's stats under its name (`name#2`, … when names repeat)."""
    out: dict[str, dict[str, int]] = {}
    for s in sources:
        name, i = s.name, 1
        while name in out:
            i += 1
            name = f"{s.name}#{i}"
        out[name] = s.stats()
    return out


def _first_user_error(group: BaseExceptionGroup) -> BaseException:
    """A user's mistake (a bad trace line) leaves as itself, not as a group."""
    flat: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for x in e.exceptions:
                walk(x)
        else:
            flat.append(e)

    walk(group)
    for e in flat:
        if isinstance(e, TraceHoundError):
            return e
    return flat[0] if len(flat) == 1 else group
