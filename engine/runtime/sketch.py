"""Percentiles over long sliding windows from per-tick log histograms (rules.md: a
percentile may come from a sketch whose relative error is at most 1%).

A median over 10 minutes at every 100 ms step would otherwise keep every row of
its stream for 10 minutes (memory linear in the event rate) and re-select among
them. Instead each row is counted once, when its batch is ingested, into the
histogram of its tick slice (k*tick - tick, k*tick]: per key, per log bucket of
ratio GAMMA = 1.02, whose representative is within (GAMMA - 1) / (GAMMA + 1)
< 1% of every value in it (zero has its own bucket, negative values mirror the
positive ones, +-inf are kept exactly). Rows landing exactly on a tick (the top of
a slice) are also counted apart, so the closed window [t - D, t] of a step on the
tick grid is exact in membership: the slices (t - D, t] plus the top of the slice
ending at t - D. The window's histogram (keys x buckets) is patched by the slices
entering and leaving; a late row goes into its slice, and into the window when
the window holds it. A slice keeps its distinct (key, bucket) pairs only: memory
is bounded by the keys and buckets seen, whatever the event rate, and the rows
need not be retained for D.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .aggregates import percentile_rank

__all__ = ["GAMMA", "SlicedPercentile", "ordinals", "representative"]

GAMMA = 1.02
_LN = math.log(GAMMA)
_REP = math.log(2.0 / (GAMMA + 1.0))  # representative = gamma^i * 2 / (gamma + 1)
# Ordinals, increasing with the value: -inf, negative buckets, zero, positive
# buckets, +inf. |bucket index| < _H covers every finite float64 (subnormals too).
_H = 38_000
_NEG_INF = 0
_ZERO = 2 * _H + 1
_POS0 = 3 * _H + 2
_POS_INF = 4 * _H + 4
_BITS = 18  # ordinal bits of a packed (key, ordinal) code
_MASK = (1 << _BITS) - 1


def ordinals(v: np.ndarray) -> np.ndarray:
    """Bucket ordinal of each value (no NaN), ordered as the values."""
    a = np.abs(v)
    with np.errstate(divide="ignore", invalid="ignore"):
        i = np.ceil(np.log(a) / _LN)
    fin = np.isfinite(i)
    if not fin.all():
        i = np.where(fin, i, 0.0)
    i = np.clip(i, 1 - _H, _H - 1).astype(np.int64)
    o = np.where(v > 0, _POS0 + i, _H - i)
    if not fin.all():
        o[v == 0] = _ZERO
        o[v == np.inf] = _POS_INF
        o[v == -np.inf] = _NEG_INF
    return o


def representative(o: np.ndarray) -> np.ndarray:
    """The value standing for each ordinal's bucket (within 1% of all its values)."""
    o = np.asarray(o, dtype=np.int64)
    pos = o > _ZERO
    i = np.where(pos, o - _POS0, _H - o).astype(np.float64)
    with np.errstate(over="ignore"):
        r = np.exp(i * _LN + _REP)
    out = np.where(pos, r, -r)
    out[o == _ZERO] = 0.0
    out[o == _POS_INF] = np.inf
    out[o == _NEG_INF] = -np.inf
    return out


def _pack(codes: np.ndarray | None, o: np.ndarray) -> np.ndarray:
    return o if codes is None else (codes.astype(np.int64) << _BITS) | o


