"""Key codes: one dense integer per distinct value tuple of some `by` fields.

Codes are assigned when rows arrive (a Python step per distinct tuple of a batch,
never per event) and stored beside the rows, so a window groups its rows with
`np.bincount` on the codes. Codes of tuples not seen for a while are released and
reused, which keeps every per-code array bounded under key churn.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["KeyIndex", "SeenTimes", "absent_mask", "factorize", "factorized"]

_NEVER = np.iinfo(np.int64).min
_FREED = np.iinfo(np.int64).max  # never "before" any cutoff, so released only once


def absent_mask(col: np.ndarray) -> np.ndarray:
    """True where an optional value is absent (None in object columns, NaN in numbers)."""
    if col.dtype == object:
        return np.fromiter((v is None for v in col), dtype=bool, count=col.shape[0])
    return np.isnan(col)


# Object columns factorized lately, by id (while the column lives): a batch's `op`
# is read by several `where` predicates and its `dev` by key columns; one pass each.
_FACTORS: dict[int, tuple[weakref.ref[np.ndarray], np.ndarray, list[Any]]] = {}
_CACHE_MIN_ROWS = 256


def factorize(col: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Local codes (-1 = absent, read-only) and distinct values of one column."""
    k = id(col)
    hit = _FACTORS.get(k)
    if hit is not None and hit[0]() is col:
        return hit[1], hit[2]
    codes, uniq = _factorize(col)
    codes.flags.writeable = False
    if col.dtype == object and col.shape[0] >= _CACHE_MIN_ROWS:
        _FACTORS[k] = (weakref.ref(col, lambda _, k=k: _FACTORS.pop(k, None)), codes, uniq)  # type: ignore[misc]
    return codes, uniq


def factorized(col: np.ndarray) -> bool:
    """Is this column's factorization at hand (a table lookup away)?"""
    hit = _FACTORS.get(id(col))
    return hit is not None and hit[0]() is col


