"""Clocks: replay follows the events, live follows wall time held back by sources."""

from __future__ import annotations

from engine.batch import Batch
from engine.clock import INFINITY, LiveClock, ManualClock, ReplayClock

from .helpers import disk, txg


class _Src:
    name = "fake"
    streams = frozenset({"disk.io"})

    def __init__(self, p: int | None) -> None:
        self.p = p

    async def run(self, emit: object) -> None:
        return None

    def progress(self) -> int | None:
        return self.p

    def stats(self) -> dict[str, int]:
        return {}


def _b(*ts: int) -> Batch:
    return Batch.from_rows("disk.io", [disk(t) for t in ts])


def test_replay_clock_stays_below_the_start_of_the_last_batch() -> None:
    c = ReplayClock()
    assert c.watermark() is None
    c.observe(_b(10, 20))
    assert c.watermark() == 9  # another stream's batch may still hold events from 10 on
    c.observe(Batch.from_rows("zfs.txg.sync", [txg(5, 40)]))
    assert c.watermark() == 39
    c.observe(_b(30))  # late: below the watermark, which never goes back
    assert c.late_events == 1 and c.watermark() == 39
    c.finish()
    assert c.watermark() == INFINITY


def test_live_clock_is_now_minus_lateness_held_back_by_sources() -> None:
    now = [1_000]
    slow = _Src(None)
    c = LiveClock(100, [slow], now=lambda: now[0])
    assert c.watermark() == 900  # unknown progress does not hold it back
    slow.p = 500
    assert c.watermark() == 500
    slow.p = 5_000
    now[0] = 2_000
    assert c.watermark() == 1_900
    c.observe(_b(1_000, 1_950))
    assert c.late_events == 1
    c.finish()
    assert c.watermark() == INFINITY


def test_manual_clock() -> None:
    c = ManualClock()
    assert c.watermark() is None
    c.set(7)
    c.observe(_b(3, 7, 9))
    assert (c.watermark(), c.late_events) == (7, 1)
    c.finish()
    assert c.watermark() == INFINITY
