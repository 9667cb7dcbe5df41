"""Sliding windows kept up to date by the rows entering and leaving, step after step.

A percentile over a long `over` (50 ticks or more) would otherwise re-select
among every row of the window at each step. (One whose rows the rule would not
keep otherwise, like the library's 5m and 10m medians, is sketched instead:
sketch.py.) Steps only move forward, so each key's window changes by a few rows
at each end. Only a band of sorted values around the wanted rank is kept, with
counts of the values below and above it: a step costs O(rows moved + band), not a
copy of the whole window; a key whose rank leaves its band (or whose band grows
too wide) is rebuilt from its rows. Exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from .aggregates import rank_of
from .history import History

__all__ = ["RunningSums", "SortedWindow"]

# (lo, hi, open_hi) -> (values, key codes or None) of the rows in [lo, hi] or [lo, hi)
RowValues = Callable[[int, int, bool], tuple[np.ndarray, np.ndarray | None]]

_MIN_HALF_BAND = 512  # values kept on each side of the rank, at least


def _half_width(n: int) -> int:
    return max(_MIN_HALF_BAND, n // 32)


def _split(
    values: np.ndarray, codes: np.ndarray | None, *, ordered: bool = True
) -> Iterator[tuple[int, np.ndarray]]:
    """(code, values) per key, sorted unless not `ordered` and not keyed; code 0 when
    rows are not keyed."""
    if codes is None:
        yield 0, np.sort(values) if ordered else values
        return
    if codes.shape[0] == 0:
        return
    order = np.lexsort((values, codes))
    cs, vs = codes[order], values[order]
    cuts = np.flatnonzero(cs[1:] != cs[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [cs.shape[0]]))
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        yield int(cs[a]), vs[a:b]


def _without(v: np.ndarray, leaving: np.ndarray) -> np.ndarray | None:
    """v minus one occurrence of each value of leaving (both sorted); None if one is missing."""
    pos = np.searchsorted(v, leaving, "left")
    # Equal values leaving together take consecutive positions.
    pos = pos + (np.arange(leaving.shape[0]) - np.searchsorted(leaving, leaving, "left"))
    if pos[-1] >= v.shape[0] or not np.array_equal(v[pos], leaving):
        return None
    return np.delete(v, pos)


class _Band:
    """One key's window: `below` values < a, the sorted values in [a, b], `above` > b."""

    __slots__ = ("a", "above", "b", "band", "below", "cap")

    def __init__(self, s: np.ndarray, r: int) -> None:
        """From the key's sorted values s, centred on rank r (1-based)."""
        n = int(s.shape[0])
        h = _half_width(n)
        i0, i1 = r - 1 - h, r - 1 + h
        self.a = -math.inf if i0 <= 0 else float(s[i0])
        self.b = math.inf if i1 >= n - 1 else float(s[i1])
        lo = 0 if i0 <= 0 else int(np.searchsorted(s, self.a, "left"))
        hi = n if i1 >= n - 1 else int(np.searchsorted(s, self.b, "right"))
        self.band = s[lo:hi].copy()
        self.below = lo
        self.above = n - hi
        # Many equal values can make a band wide whatever its centre: recentre only
        # once it has doubled past what a rebuild gives.
        self.cap = max(4 * h + 2, 2 * (hi - lo))

    @property
    def n(self) -> int:
        return self.below + int(self.band.shape[0]) + self.above

    def _parts(self, v: np.ndarray) -> tuple[int, np.ndarray, int]:
        """(count below a, sorted values in [a, b], count above b) of some values."""
        under = int(np.count_nonzero(v < self.a)) if self.a != -math.inf else 0
        over = int(np.count_nonzero(v > self.b)) if self.b != math.inf else 0
        if under or over:
            v = v[(v >= self.a) & (v <= self.b)]
        return under, np.sort(v), over

    def add(self, v: np.ndarray) -> None:
        """Values entering (any order)."""
        under, mid, over = self._parts(v)
        self.below += under
        self.above += over
        if mid.shape[0]:
            self.band = np.insert(self.band, np.searchsorted(self.band, mid), mid)

    def remove(self, v: np.ndarray) -> bool:
        """Values leaving (any order); False when one of them is not there."""
        under, mid, over = self._parts(v)
        self.below -= under
        self.above -= over
        if self.below < 0 or self.above < 0:
            return False
        if mid.shape[0]:
            rest = _without(self.band, mid)
            if rest is None:
                return False
            self.band = rest
        return True

    def holds(self, r: int) -> bool:
        """Is rank r inside the band (and the band not grown too wide)?"""
        return 0 <= r - 1 - self.below < self.band.shape[0] and self.band.shape[0] <= self.cap


