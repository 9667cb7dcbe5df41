"""The drain's logic with fake rings (no kernel): ordering, loss accounting, progress,
and the one sweeper every probe on an event loop shares."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from engine.batch import Batch
from probes.drain import BccProbeSource, ProbeSpec, sweep_for
from probes.jbd2 import PAYLOAD, decode
from probes.perf_ring import RingRead


class FakeRing:
    """Scripted reads; its fd is a pipe the test can make readable."""

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.fd, self.wfd = os.pipe()
        self.script: list[RingRead] = []
        self.closed = False

    def pending(self) -> int:
        """Like a real ring: the sweeper reads only a ring whose head moved."""
        return 1 if self.script else 0

    def read(self) -> RingRead:
        os.set_blocking(self.fd, False)
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 100)
        if self.script:
            return self.script.pop(0)
        return RingRead(np.empty(0, dtype=PAYLOAD), 0, 0)

    def close(self) -> None:
        self.closed = True
        os.close(self.fd)
        os.close(self.wfd)


class FakeProgram:
    def __init__(self, ncpu: int) -> None:
        self.lost = [0] * ncpu
        self.closed = False

    def percpu_counter(self, name: str = "th_lost") -> list[int]:
        return list(self.lost)

    def close(self) -> None:
        self.closed = True


def commits(starts: list[int]) -> np.ndarray:
    p = np.zeros(len(starts), dtype=PAYLOAD)
    p["ts"] = starts
    p["end"] = [s + 10 for s in starts]
    p["dev"] = 7 << 20
    p["tid"] = range(len(starts))
    return p


def make(
    options: dict[str, float] | None = None, name: str = "fake", decoder: Any = decode
) -> tuple[BccProbeSource, FakeProgram, list[FakeRing]]:
    spec = ProbeSpec(name, "fs.commit", Path("/nonexistent.bpf.c"), PAYLOAD, decoder)
    src = BccProbeSource(spec, {"sweep": 0.002, "lost_poll": 0.01} if options is None else options)
    prog = FakeProgram(2)
    prog.lost = [5, 0]  # refused before the rings were installed: not a loss
    rings = [FakeRing(0), FakeRing(1)]
    src.adopt(prog, rings)
    return src, prog, rings


async def test_batches_sorted_and_losses_counted_once() -> None:
    src, prog, rings = make()
    got: list[Batch] = []

    async def emit(b: Batch) -> None:
        got.append(b)

    async with anyio.create_task_group() as tg:
        tg.start_soon(src.run, emit)
        rings[0].script.append(RingRead(commits([30, 10, 20]), 0, 0))
        os.write(rings[0].wfd, b"x")  # a watermark wakeup
        await anyio.sleep(0.05)
        # the ring reports 4 lost; the BPF map saw the same 4 plus 2 at the burst's end
        rings[1].script.append(RingRead(commits([40]), 4, 0))
        prog.lost[1] = 6
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    data = [b for b in got if b.stream == "fs.commit"]
    lost = [b for b in got if b.stream == "lost"]
    assert [b.emit.tolist() for b in data] == [[20, 30, 40], [50]]
    assert sum(int(b.columns["count"].sum()) for b in lost) == 6
    assert {p for b in lost for p in b.columns["probe"]} == {"fake"}
    assert src.stats()["lost"] == 6 and src.stats()["events"] == 4
    assert prog.closed and all(r.closed for r in rings), "run() closes what it drained"


async def test_progress_follows_the_sweeps() -> None:
    src, _, _rings = make()
    t0 = time.monotonic_ns()

    async def emit(b: Batch) -> None:
        pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(src.run, emit)
        await anyio.sleep(0.05)
        p1 = src.progress()
        await anyio.sleep(0.05)
        p2 = src.progress()
        tg.cancel_scope.cancel()
    assert p1 is not None and p2 is not None
    assert t0 - 1_000_000 <= p1 <= p2 <= time.monotonic_ns()
    assert p2 - p1 > 20_000_000, "idle rings are swept, so progress keeps moving"


class StalledRing(FakeRing):
    """A ring buffer whose reads stop at a record still being written (BUSY)."""

    stalled = True

    def pending(self) -> int:
        return 1 if (self.script or self.stalled) else 0

    def read(self) -> RingRead:
        r = super().read()
        r.complete = not self.stalled
        return r


async def test_progress_waits_for_a_record_still_being_written() -> None:
    spec = ProbeSpec("fake", "fs.commit", Path("/nonexistent.bpf.c"), PAYLOAD, decode)
    src = BccProbeSource(spec, {"sweep": 0.002, "lost_poll": 0.01})
    ring = StalledRing(-1)
    src.adopt(FakeProgram(2), [ring, FakeRing(0)])

    async def emit(b: Batch) -> None:
        pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(src.run, emit)
        await anyio.sleep(0.03)
        p1 = src.progress()
        await anyio.sleep(0.05)
        p2 = src.progress()
        ring.stalled = False
        await anyio.sleep(0.05)
        p3 = src.progress()
        tg.cancel_scope.cancel()
    assert p1 is not None and p2 is not None and p3 is not None
    assert p2 == p1, "samples behind a BUSY record may be older than any later read"
    assert p3 - p2 > 20_000_000, "once the record is committed and read, progress moves"


async def test_stop_still_delivers_what_reached_the_rings() -> None:
    spec = ProbeSpec("fake", "fs.commit", Path("/nonexistent.bpf.c"), PAYLOAD, decode)
    src = BccProbeSource(spec, {"sweep": 60.0, "lost_poll": 60.0})
    rings = [FakeRing(0)]
    src.adopt(FakeProgram(1), rings)
    got: list[Batch] = []

    async def emit(b: Batch) -> None:
        got.append(b)

    async with anyio.create_task_group() as tg:
        tg.start_soon(src.run, emit)
        await anyio.sleep(0.05)
        rings[0].script.append(RingRead(commits([1, 2]), 0, 0))  # below the watermark
        await anyio.sleep(0.05)
        assert got == [], "no wakeup and no sweep yet"
        tg.cancel_scope.cancel()
    assert [b.ts.tolist() for b in got if b.stream == "fs.commit"] == [[1, 2]]


async def test_a_sweep_emits_one_sorted_batch_for_all_rings() -> None:
    src, _, rings = make()
    got: list[Batch] = []

    async def emit(b: Batch) -> None:
        got.append(b)

    async with anyio.create_task_group() as tg:
        tg.start_soon(src.run, emit)
        await anyio.sleep(0.02)
        rings[0].script.append(RingRead(commits([5, 1]), 0, 0))
        rings[1].script.append(RingRead(commits([3]), 0, 0))
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    data = [b for b in got if b.stream == "fs.commit"]
    assert [b.ts.tolist() for b in data] == [[1, 3, 5]]


def _leaves(e: BaseException) -> list[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        return [x for sub in e.exceptions for x in _leaves(sub)]
    return [e]


class Collect:
    def __init__(self) -> None:
        self.got: list[Batch] = []

    async def __call__(self, b: Batch) -> None:
        self.got.append(b)

    def ts(self, stream: str = "fs.commit") -> list[int]:
        return [t for b in self.got if b.stream == stream for t in b.ts.tolist()]

    def lost(self) -> int:
        return sum(int(b.columns["count"].sum()) for b in self.got if b.stream == "lost")


async def test_one_sweeper_sweeps_every_probe_at_the_shortest_period() -> None:
    fast, _, _ = make({"sweep": 0.005, "lost_poll": 60.0})
    slow, _, slow_rings = make({"sweep": 60.0, "lost_poll": 60.0}, name="slow")
    out = Collect()
    async with anyio.create_task_group() as tg:
        tg.start_soon(slow.run, out)  # joins first and leads with a 60 s period...
        await anyio.sleep(0.02)
        tg.start_soon(fast.run, out)  # ...until a member asks for less
        await anyio.sleep(0.02)
        slow_rings[1].script.append(RingRead(commits([7]), 0, 0))  # no fd wakeup
        await anyio.sleep(0.2)
        assert out.ts() == [7], "the slow probe's ring is swept with the fast one's"
        tg.cancel_scope.cancel()


async def test_the_sweep_goes_on_when_its_leader_stops() -> None:
    first, _, _ = make({"sweep": 0.005, "lost_poll": 60.0})
    second, _, rings = make({"sweep": 0.005, "lost_poll": 60.0}, name="second")
    out = Collect()
    async with anyio.create_task_group() as tg:
        first_scope = anyio.CancelScope()

        async def run_first() -> None:
            with first_scope:
                await first.run(out)

        tg.start_soon(run_first)
        await anyio.sleep(0.02)
        tg.start_soon(second.run, out)
        await anyio.sleep(0.02)
        first_scope.cancel()  # the leader leaves
        await anyio.sleep(0.02)
        rings[0].script.append(RingRead(commits([3]), 0, 0))
        await anyio.sleep(0.2)
        assert out.ts() == [3], "another member took the sweep over"
        tg.cancel_scope.cancel()


async def test_a_probe_failing_in_the_shared_sweep_fails_its_own_run() -> None:
    def broken(p: np.ndarray) -> Batch:
        raise ValueError("bad sample")

    good, _, good_rings = make({"sweep": 0.005, "lost_poll": 60.0})
    bad, _, bad_rings = make({"sweep": 0.005, "lost_poll": 60.0}, name="bad", decoder=broken)
    out = Collect()
    failed: list[BaseException] = []

    async def run_bad() -> None:
        try:
            await bad.run(out)
        except* ValueError as group:
            failed.extend(_leaves(group))

    async with anyio.create_task_group() as tg:
        tg.start_soon(good.run, out)  # the leader: the bad probe is swept from its task
        await anyio.sleep(0.02)
        tg.start_soon(run_bad)
        await anyio.sleep(0.02)
        bad_rings[0].script.append(RingRead(commits([1]), 0, 0))
        await anyio.sleep(0.1)
        assert [str(e) for e in failed] == ["bad sample"]
        good_rings[0].script.append(RingRead(commits([2]), 0, 0))
        await anyio.sleep(0.1)
        assert out.ts() == [2], "the other probe is still drained"
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("full", [True, False])
async def test_loss_counters_are_read_when_a_ring_was_full(full: bool) -> None:
    src, prog, rings = make({"sweep": 0.005, "lost_poll": 60.0})
    out = Collect()
    async with anyio.create_task_group() as tg:
        tg.start_soon(src.run, out)
        await anyio.sleep(0.05)  # the first sweep's safety poll is behind us
        rings[0].script.append(RingRead(commits([1]), 0, 0, full=full))
        prog.lost[0] += 3  # refused at the end of a burst: no LOST record in the ring
        await anyio.sleep(0.1)
        assert out.lost() == (3 if full else 0)
        tg.cancel_scope.cancel()
    assert out.lost() == 3, "the stop reads the counters whatever was seen"


def test_idle_rings_back_off_within_the_lateness() -> None:
    sweep, idle = sweep_for(50_000_000)
    assert sweep < idle < 0.05, "a lone event reaches the bus within the 50 ms lateness"
    src, _, _ = make({})
    assert src.sweep_period() == sweep
    src._busy = False
    assert src.sweep_period() == idle
    fixed, _, _ = make({"sweep": 0.01})
    fixed._busy = False
    assert fixed.sweep_period() == 0.01, "an explicit sweep is kept"


class SharedRing(FakeRing):
    """Like the BPF ring buffer: one ring for every CPU (cpu -1), an edge-triggered fd
    that the drain must re-arm with ack() before it reads."""

    def __init__(self) -> None:
        super().__init__(-1)
        self.acks = 0

    def ack(self) -> None:
        self.acks += 1
        os.set_blocking(self.fd, False)
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 100)

    def read(self) -> RingRead:  # the read leaves the fd alone: only ack() re-arms it
        if self.script:
            return self.script.pop(0)
        return RingRead(np.empty(0, dtype=PAYLOAD), 0, 0)


async def test_one_ring_for_all_cpus_counts_every_cpus_loss() -> None:
    spec = ProbeSpec("shared", "fs.commit", Path("/nonexistent.bpf.c"), PAYLOAD, decode)
    src = BccProbeSource(spec, {"sweep": 60.0, "lost_poll": 60.0})
    prog = FakeProgram(4)
    prog.lost = [0, 2, 0, 1]  # before the drain started: not its loss
    ring = SharedRing()
    src.adopt(prog, [ring])
    out = Collect()
    async with anyio.create_task_group() as tg:
        tg.start_soon(src.run, out)
        await anyio.sleep(0.02)
        ring.script.append(RingRead(commits([2, 1]), 0, 0, full=True))
        prog.lost[2] += 5  # refused on CPUs the ring has no number for
        prog.lost[3] += 1
        os.write(ring.wfd, b"x")  # the kernel's wakeup at the watermark
        await anyio.sleep(0.05)
        assert out.ts() == [1, 2]
        assert out.lost() == 6, "the loss of every CPU, from the BPF count alone"
        assert ring.acks == 1, "the wakeup was acknowledged (else the fd stays readable)"
        assert src.lost_by_cpu() == {0: 0, 1: 2, 2: 5, 3: 2}
        tg.cancel_scope.cancel()
