"""Sorted values of a sliding window, updated by the rows that enter and leave it.

A percentile over a long `over` (p50 over 5m at every 100ms step) would otherwise
re-select among every row of the window at each step. Steps only move forward, so
the window's sorted values change by a few rows at each end: O(rows moved) work
plus one linear merge instead of a selection over the whole window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["SortedWindow"]

# (lo, hi, open_hi) -> values of the rows in [lo, hi] (or [lo, hi)), ts order
RowValues = Callable[[int, int, bool], np.ndarray]


class SortedWindow:
    def __init__(self) -> None:
        self._lo: int | None = None
        self._hi = 0
        self._version = -1
        self.values = np.empty(0, dtype=np.float64)

    def update(self, rows: RowValues, lo: int, hi: int, version: int) -> np.ndarray:
        """The sorted values of the rows in [lo, hi].

        `version` changes whenever rows were inserted behind the newest row (late or
        out-of-order data); the window is then rebuilt rather than patched.
        """
        plo = self._lo
        if plo is None or version != self._version or lo < plo or hi < self._hi or lo > self._hi:
            self.values = np.sort(rows(lo, hi, False))
        else:
            leaving = np.sort(rows(plo, lo, True)) if lo > plo else None
            if leaving is not None and leaving.shape[0] and not self._remove(leaving):
                self.values = np.sort(rows(lo, hi, False))
                self._lo, self._hi, self._version = lo, hi, version
                return self.values
            if hi > self._hi:
                entering = rows(self._hi + 1, hi, False)
                if entering.shape[0]:
                    merged = np.concatenate((self.values, np.sort(entering)))
                    self.values = np.sort(merged, kind="stable")  # two sorted runs: linear
        self._lo, self._hi, self._version = lo, hi, version
        return self.values

    def _remove(self, leaving: np.ndarray) -> bool:
        """Delete one occurrence of each value (sorted); False if one is missing."""
        v = self.values
        pos = np.searchsorted(v, leaving, "left")
        # Equal values leaving together take consecutive positions.
        pos = pos + (np.arange(leaving.shape[0]) - np.searchsorted(leaving, leaving, "left"))
        if pos.shape[0] and (pos[-1] >= v.shape[0] or not np.array_equal(v[pos], leaving)):
            return False
        self.values = np.delete(v, pos)
        return True