class SortedWindow:
    """Per key, the band of the window's sorted values around the q-th percentile's rank."""

    def __init__(self, q: float) -> None:
        self.q = q
        self._lo: int | None = None
        self._hi = 0
        self._seen = 0
        self.keys: dict[int, _Band] = {}
        self.rebuilds = 0  # keys rebuilt from their rows (whole-window rebuilds included)

    def count(self, code: int) -> int:
        """Number of values of one key in the window."""
        b = self.keys.get(code)
        return 0 if b is None else b.n

    def update(self, rows: RowValues, lo: int, hi: int, history: History) -> None:
        """Make the window [lo, hi].

        Rows that landed at or behind the previous window's end since the last update
        (late events, interval events emitted after their start) force a rebuild.
        """
        plo = self._lo
        behind = history.min_ts_since(self._seen) <= self._hi
        if behind or plo is None or lo < plo or hi < self._hi or lo > self._hi:
            self._rebuild(rows, lo, hi)
        else:
            touched: set[int] = set()
            ok = True
            if lo > plo:
                ok = self._remove(*rows(plo, lo, True), touched)
            if ok and hi > self._hi:
                self._insert(*rows(self._hi + 1, hi, False), touched)
            if not ok:
                self._rebuild(rows, lo, hi)
            else:
                miss = [c for c in touched if not self._holds(c)]
                if miss:
                    self._rebuild_keys(rows, lo, hi, miss)
        self._lo, self._hi, self._seen = lo, hi, history.appends

    def _holds(self, code: int) -> bool:
        b = self.keys.get(code)
        return b is None or b.holds(rank_of(self.q, b.n))

    def _rebuild(self, rows: RowValues, lo: int, hi: int) -> None:
        v, c = rows(lo, hi, False)
        self.keys = {
            code: _Band(s, rank_of(self.q, int(s.shape[0])))
            for code, s in _split(v, c)
            if s.shape[0]
        }
        self.rebuilds += len(self.keys)

    def _rebuild_keys(self, rows: RowValues, lo: int, hi: int, codes: list[int]) -> None:
        v, c = rows(lo, hi, False)
        if c is not None:
            m = np.isin(c, np.asarray(codes, dtype=np.int64))
            v, c = v[m], c[m]
        for code, s in _split(v, c):
            self.keys[code] = _Band(s, rank_of(self.q, int(s.shape[0])))
            self.rebuilds += 1

    def _remove(self, values: np.ndarray, codes: np.ndarray | None, touched: set[int]) -> bool:
        if values.shape[0] == 0:
            return True
        for code, leaving in _split(values, codes, ordered=False):
            b = self.keys.get(code)
            if b is None or not b.remove(leaving):
                return False
            if b.n == 0:
                del self.keys[code]
            else:
                touched.add(code)
        return True

    def _insert(self, values: np.ndarray, codes: np.ndarray | None, touched: set[int]) -> None:
        if values.shape[0] == 0:
            return
        for code, entering in _split(values, codes, ordered=False):
            b = self.keys.get(code)
            if b is None:
                s = np.sort(entering)
                self.keys[code] = _Band(s, rank_of(self.q, int(s.shape[0])))
            else:
                b.add(entering)
                touched.add(code)

    def percentile(self, codes: np.ndarray) -> np.ndarray:
        """Nearest-rank q-th percentile per requested key code (NaN for an empty key)."""
        out = np.full(codes.shape[0], np.nan)
        keys = self.keys
        for i, code in enumerate(codes.tolist()):
            b = keys.get(code)
            if b is not None:
                out[i] = b.band[rank_of(self.q, b.n) - 1 - b.below]
        return out


# (lo, hi, open_hi) -> (values or None for counting, key codes or None)
RowSums = Callable[[int, int, bool], tuple[np.ndarray | None, np.ndarray | None]]


class RunningSums:
    """Count and sum per key of a sliding window, patched by the rows entering and leaving.

    Field values are integers (ns, bytes, counts) well below 2**53, so sums stay exact
    in float64 however many rows come and go.
    """

    def __init__(self) -> None:
        self._lo: int | None = None
        self._hi = 0
        self._seen = 0
        self.n = np.zeros(1)
        self.s = np.zeros(1)

    def _add(self, values: np.ndarray | None, codes: np.ndarray | None, sign: float) -> None:
        if codes is not None:
            c = codes
        elif values is not None:
            c = np.zeros(values.shape[0], dtype=np.int64)
        else:
            raise ValueError("rows need values or codes")
        if c.shape[0] == 0:
            return
        size = int(c.max()) + 1
        if size > self.n.shape[0]:
            self.n = np.pad(self.n, (0, size - self.n.shape[0]))
            self.s = np.pad(self.s, (0, size - self.s.shape[0]))
        m = self.n.shape[0]
        self.n += sign * np.bincount(c, minlength=m)
        if values is not None:
            self.s += sign * np.bincount(c, weights=values, minlength=m)

    def update(self, rows: RowSums, lo: int, hi: int, history: History) -> None:
        """Make the window [lo, hi] (rebuilt when rows landed behind its previous end)."""
        plo = self._lo
        behind = history.min_ts_since(self._seen) <= self._hi
        if behind or plo is None or lo < plo or hi < self._hi or lo > self._hi:
            self.n, self.s = np.zeros(1), np.zeros(1)
            self._add(*rows(lo, hi, False), 1.0)
        else:
            if lo > plo:
                self._add(*rows(plo, lo, True), -1.0)
            if hi > self._hi:
                self._add(*rows(self._hi + 1, hi, False), 1.0)
        self._lo, self._hi, self._seen = lo, hi, history.appends

    def at(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(count, sum) per requested key code."""
        ok = codes < self.n.shape[0]
        n = np.zeros(codes.shape[0])
        s = np.zeros(codes.shape[0])
        n[ok] = self.n[codes[ok]]
        s[ok] = self.s[codes[ok]]
        return n, s
