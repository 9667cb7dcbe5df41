"""Per-stream columnar history, sorted by `ts`, with amortized append and expiry.

Windows are found with `np.searchsorted` on `ts`; rows leave once no window, late
trigger or baseline can reach them. Interval streams arrive in `end` order, so a
new chunk may hold rows older than the tail: only the overlapping tail is re-sorted.

Memory: a window over a busy stream (the minute of evidence baseline of sched.runq;
long percentiles are sketched instead, sketch.py) keeps millions of rows, so the
buffers are sized close to what is live: they grow by a quarter, expired rows at
the front are reclaimed by moving the live rows down in place (in chunks that
never overlap, so without a temporary copy) once they are a tenth of the buffer,
and a buffer mostly empty after an expiry is reallocated smaller. Each live row is
copied a few times over its life; the buffer stays within ~1.25x of the live rows
instead of up to 2x (4x while filling).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

import numpy as np

__all__ = ["History"]

_MIN_CAPACITY = 1024
_GROWTH = 4  # grow by need // _GROWTH rows beyond what is needed
_RECLAIM = 10  # compact in place once expired rows are 1/_RECLAIM of the buffer
_SHRINK = 4  # reallocate once live rows are under 1/_SHRINK of the buffer


class History:
    """Growable columns (`ts` plus named ones) holding rows [head, size) of each buffer."""

    def __init__(self, dtypes: Mapping[str, np.dtype | type]) -> None:
        self._dtypes = {"ts": np.dtype(np.int64), **{k: np.dtype(v) for k, v in dtypes.items()}}
        self._buf: dict[str, np.ndarray] = {
            k: np.empty(_MIN_CAPACITY, dtype=d) for k, d in self._dtypes.items()
        }
        self._head = 0
        self._size = 0
        self.out_of_order = 0  # rows that had to be merged into the tail
        self.appends = 0  # append calls so far
        self._recent: deque[tuple[int, int]] = deque(maxlen=256)  # (append number, min ts)
        self._memo: dict[tuple[int, str], int] = {}

    def __len__(self) -> int:
        return self._size - self._head

    @property
    def names(self) -> list[str]:
        return list(self._dtypes)

    def col(self, name: str) -> np.ndarray:
        """A view of one column's live rows (invalidated by the next append/expire)."""
        return self._buf[name][self._head : self._size]

    @property
    def ts(self) -> np.ndarray:
        return self.col("ts")

    def index(self, t: int, side: str) -> int:
        """np.searchsorted(ts, t, side), memoized until the rows change.

        Every rule, aggregate and check of a step looks up the same few window
        bounds in the same (long) column.
        """
        k = (t, side)
        i = self._memo.get(k)
        if i is None:
            if len(self._memo) > 4096:
                self._memo.clear()
            i = self._memo[k] = int(np.searchsorted(self.ts, t, side))  # type: ignore[call-overload]
        return i

    def span(self, lo: int, hi: int) -> tuple[int, int]:
        """Row range [i, j) of the rows with lo <= ts <= hi (closed interval)."""
        return self.index(lo, "left"), self.index(hi, "right")

    def first_after(self, t: int) -> int | None:
        """The smallest ts > t, or None."""
        ts = self.ts
        i = int(np.searchsorted(ts, t, "right"))
        return int(ts[i]) if i < ts.shape[0] else None

    @property
    def capacity(self) -> int:
        """Rows each buffer can hold (live rows plus expired and free space)."""
        return int(self._buf["ts"].shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers (what the history costs, live or not)."""
        return sum(b.nbytes for b in self._buf.values())

    def _reserve(self, extra: int) -> None:
        cap = self.capacity
        if self._size + extra <= cap:
            return
        need = self._size - self._head + extra
        if need <= cap - cap // _RECLAIM:
            self._compact()
        else:
            self._resize(max(_MIN_CAPACITY, need + need // _GROWTH))

    def _compact(self) -> None:
        """Move the live rows to the front of each buffer, in place."""
        h, s = self._head, self._size
        if h == 0:
            return
        for b in self._buf.values():
            # Chunks of at most `h` rows: source and destination never overlap, so
            # numpy copies directly (an overlapping slice copy would go through a
            # temporary as large as the live rows).
            for i in range(h, s, h):
                j = min(i + h, s)
                b[i - h : j - h] = b[i:j]
        self._head, self._size = 0, s - h

    def _resize(self, cap: int) -> None:
        """Reallocate every buffer with `cap` rows (one column at a time: the old one
        is freed before the next is copied)."""
        h, s = self._head, self._size
        for k in list(self._buf):
            b = self._buf[k]
            nb = np.empty(cap, dtype=b.dtype)
            nb[: s - h] = b[h:s]
            self._buf[k] = nb
            del b
        self._head, self._size = 0, s - h

    def append(self, cols: Mapping[str, np.ndarray]) -> None:
        """Add rows (every column given, same length). Keeps `ts` sorted, stable."""
        ts = np.asarray(cols["ts"], dtype=np.int64)
        m = int(ts.shape[0])
        if m == 0:
            return
        order = None
        if m > 1 and bool(np.any(ts[1:] < ts[:-1])):
            order = np.argsort(ts, kind="stable")
        self._reserve(m)
        live_ts = self.ts
        first_new = int(ts.min()) if order is not None else int(ts[0])
        # Rows of the tail with ts > first_new must be merged with the new ones.
        p = self._head + int(np.searchsorted(live_ts, first_new, "right"))
        s = self._size
        if p == s:
            for k, b in self._buf.items():
                v = np.asarray(cols[k], dtype=b.dtype)
                b[s : s + m] = v if order is None else v[order]
        else:
            self.out_of_order += m
            merged_ts = np.concatenate((self._buf["ts"][p:s], ts))
            o = np.argsort(merged_ts, kind="stable")
            for k, b in self._buf.items():
                merged = np.concatenate((b[p:s], np.asarray(cols[k], dtype=b.dtype)))
                b[p : s + m] = merged[o]
        self._size += m
        self.appends += 1
        self._memo.clear()
        self._recent.append((self.appends, first_new))

    def min_ts_since(self, appends: int) -> float:
        """Smallest ts among rows appended after the first `appends` appends.

        Lets an incremental window notice rows that landed behind its end (late
        events, interval events emitted after their start): -inf when unknown.
        """
        if appends >= self.appends:
            return math.inf
        if not self._recent or self._recent[0][0] > appends + 1:
            return -math.inf
        return min(t for n, t in self._recent if n > appends)

    def expire(self, cutoff: int) -> int:
        """Drop rows with ts < cutoff; returns how many left."""
        i = int(np.searchsorted(self.ts, cutoff, "left"))
        if i:
            self._memo.clear()
        self._head += i
        if self._head == self._size:
            self._head = self._size = 0
        live = self._size - self._head
        cap = self.capacity
        if cap > _MIN_CAPACITY and live * _SHRINK < cap:
            # Mostly empty (the stream calmed down): give the memory back.
            self._resize(max(_MIN_CAPACITY, 2 * live))
        return i