def _uint(x: np.ndarray, top: int) -> np.ndarray:
    """x (>= 0, <= top) in the smallest unsigned dtype."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dt).max:
            return x.astype(dt)
    return x.astype(np.int64)


class _Part:
    """Counts per (key, ordinal) pair, unique pairs, stored small: a pair is
    key * width + (ordinal - o0) in the smallest dtype that holds it (2 bytes for
    dozens of keys), its count mostly in one byte; 3-4 bytes a pair, not 16."""

    __slots__ = ("cell", "count", "o0", "rows", "width")

    def __init__(self, packed: np.ndarray, counts: np.ndarray) -> None:
        """From unique packed codes (sorted) and their counts."""
        keys, o = packed >> _BITS, packed & _MASK
        self.o0 = int(o.min())
        self.width = int(o.max()) - self.o0 + 1
        cell = keys * self.width + (o - self.o0)
        self.cell = _uint(cell, int(cell.max()))
        self.count = _uint(counts, int(counts.max()))
        self.rows = int(counts.sum())

    def keys_ordinals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cell = self.cell.astype(np.int64)
        keys, o = np.divmod(cell, self.width)
        return keys, o + self.o0, self.count.astype(np.int64)

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        keys, o, n = self.keys_ordinals()
        return (keys << _BITS) | o, n

    @property
    def nbytes(self) -> int:
        return int(self.cell.nbytes + self.count.nbytes)


def _merge(a: _Part | None, b: _Part) -> _Part:
    """Counts per pair of two parts."""
    if a is None:
        return b
    pa, na = a.packed()
    pb, nb = b.packed()
    u, inv = np.unique(np.concatenate((pa, pb)), return_inverse=True)
    n = np.bincount(inv, weights=np.concatenate((na, nb)), minlength=u.shape[0])
    return _Part(u, n.astype(np.int64))


class _Slice:
    """One tick slice (k*tick - tick, k*tick]: counts per (key, ordinal) of all its
    rows, and of those exactly at k*tick (`top`)."""

    __slots__ = ("all", "top")

    def __init__(self) -> None:
        self.all: _Part | None = None
        self.top: _Part | None = None

    @property
    def n(self) -> int:
        return 0 if self.all is None else self.all.rows

    @property
    def ntop(self) -> int:
        return 0 if self.top is None else self.top.rows

    def add(self, part: _Part, top: bool) -> None:
        self.all = _merge(self.all, part)
        if top:
            self.top = _merge(self.top, part)


class SlicedPercentile:
    """The q-th percentile per key over [t - D, t] for steps t on the tick grid."""

    def __init__(self, q: float, span: int, tick: int) -> None:
        if span % tick or span <= 0:
            raise ValueError("the window must be a positive multiple of the tick")
        self.q = q
        self.tick = tick
        self.d = span // tick  # slices per window
        self._slices: dict[int, _Slice] = {}
        self._low = -(2**62)  # no slice below this index
        self._m: int | None = None  # the window's end slice: step m * tick
        self._w = np.zeros((0, 0), dtype=np.int64)  # window counts, keys x buckets
        self._cols = np.zeros(0, dtype=np.int64)  # ordinal of each column
        self._n = np.zeros(0, dtype=np.int64)  # rows per key in the window
        self.rows = 0  # rows in the window
        self.behind = 0  # rows ingested behind every window still to come

    # -- ingest --
    def ingest(self, ts: np.ndarray, values: np.ndarray, codes: np.ndarray | None) -> None:
        """Rows of any times, in any order (values without NaN; codes >= 0 or None)."""
        if ts.shape[0] == 0:
            return
        tick = self.tick
        k = -((-ts) // tick)
        top = k * tick == ts
        packed = _pack(codes, ordinals(values))
        m = self._m
        if m is not None:
            # Windows only move forward: rows before the current one's start never count.
            lo = m - self.d
            keep = (k > lo) | ((k == lo) & top)
            if not keep.all():
                self.behind += int(keep.shape[0] - np.count_nonzero(keep))
                k, top, packed = k[keep], top[keep], packed[keep]
                if k.shape[0] == 0:
                    return
        order = np.lexsort((packed, top, k))
        k, top, packed = k[order], top[order], packed[order]
        n = k.shape[0]
        new = np.ones(n, dtype=bool)
        new[1:] = (k[1:] != k[:-1]) | (top[1:] != top[:-1]) | (packed[1:] != packed[:-1])
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, n))
        uk, ut, up = k[starts], top[starts], packed[starts]
        # Runs of one (slice, top) pair: a Python step per slice, not per row.
        cut = np.flatnonzero((uk[1:] != uk[:-1]) | (ut[1:] != ut[:-1])) + 1
        bounds = np.concatenate(([0], cut, [uk.shape[0]])).tolist()
        for a, b in itertools.pairwise(bounds):
            j, is_top = int(uk[a]), bool(ut[a])
            part = _Part(up[a:b], counts[a:b])
            s = self._slices.get(j)
            if s is None:
                s = self._slices[j] = _Slice()
                self._low = min(self._low, j)
            s.add(part, is_top)
            if m is not None and (m - self.d < j <= m or (is_top and j == m - self.d)):
                self._apply(part, 1)  # late: in the current window already

    # -- the window --
    def _fit(self, keys: np.ndarray, o: np.ndarray) -> None:
        """Grow the window's array to hold these keys and ordinals.

        Its columns are the ordinals seen, in order (a field with zeros and values
        around 1e6 spans 38k ordinals but uses a few hundred)."""
        w = self._w
        nk = max(int(keys.max()) + 1, w.shape[0])
        cols = self._cols
        new = np.setdiff1d(o, cols)
        if nk > w.shape[0]:
            nk = max(nk, 2 * w.shape[0], 16)
        if new.shape[0] or nk > w.shape[0]:
            merged = np.union1d(cols, new)
            nw = np.zeros((nk, merged.shape[0]), dtype=np.int64)
            nw[: w.shape[0], np.searchsorted(merged, cols)] = w
            self._w, self._cols = nw, merged
            n = np.zeros(nk, dtype=np.int64)
            n[: self._n.shape[0]] = self._n
            self._n = n

    def _apply(self, part: _Part, sign: int) -> None:
        keys, o, cnt = part.keys_ordinals()
        if sign > 0:
            self._fit(keys, o)
        else:
            cnt = -cnt
        # Pairs are unique: no cell repeated in one fancy-indexed add.
        self._w[keys, np.searchsorted(self._cols, o)] += cnt
        np.add.at(self._n, keys, cnt)
        self.rows += sign * part.rows

    def _add_slice(self, j: int, sign: int, top_only: bool = False) -> None:
        s = self._slices.get(j)
        if s is None:
            return
        part = s.top if top_only else s.all
        if part is not None:
            self._apply(part, sign)

    def update(self, t: int) -> None:
        """Make the window [t - D, t] (t a multiple of the tick, never decreasing)."""
        m2 = t // self.tick
        m, d = self._m, self.d
        if m == m2:
            return
        if m is None or m2 < m or m2 - m >= d:
            self._w[:] = 0
            self._n[:] = 0
            self.rows = 0
            for j in sorted(self._slices):
                if m2 - d < j <= m2:
                    self._add_slice(j, 1)
            self._add_slice(m2 - d, 1, top_only=True)
        else:
            for j in range(m + 1, m2 + 1):
                self._add_slice(j, 1)
            for j in range(m - d + 1, m2 - d + 1):
                self._add_slice(j, -1)
            self._add_slice(m - d, -1, top_only=True)
            self._add_slice(m2 - d, 1, top_only=True)
        self._m = m2
        # The slice ending at t - D holds the window's first rows (its top); the one
        # before, what left since the previous tick (left_between).
        keep = m2 - d - 1
        if keep - self._low > len(self._slices):
            for j in [j for j in self._slices if j < keep]:
                del self._slices[j]
        else:
            for j in range(self._low, keep):
                self._slices.pop(j, None)
        self._low = max(self._low, keep)

    def left_between(self, a: int, b: int) -> bool:
        """Any row with ts in [a, b) (a, b multiples of the tick, a <= b; a at least
        the tick before the current window's start)?"""
        if b <= a:
            return False
        ja, jb = a // self.tick, b // self.tick
        s = self._slices.get(ja)
        if s is not None and s.ntop:
            return True
        for j in range(ja + 1, jb + 1):
            s = self._slices.get(j)
            if s is not None and s.n - (s.ntop if j == jb else 0) > 0:
                return True
        return False

    def count(self, codes: np.ndarray) -> np.ndarray:
        """Rows of each key in the current window."""
        out = np.zeros(codes.shape[0], dtype=np.int64)
        ok = codes < self._n.shape[0]
        out[ok] = self._n[codes[ok]]
        return out

    def percentile(self, codes: np.ndarray) -> np.ndarray:
        """Nearest-rank q-th percentile per key code, within 1% (NaN: no row)."""
        out = np.full(codes.shape[0], np.nan)
        n = self.count(codes)
        has = np.flatnonzero(n > 0)
        if has.shape[0] == 0:
            return out
        rows = self._w[codes[has]]
        rank = percentile_rank(self.q, n[has])
        cum = np.cumsum(rows, axis=1)
        col = np.argmax(cum >= rank[:, None], axis=1)
        out[has] = representative(self._cols[col])
        return out

    @property
    def nbytes(self) -> int:
        """Bytes held: the window's array and the slices' counts."""
        b = self._w.nbytes + self._n.nbytes
        for s in self._slices.values():
            for p in (s.all, s.top):
                if p is not None:
                    b += p.nbytes
        return b


class _RowSlice:
    """The rows of one tick slice, small: offset in the slice (ns), key, ordinal."""

    __slots__ = ("keys", "o0", "offs", "ords")

    def __init__(self, offs: np.ndarray, keys: np.ndarray, o: np.ndarray) -> None:
        self.offs = _uint(offs, int(offs.max()))
        self.keys = _uint(keys, int(keys.max()))
        self.o0 = int(o.min())
        self.ords = _uint(o - self.o0, int(o.max()) - self.o0)

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        o = self.ords.astype(np.int64) + self.o0
        return self.offs.astype(np.int64), self.keys.astype(np.int64), o

    @property
    def nbytes(self) -> int:
        return int(self.offs.nbytes + self.keys.nbytes + self.ords.nbytes)


class SlicedRows:
    """The q-th percentile per key over any window [lo, hi] (correlation windows end
    anywhere), within 1%: per tick slice, each row's time in the slice, key and
    bucket ordinal in a few bytes (7 for most streams) instead of the stream's
    whole row. Kept until expire()."""

    def __init__(self, q: float, tick: int) -> None:
        self.q = q
        self.tick = tick
        self._slices: dict[int, list[_RowSlice]] = {}

    def ingest(self, ts: np.ndarray, values: np.ndarray, codes: np.ndarray | None) -> None:
        """Rows of any times, in any order (values without NaN; codes >= 0 or None)."""
        if ts.shape[0] == 0:
            return
        tick = self.tick
        k = -((-ts) // tick)
        offs = ts - (k * tick - tick)  # in (0, tick]
        keys = np.zeros(ts.shape[0], dtype=np.int64) if codes is None else codes.astype(np.int64)
        o = ordinals(values)
        order = np.argsort(k, kind="stable")
        k, offs, keys, o = k[order], offs[order], keys[order], o[order]
        cut = np.flatnonzero(k[1:] != k[:-1]) + 1
        bounds = np.concatenate(([0], cut, [k.shape[0]])).tolist()
        for a, b in itertools.pairwise(bounds):  # a Python step per slice, not per row
            part = _RowSlice(offs[a:b], keys[a:b], o[a:b])
            self._slices.setdefault(int(k[a]), []).append(part)

    def expire(self, cutoff: int) -> None:
        """Forget slices wholly before cutoff."""
        last = cutoff // self.tick  # slice j ends at j * tick
        for j in [j for j in self._slices if j < last]:
            del self._slices[j]

    def percentile(self, lo: int, hi: int, codes: np.ndarray) -> np.ndarray:
        """Nearest-rank q-th percentile per key code over [lo, hi], within 1%."""
        out = np.full(codes.shape[0], np.nan)
        tick = self.tick
        jfirst, jhi = -((-lo) // tick), -((-hi) // tick)  # the slices holding lo and hi
        keys_l: list[np.ndarray] = []
        ords_l: list[np.ndarray] = []
        for j in sorted(x for x in self._slices if jfirst <= x <= jhi):
            base = j * tick - tick
            for part in self._slices[j]:
                offs, keys, o = part.rows()
                if j in (jfirst, jhi):
                    m = (offs + base >= lo) & (offs + base <= hi)
                    keys, o = keys[m], o[m]
                keys_l.append(keys)
                ords_l.append(o)
        if not keys_l or codes.shape[0] == 0:
            return out
        keys = np.concatenate(keys_l)
        o = np.concatenate(ords_l)
        size = max(int(codes.max()), int(keys.max(initial=0))) + 1
        pos = np.full(size, -1, dtype=np.int64)
        pos[codes] = np.arange(codes.shape[0])
        g = pos[keys]
        ok = g >= 0
        g, o = g[ok], o[ok]
        if g.shape[0] == 0:
            return out
        o0 = int(o.min())
        width = int(o.max()) - o0 + 1
        if codes.shape[0] * width <= 1 << 24:
            hist = np.bincount(g * width + (o - o0), minlength=codes.shape[0] * width)
            hist = hist.reshape(codes.shape[0], width)
            n = hist.sum(axis=1)
            has = np.flatnonzero(n > 0)
            rank = percentile_rank(self.q, n[has])
            col = np.argmax(np.cumsum(hist[has], axis=1) >= rank[:, None], axis=1)
            out[has] = representative(col + o0)
            return out
        # Many keys and buckets: select on sorted (group, ordinal) instead.
        order = np.lexsort((o, g))
        g, o = g[order], o[order]
        n = np.bincount(g, minlength=codes.shape[0])
        has = np.flatnonzero(n > 0)
        first = np.concatenate(([0], np.cumsum(n)[:-1]))
        rank = percentile_rank(self.q, n[has])
        out[has] = representative(o[first[has] + rank - 1])
        return out

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for parts in self._slices.values() for p in parts)
