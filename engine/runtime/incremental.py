"""Sorted values of a sliding window per key, updated by the rows entering and leaving.

A percentile over a long `over` (p50 over 5m at every 100ms step) would otherwise
re-select among every row of the window at each step. Steps only move forward, so
each key's sorted values change by a few rows at each end: O(rows moved) work plus
one linear copy per changed key instead of a selection over the whole window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .aggregates import percentile_rank
from .history import History

__all__ = ["RunningSums", "SortedWindow"]

# (lo, hi, open_hi) -> (values, key codes or None) of the rows in [lo, hi] or [lo, hi)
RowValues = Callable[[int, int, bool], tuple[np.ndarray, np.ndarray | None]]


def _split(values: np.ndarray, codes: np.ndarray | None) -> Iterator[tuple[int, np.ndarray]]:
    """(code, sorted values) per key; code 0 when rows are not keyed."""
    if codes is None:
        yield 0, np.sort(values)
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


def _counted(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted values as (distinct values, counts)."""
    if v.shape[0] == 0:
        return v, np.empty(0, dtype=np.int64)
    cut = np.empty(v.shape[0], dtype=bool)
    cut[0] = True
    np.not_equal(v[1:], v[:-1], out=cut[1:])
    first = np.flatnonzero(cut)
    return v[first], np.diff(np.append(first, v.shape[0]))


class SortedWindow:
    """Per key, the window's values sorted.

    Windows holding few distinct values (queue depths, sizes, counts) are kept as
    sorted distinct values with their counts, so a step touches arrays of distinct
    values, not of rows; the others (latencies) as plain sorted values. Which one
    is decided at each rebuild from the window's own values.
    """

    def __init__(self) -> None:
        self._lo: int | None = None
        self._hi = 0
        self._seen = 0
        self.counted = False
        self.groups: dict[int, Any] = {}  # sorted values, or (distinct values, counts)

    def values(self, code: int) -> np.ndarray:
        """The sorted values of one key (empty when it has none)."""
        g = self.groups.get(code)
        if g is None:
            return np.empty(0)
        return np.repeat(g[0], g[1]) if self.counted else g

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
            if lo > plo and not self._remove(*rows(plo, lo, True)):
                self._rebuild(rows, lo, hi)
            elif hi > self._hi:
                self._insert(*rows(self._hi + 1, hi, False))
        self._lo, self._hi, self._seen = lo, hi, history.appends

    def _rebuild(self, rows: RowValues, lo: int, hi: int) -> None:
        v, c = rows(lo, hi, False)
        plain = {code: vals for code, vals in _split(v, c) if vals.shape[0]}
        counted = {code: _counted(vals) for code, vals in plain.items()}
        distinct = sum(int(u.shape[0]) for u, _ in counted.values())
        self.counted = 4 * distinct <= v.shape[0]
        self.groups = counted if self.counted else plain

    def _remove(self, values: np.ndarray, codes: np.ndarray | None) -> bool:
        if values.shape[0] == 0:
            return True
        if not self.counted:
            return self._remove_plain(values, codes)
        for code, leaving in _split(values, codes):
            g = self.groups.get(code)
            if g is None:
                return False
            u, c = g
            lu, lc = _counted(leaving)
            idx = np.searchsorted(u, lu)
            if idx[-1] >= u.shape[0] or not np.array_equal(u[idx], lu):
                return False
            c = c.copy()
            c[idx] -= lc
            if (c[idx] < 0).any():
                return False
            if (c[idx] == 0).any():
                keep = c > 0
                u, c = u[keep], c[keep]
            if u.shape[0]:
                self.groups[code] = (u, c)
            else:
                del self.groups[code]
        return True

    def _remove_plain(self, values: np.ndarray, codes: np.ndarray | None) -> bool:
        for code, leaving in _split(values, codes):
            v = self.groups.get(code)
            rest = None if v is None else _without(v, leaving)
            if rest is None:
                return False
            if rest.shape[0]:
                self.groups[code] = rest
            else:
                del self.groups[code]
        return True

    def _insert(self, values: np.ndarray, codes: np.ndarray | None) -> None:
        if values.shape[0] == 0:
            return
        if not self.counted:
            for code, entering in _split(values, codes):
                v = self.groups.get(code)
                if v is None:
                    self.groups[code] = entering
                else:
                    self.groups[code] = np.insert(v, np.searchsorted(v, entering), entering)
            return
        for code, entering in _split(values, codes):
            eu, ec = _counted(entering)
            g = self.groups.get(code)
            if g is None:
                self.groups[code] = (eu, ec)
                continue
            u, c = g
            idx = np.searchsorted(u, eu)
            here = idx < u.shape[0]
            here[here] = u[idx[here]] == eu[here]
            c = c.copy()
            c[idx[here]] += ec[here]
            if not here.all():
                new = ~here
                u = np.insert(u, idx[new], eu[new])
                c = np.insert(c, idx[new], ec[new])
            self.groups[code] = (u, c)

    def percentile(self, q: float, codes: np.ndarray) -> np.ndarray:
        """Nearest-rank percentile per requested key code (NaN for an empty key)."""
        out = np.full(codes.shape[0], np.nan)
        for i, code in enumerate(codes.tolist()):
            g = self.groups.get(code)
            if g is None:
                continue
            if not self.counted:
                n = g.shape[0]
                out[i] = g[int(percentile_rank(q, np.array([n]))[0]) - 1]
            else:
                cum = np.cumsum(g[1])
                r = int(percentile_rank(q, cum[-1:])[0])
                out[i] = g[0][int(np.searchsorted(cum, r, "left"))]
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
