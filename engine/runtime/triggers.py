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
        # Every known window (start, end, seq), for leaving other windows out of baselines:
        # int64 arrays (chunks, joined now and then), 24 bytes a window, not a tuple each.
        self._windows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(
        self, starts: np.ndarray, ends: np.ndarray, batch: Batch, tvals: list[dict[str, Any]]
    ) -> None:
        first = self._seq
        for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            occ = Occurrence(int(e), self._seq, int(s), batch, i, tvals[i])
            heapq.heappush(self._heap, occ)
            self._seq += 1
        seqs = np.arange(first, self._seq, dtype=np.int64)
        self._windows.append((starts.astype(np.int64), ends.astype(np.int64), seqs))
        if len(self._windows) > 64:
            self._join()

    def _join(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self._windows:
            e = np.empty(0, dtype=np.int64)
            return e, e, e
        if len(self._windows) > 1:
            parts = self._windows
            s, e, q = (np.concatenate([w[k] for w in parts]) for k in range(3))
            self._windows = [(s, e, q)]
        return self._windows[0]

    @property
    def windows(self) -> list[tuple[int, int, int]]:
        """Every known window as (start, end, seq) (tests, diagnostics)."""
        s, e, q = self._join()
        return list(zip(s.tolist(), e.tolist(), q.tolist(), strict=True))

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
        s, e, q = self._join()
        sel = (q != seq) & (e >= lo) & (s <= hi)
        return s[sel], e[sel]

    def forget_before(self, cutoff: int) -> None:
        """Drop recorded windows that ended before cutoff."""
        s, e, q = self._join()
        keep = e >= cutoff
        if not keep.all():
            self._windows = [(s[keep], e[keep], q[keep])]
