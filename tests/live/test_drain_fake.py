"""The drain's logic with fake rings (no kernel): ordering, loss accounting, progress."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import anyio
import numpy as np

from engine.batch import Batch
from probes.drain import BccProbeSource, ProbeSpec
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


def make() -> tuple[BccProbeSource, FakeProgram, list[FakeRing]]:
    spec = ProbeSpec("fake", "fs.commit", Path("/nonexistent.bpf.c"), PAYLOAD, decode)
    src = BccProbeSource(spec, {"sweep": 0.002, "lost_poll": 0.01})
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
