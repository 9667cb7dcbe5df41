"""The one pipeline: push/advance order, finish, notify routing, stop, errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.batch import Batch
from engine.clock import INFINITY, LiveClock, ManualClock, ReplayClock
from engine.dsl import compile_text
from engine.dsl.plan import Plan
from engine.errors import TraceError
from engine.findings import Finding
from engine.pipeline import run_pipeline
from engine.source import Emit
from engine.sources import TraceSource

from .helpers import MS, disk, txg, write_jsonl


def _finding(rule: str, sev: str = "warning") -> Finding:
    return Finding(
        rule=rule,
        severity=sev,
        ts=1,
        window=(0, 1),
        key={},
        values={},
        trigger=None,
        evidence={},
        summary="s",
        lost=0,
    )


class FakeEvaluator:
    def __init__(self, at_finish: list[Finding] | None = None) -> None:
        self.log: list[Any] = []
        self.at_finish = at_finish or []

    def push(self, batch: Batch) -> None:
        self.log.append(("push", batch.stream, int(batch.emit[-1])))

    def advance(self, watermark: int) -> list[Finding]:
        self.log.append(("advance", watermark))
        return []

    def finish(self) -> list[Finding]:
        self.log.append(("finish",))
        return self.at_finish

    def stats(self) -> dict[str, int]:
        return {}


class Sink:
    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[str] = []

    async def send(self, finding: Finding) -> None:
        self.got.append(finding.rule)


def _plan(notify: dict[str, tuple[str, ...] | None]) -> Plan:
    from dataclasses import replace

    base = compile_text("rule r\n when count(disk.io) > 0 over 1s\n", "t.rules").rules[0]
    return Plan(tuple(replace(base, name=n, notify=v) for n, v in notify.items()))


async def test_replay_pushes_in_order_advances_and_finishes(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "t.jsonl", [disk(30), txg(5, 20), disk(10)])
    ev = FakeEvaluator()
    res = await run_pipeline([TraceSource([str(p)])], Plan(()), [], ReplayClock(), evaluator=ev)
    assert ev.log == [
        ("push", "disk.io", 10),
        ("advance", 9),
        ("push", "zfs.txg.sync", 20),
        ("advance", 19),
        ("push", "disk.io", 30),
        ("advance", 29),
        ("advance", INFINITY),
        ("finish",),
    ]
    assert res.stats["bus"]["streams"]["disk.io"]["events"] == 2
    assert res.stats["sources"]["trace"]["events"] == 3


async def test_findings_routed_by_notify_and_counted(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "t.jsonl", [disk(1)])
    ev = FakeEvaluator([_finding("all", "critical"), _finding("ops_only"), _finding("none")])
    ops, pager = Sink("ops"), Sink("pager")
    plan = _plan({"all": None, "ops_only": ("ops",), "none": ()})
    res = await run_pipeline(
        [TraceSource([str(p)])], plan, [ops, pager], ReplayClock(), evaluator=ev
    )
    assert ops.got == ["all", "ops_only"] and pager.got == ["all"]
    assert res.findings == 3 and res.by_severity["critical"] == 1 and res.worst() == "critical"


class EndlessSource:
    name = "endless"
    streams = frozenset({"disk.io"})

    def __init__(self) -> None:
        self.sent = 0

    async def run(self, emit: Emit) -> None:
        while True:
            await emit(Batch.from_rows("disk.io", [disk(self.sent * MS)]))
            self.sent += 1
            await anyio.sleep(0)

    def progress(self) -> int | None:
        return None

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent}


async def test_stop_event_ends_a_live_run_and_closes_windows() -> None:
    stop = anyio.Event()
    src = EndlessSource()
    ev = FakeEvaluator([_finding("x")])
    sink = Sink("s")

    async def stopper() -> None:
        while src.sent < 20:
            await anyio.sleep(0)
        stop.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stopper)
        res = await run_pipeline(
            [src], Plan(()), [sink], LiveClock(0, now=lambda: 10**12), stop=stop, evaluator=ev
        )
    assert ev.log[-1] == ("finish",) and sink.got == ["x"]
    pushed = sum(1 for e in ev.log if e[0] == "push")
    dropped = res.stats["bus"]["subscribers"]["evaluator"]["dropped_events"]
    assert pushed + dropped == res.stats["bus"]["streams"]["disk.io"]["events"] >= 20


async def test_trace_error_leaves_as_itself(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "t.jsonl", [disk(1), "nope"])
    with pytest.raises(TraceError) as ei:
        await run_pipeline(
            [TraceSource([str(p)])], Plan(()), [], ManualClock(), evaluator=FakeEvaluator()
        )
    assert ei.value.line == 2


async def test_real_evaluator_end_to_end(tmp_path: Path) -> None:
    plan = compile_text(
        "rule stall\n when p99(disk.io.latency) > 1ms\n within 200ms of zfs.txg.sync\n",
        "t.rules",
    )
    ev = [txg(1000 * MS, 1190 * MS)] + [disk(t * MS, latency=2 * MS) for t in range(1100, 1150)]
    ev += [disk(t * MS, latency=20_000) for t in range(3000, 3100)]
    p = write_jsonl(tmp_path / "t.jsonl", ev)
    found: list[Finding] = []

    class Collect:
        async def send(self, f: Finding, notify: Sequence[str] | None = None) -> None:
            found.append(f)

    res = await run_pipeline([TraceSource([str(p)])], plan, Collect(), ReplayClock())
    assert [(f.rule, f.window) for f in found] == [("stall", (800 * MS, 1390 * MS))]
    assert res.findings == 1


async def _findings(traces: list[str], rules: str, interleave: str) -> list[bytes]:
    from engine.dsl import compile_paths
    from engine.replay import replay

    found: list[bytes] = []

    class Collect:
        async def send(self, f: Finding, notify: Sequence[str] | None = None) -> None:
            found.append(f.to_json())

    mode: Any = interleave
    await replay(traces, compile_paths([rules]), Collect(), interleave=mode)
    return found


@pytest.mark.parametrize("example", ["zfs-txg-latency", "memcg-leak-oom", "periodic-jbd2"])
async def test_slices_and_strict_order_give_the_same_findings(example: str) -> None:
    folder = Path(__file__).resolve().parents[2] / "examples" / example
    trace = [str(folder / "trace.jsonl.gz")]
    rules = str(next(folder.glob("*.rules")))
    ordered = await _findings(trace, rules, "ordered")
    assert ordered
    assert await _findings(trace, rules, "slices") == ordered


class QuietSource:
    """Emits one batch, then stays silent (a live source with nothing to say)."""

    name = "quiet"
    streams = frozenset({"disk.io"})

    async def run(self, emit: Emit) -> None:
        await emit(Batch.from_rows("disk.io", [disk(5 * MS)]))
        await anyio.sleep_forever()

    def progress(self) -> int | None:
        return None

    def stats(self) -> dict[str, int]:
        return {}


async def test_live_timer_advances_the_watermark_without_events() -> None:
    now = [10 * MS]
    ev = FakeEvaluator()
    stop = anyio.Event()

    async def later() -> None:
        while ("advance", 8 * MS) not in ev.log:  # first batch: now - lateness
            await anyio.sleep(0.001)
        now[0] = 50 * MS  # wall time moves on; no event comes
        while ("advance", 48 * MS) not in ev.log:
            await anyio.sleep(0.001)
        stop.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        await run_pipeline(
            [QuietSource()],
            Plan(()),
            [],
            LiveClock(2 * MS, now=lambda: now[0]),
            tick=1_000_000,
            stop=stop,
            evaluator=ev,
        )
    assert ev.log[0] == ("push", "disk.io", 5 * MS)
    assert ev.log[-2:] == [("advance", INFINITY), ("finish",)]