def _factorize(col: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Local codes (-1 = absent) and the distinct values, for one column of a batch."""
    n = col.shape[0]
    if col.dtype == object:
        uniq = [v for v in set(col.tolist()) if v is not None]
        local = {v: i for i, v in enumerate(uniq)}
        local[None] = -1
        codes = np.fromiter(map(local.__getitem__, col), dtype=np.int64, count=n)
        return codes, uniq
    present = ~np.isnan(col)
    codes = np.full(n, -1, dtype=np.int64)
    vals, inv = np.unique(col[present], return_inverse=True)
    codes[present] = inv
    return codes, [int(v) if float(v).is_integer() else float(v) for v in vals]


class KeyIndex:
    """Value tuples of `fields` <-> codes, with the last time each code was seen."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(fields)
        self._codes: dict[tuple[Any, ...], int] = {}
        self._values: list[tuple[Any, ...] | None] = []
        self._free: list[int] = []
        self.last_seen = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        """Number of live codes."""
        return len(self._codes)

    @property
    def size(self) -> int:
        """Upper bound of codes (length of per-code arrays)."""
        return len(self._values)

    def values(self, code: int) -> tuple[Any, ...]:
        v = self._values[code]
        if v is None:
            raise KeyError(code)
        return v

    def lookup(self, values: tuple[Any, ...]) -> int:
        """The code of a value tuple, or -1 when it is not known."""
        return self._codes.get(values, -1)

    def intern(self, values: tuple[Any, ...], ts: int) -> int:
        """The code of a value tuple seen at ts, assigned if new."""
        code = self._intern(values)
        self._touch(np.array([code], dtype=np.int64), np.array([ts], dtype=np.int64))
        return code

    def _intern(self, values: tuple[Any, ...]) -> int:
        code = self._codes.get(values)
        if code is None:
            if self._free:
                code = self._free.pop()
                self._values[code] = values
                self.last_seen[code] = _NEVER
            else:
                code = len(self._values)
                self._values.append(values)
            self._codes[values] = code
        return code

    def encode(self, columns: Sequence[np.ndarray], ts: np.ndarray) -> np.ndarray:
        """Codes for rows given one column per field (-1 where any field is absent)."""
        n = ts.shape[0]
        if n == 0:
            return np.empty(0, dtype=np.int64)
        parts = [factorize(c) for c in columns]
        if len(parts) == 1:
            local, uniq = parts[0]
            table = np.fromiter((self._intern((u,)) for u in uniq), np.int64, len(uniq))
            out = np.full(n, -1, dtype=np.int64)
            ok = local >= 0
            out[ok] = table[local[ok]]
            self._touch(out[ok], ts[ok])
            return out
        combined = np.zeros(n, dtype=np.int64)
        absent = np.zeros(n, dtype=bool)
        for codes, uniq in parts:
            absent |= codes < 0
            combined = combined * max(len(uniq), 1) + np.maximum(codes, 0)
        out = np.full(n, -1, dtype=np.int64)
        ok = ~absent
        if not ok.any():
            return out
        cvals, inv = np.unique(combined[ok], return_inverse=True)
        radices = [max(len(u), 1) for _, u in parts]
        mapped = np.empty(cvals.shape[0], dtype=np.int64)
        for i, c in enumerate(cvals.tolist()):
            digits = []
            for r in reversed(radices):
                c, d = divmod(c, r)
                digits.append(d)
            digits.reverse()
            mapped[i] = self._intern(tuple(u[d] for (_, u), d in zip(parts, digits, strict=True)))
        out[ok] = mapped[inv]
        self._touch(out[ok], ts[ok])
        return out

    def _touch(self, codes: np.ndarray, ts: np.ndarray) -> None:
        if self.last_seen.shape[0] < len(self._values):
            grown = np.full(max(len(self._values), 2 * self.last_seen.shape[0]), _NEVER)
            grown[: self.last_seen.shape[0]] = self.last_seen
            self.last_seen = grown
        np.maximum.at(self.last_seen, codes, ts)

    def release_before(self, cutoff: int, keep: np.ndarray | None = None) -> int:
        """Forget tuples last seen before cutoff (their rows have expired); returns count.

        `keep` (bool per code): codes still in use elsewhere (live groups) stay.
        """
        return int(self.release(cutoff, keep).shape[0])

    def release(self, cutoff: int, keep: np.ndarray | None = None) -> np.ndarray:
        """Like release_before, returning the released codes."""
        n = len(self._values)
        old = self.last_seen[:n] < cutoff
        if keep is not None:
            m = min(n, keep.shape[0])
            old[:m] &= ~keep[:m]
        dead = np.flatnonzero(old)
        for c in dead.tolist():
            v = self._values[c]
            if v is not None:
                del self._codes[v]
                self._values[c] = None
                self._free.append(c)
        self.last_seen[dead] = _FREED
        return dead


class SeenTimes:
    """When each code of one key column was last seen in a stream (rules.md, Keys).

    Decides which groups are alive at a step or window end t: exactly, from the
    rows with ts <= t. Rows up to the committed frontier (the watermark after an
    evaluation) are folded into `last`; rows pushed ahead of it stay pending, so a
    row seen ahead of t cannot make a group alive at t, whatever the batching.
    """

    def __init__(self) -> None:
        self.last = np.full(0, _NEVER, dtype=np.int64)
        self.frontier: int = _NEVER
        self._pc: list[np.ndarray] = []
        self._pt: list[np.ndarray] = []
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    def grow(self, n: int) -> None:
        size = self.last.shape[0]
        if n <= size:
            return
        la = np.full(max(n, 2 * size, 64), _NEVER, dtype=np.int64)
        la[:size] = self.last
        self.last = la

    def _fold(self, codes: np.ndarray, ts: np.ndarray) -> None:
        if codes.shape[0]:
            self.grow(int(codes.max()) + 1)
            np.maximum.at(self.last, codes, ts)

    def touch(self, codes: np.ndarray, ts: np.ndarray) -> None:
        ok = codes >= 0
        if not ok.all():
            codes, ts = codes[ok], ts[ok]
        if not codes.shape[0]:
            return
        late = ts <= self.frontier
        if late.any():
            self._fold(codes[late], ts[late])
            codes, ts = codes[~late], ts[~late]
        if codes.shape[0]:
            self._pc.append(codes)
            self._pt.append(ts)
            self._sorted = None

    def _pending(self) -> tuple[np.ndarray, np.ndarray]:
        if self._sorted is None:
            if not self._pc:
                self._sorted = (_EMPTY, _EMPTY)
            else:
                c = np.concatenate(self._pc)
                t = np.concatenate(self._pt)
                o = np.argsort(t, kind="stable")
                c, t = c[o], t[o]
                self._pc, self._pt = [c], [t]
                self._sorted = (c, t)
        return self._sorted

    def commit(self, frontier: int) -> None:
        """Fold the pending rows with ts <= frontier into `last`."""
        if frontier <= self.frontier:
            return
        self.frontier = frontier
        if not self._pc:
            return
        c, t = self._pending()
        j = int(np.searchsorted(t, frontier, "right"))
        if j:
            self._fold(c[:j], t[:j])
            c, t = c[j:], t[j:]
            self._pc, self._pt = ([c], [t]) if c.shape[0] else ([], [])
            self._sorted = (c, t) if c.shape[0] else None

    def recent(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Pending rows (codes, ts) with lo <= ts <= hi, by ts."""
        c, t = self._pending()
        if not c.shape[0]:
            return c, t
        i = int(np.searchsorted(t, lo, "left"))
        j = int(np.searchsorted(t, hi, "right"))
        return c[i:j], t[i:j]

    def pending_codes(self) -> np.ndarray:
        return self._pending()[0]

    def reset(self, codes: np.ndarray) -> None:
        codes = codes[codes < self.last.shape[0]]
        self.last[codes] = _NEVER


_EMPTY = np.empty(0, dtype=np.int64)
