"""Trigger windows: one closed window per trigger occurrence, evaluated once due.

rules.md: within D of T: [T.ts − D, T.end + D]; before T within D: [T.ts − D, T.ts];
after T within D: [T.end, T.end + D]; during T: [T.ts, T.end]. A point trigger has
end = ts. A window is due once the watermark reaches its end; one that arrives
already due (a late trigger) is evaluated at the next advance.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..batch import Batch
from ..dsl.plan import Correlation

__all__ = ["Occurrence", "PendingTriggers", "trigger_windows"]


def trigger_windows(
    corr: Correlation, ts: np.ndarray, end: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and ends for trigger rows (vectorized)."""
    e = ts if end is None else end
    d = corr.d
    if corr.kind == "within":
        return ts - d, e + d
    if corr.kind == "before":
        return ts - d, ts.copy()
    if corr.kind == "after":
        return e.copy(), e + d
    if corr.kind == "during":
        return ts.copy(), e.copy()
    raise ValueError(f"unknown correlation {corr.kind!r}")


@dataclass(order=True, slots=True)
class Occurrence:
    end: int
    seq: int
    start: int = field(compare=False)
    batch: Batch = field(compare=False)
    row: int = field(compare=False)
    tvals: dict[str, Any] = field(compare=False)

    def event(self) -> dict[str, Any]:
        """The trigger event for the finding: a point event carries `end` = `ts`."""
        ev = self.batch.row(self.row)
        if "end" not in ev:
            ev = {"stream": ev["stream"], "ts": ev["ts"], "end": ev["ts"], **ev}
        return ev


class PendingTriggers:
    """Occurrences not yet evaluated, by window end, plus recent windows for baselines."""

    def __init__(self) -> None:
        self._heap: list[Occurrence] = []
        self._seq = 0
        # Every known window (start, end, seq), for leaving other windows out of baselines.
        self.windows: list[tuple[int, int, int]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(
        self, starts: np.ndarray, ends: np.ndarray, batch: Batch, tvals: list[dict[str, Any]]
    ) -> None:
        for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            occ = Occurrence(int(e), self._seq, int(s), batch, i, tvals[i])
            heapq.heappush(self._heap, occ)
            self.windows.append((int(s), int(e), self._seq))
            self._seq += 1

    def pop_due(self, limit: float) -> list[Occurrence]:
        out: list[Occurrence] = []
        while self._heap and self._heap[0].end <= limit:
            out.append(heapq.heappop(self._heap))
        return out

    def earliest_end(self) -> int | float:
        return self._heap[0].end if self._heap else float("inf")

    def earliest_start(self) -> int | None:
        """Smallest window start among pending occurrences (history must reach it)."""
        return min((o.start for o in self._heap), default=None)

    def others(self, seq: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows other than seq that overlap [lo, hi], as start and end arrays."""
        sel = [(s, e) for s, e, q in self.windows if q != seq and e >= lo and s <= hi]
        if not sel:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        arr = np.asarray(sel, dtype=np.int64)
        return arr[:, 0], arr[:, 1]

    def forget_before(self, cutoff: int) -> None:
        """Drop recorded windows that ended before cutoff."""
        self.windows = [w for w in self.windows if w[1] >= cutoff]
