"""Compact occurrence logs of candidate streams, for explain.

Explain widens every occurrence by D and measures the union, so occurrences closer
than 2·D apart can be merged beforehand without changing coverage or support.
A log keeps a bounded number of merged intervals (the most recent).
"""

from __future__ import annotations

import numpy as np

from .explain import merge_intervals

__all__ = ["OccurrenceLog"]


class OccurrenceLog:
    def __init__(self, gap: int, capacity: int = 4096) -> None:
        self._half = gap // 2
        self._cap = capacity
        self._starts: list[np.ndarray] = []
        self._ends: list[np.ndarray] = []
        self._n = 0
        self._raw: list[tuple[np.ndarray, np.ndarray]] = []
        self._raw_rows = 0

    def __len__(self) -> int:
        return self._n + self._raw_rows

    def add(self, ts: np.ndarray, end: np.ndarray | None) -> None:
        """Buffer occurrences; merged in bulk once enough have arrived."""
        self._raw.append((ts, ts if end is None else end))
        self._raw_rows += int(ts.shape[0])
        if len(self._raw) >= 256:
            self._absorb()

    def _absorb(self) -> None:
        if not self._raw:
            return
        ts = np.concatenate([r[0] for r in self._raw])
        e = np.concatenate([r[1] for r in self._raw])
        self._raw, self._raw_rows = [], 0
        lo, hi = merge_intervals(ts - self._half, e + self._half)
        self._starts.append(lo + self._half)
        self._ends.append(hi - self._half)
        self._n += int(lo.shape[0])
        if self._n > 2 * self._cap or len(self._starts) > 64:
            self._compact()

    def _compact(self) -> None:
        s, e = self.arrays()
        s, e = merge_intervals(s - self._half, e + self._half)
        s, e = s[-self._cap :] + self._half, e[-self._cap :] - self._half
        self._starts, self._ends, self._n = [s], [e], int(s.shape[0])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        self._absorb()
        if not self._starts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        if len(self._starts) > 1:
            self._starts = [np.concatenate(self._starts)]
            self._ends = [np.concatenate(self._ends)]
        return self._starts[0], self._ends[0]
