"""Event-time clocks: the watermark that tells the runtime which windows may close.

The pipeline calls `observe(batch)` for every batch it hands the runtime and asks
`watermark()` before each `advance`. Replay and live differ only here: replay's
watermark follows the events, live's follows wall time minus a lateness bound,
held back by any source that is behind. Late events (below the watermark when they
arrive) are counted, never dropped: the runtime still evaluates late triggers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from .batch import Batch
from .source import Source

__all__ = ["INFINITY", "Clock", "LiveClock", "ManualClock", "ReplayClock"]

INFINITY = 2**63 - 1  # the watermark once input has ended: every window may close


class Clock(Protocol):
    late_events: int

    def observe(self, batch: Batch) -> None: ...

    def watermark(self) -> int | None: ...

    def finish(self) -> None: ...


class _Counting:
    """Shared late-event counting against the current watermark."""

    late_events = 0

    def watermark(self) -> int | None:
        raise NotImplementedError

    def _count_late(self, batch: Batch) -> None:
        wm = self.watermark()
        if wm is not None and len(batch):
            self.late_events += int(np.count_nonzero(batch.emit < wm))


class ReplayClock(_Counting):
    """Watermark = one below the first emission time of the last batch observed;
    INFINITY after `finish`.

    Sound for any source whose batches are each sorted and come in order of their
    first event (both TraceSource modes): nothing still to come is earlier than the
    first event of the batch just seen. It uses the first, not the last, event so
    that streams overlapping in time within a slice are never late.
    """

    def __init__(self) -> None:
        self.late_events = 0
        self._wm: int | None = None
        self._done = False

    def observe(self, batch: Batch) -> None:
        if not len(batch):
            return
        self._count_late(batch)
        first = int(batch.emit[0]) - 1
        if self._wm is None or first > self._wm:
            self._wm = first

    def watermark(self) -> int | None:
        return INFINITY if self._done else self._wm

    def finish(self) -> None:
        self._done = True


class LiveClock(_Counting):
    """Watermark = min(now - lateness, every source's progress() that is known)."""

    def __init__(
        self,
        lateness: int,
        sources: Sequence[Source] = (),
        now: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.late_events = 0
        self.lateness = lateness
        self._sources = list(sources)
        self._now = now
        self._done = False

    def observe(self, batch: Batch) -> None:
        self._count_late(batch)

    def watermark(self) -> int | None:
        if self._done:
            return INFINITY
        wm = self._now() - self.lateness
        for s in self._sources:
            p = s.progress()
            if p is not None:
                wm = min(wm, p)
        return wm

    def finish(self) -> None:
        self._done = True


class ManualClock(_Counting):
    """A watermark set by hand, for tests."""

    def __init__(self, start: int | None = None) -> None:
        self.late_events = 0
        self.value = start

    def set(self, value: int) -> None:
        self.value = value

    def observe(self, batch: Batch) -> None:
        self._count_late(batch)

    def watermark(self) -> int | None:
        return self.value

    def finish(self) -> None:
        self.value = INFINITY
