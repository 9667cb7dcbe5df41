"""Group lifetime of a keyed rule (rules.md, Keys; docs/rules.md, "idle groups").

A group exists once one of its values has been seen in one of the rule's streams
that carry every free `by` field, and stays alive (evaluated, with empty windows
where it has no events) until it has been idle for the rule's group TTL:
max(the retention the rule needs, 10 minutes), longer for a periodic rule's group
whose episodes are further apart. At most `cap` groups per rule are alive: beyond
that the least recently seen are evicted (counted).

Everything is an array over the key index's dense codes: which groups are alive
at t is a few numpy comparisons, not a Python step per group.
"""

from __future__ import annotations

import numpy as np

from .keys import KeyIndex, SeenTimes

__all__ = ["DEFAULT_CAP", "MIN_TTL", "GroupLife"]

MIN_TTL = 600_000_000_000  # 10 minutes
DEFAULT_CAP = 10_000
_NEVER = np.iinfo(np.int64).min


class GroupLife:
    def __init__(
        self, index: KeyIndex, seen: list[SeenTimes], ttl: int, cap: int = DEFAULT_CAP
    ) -> None:
        self.index = index
        self.seen = seen
        self.ttl = ttl
        self.cap = cap
        self.evictions = 0
        self._ext = np.zeros(0, dtype=np.int64)  # per code: a longer TTL (periodic)
        self._evicted = np.zeros(0, dtype=bool)

    def extend(self, code: int, ttl: int) -> None:
        """Keep this group alive at least ttl after it was last seen."""
        if code >= self._ext.shape[0]:
            ext = np.zeros(max(code + 1, 2 * self._ext.shape[0], 64), dtype=np.int64)
            ext[: self._ext.shape[0]] = self._ext
            self._ext = ext
        self._ext[code] = max(int(self._ext[code]), ttl)

    def forget(self, codes: np.ndarray) -> None:
        """Codes released by the key index (they may be reused for other values)."""
        codes = codes[codes < self._ext.shape[0]]
        self._ext[codes] = 0
        codes = codes[codes < self._evicted.shape[0]]
        self._evicted[codes] = False

    def _first_last(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.index.size
        if len(self.seen) == 1:
            s = self.seen[0]
            s.grow(n)
            return s.first[:n], s.last[:n]
        first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        last = np.full(n, _NEVER, dtype=np.int64)
        for s in self.seen:
            s.grow(n)
            np.minimum(first, s.first[:n], out=first)
            np.maximum(last, s.last[:n], out=last)
        return first, last

    def _deadline(self, last: np.ndarray) -> np.ndarray:
        """Per code: the last time it is still alive (last seen + its TTL)."""
        n = last.shape[0]
        ttl = np.full(n, self.ttl, dtype=np.int64)
        m = min(n, self._ext.shape[0])
        if m:
            np.maximum(ttl[:m], self._ext[:m], out=ttl[:m])
        out = last + ttl
        out[last == _NEVER] = _NEVER
        return out

    def alive(self, t: int) -> np.ndarray:
        """Bool per code: the group exists at t (seen at or before t, not idle too long)."""
        first, last = self._first_last()
        mask = (first <= t) & (self._deadline(last) >= t)
        count = int(np.count_nonzero(mask))
        if count > self.cap:
            codes = np.flatnonzero(mask)
            # Least recently seen beyond the cap are evicted.
            order = np.argpartition(-last[codes], self.cap - 1)
            cut = codes[order[self.cap :]]
            mask[cut] = False
            if self._evicted.shape[0] < mask.shape[0]:
                ev = np.zeros(mask.shape[0], dtype=bool)
                ev[: self._evicted.shape[0]] = self._evicted
                self._evicted = ev
            was = self._evicted[cut]
            self.evictions += int(np.count_nonzero(~was))
            self._evicted[:] = False
            self._evicted[cut] = True
        elif self._evicted.shape[0] and self._evicted.any():
            self._evicted[:] = False
        return mask

    def keep(self, t: int) -> np.ndarray:
        """Bool per code: the group is still alive at t (its code must stay)."""
        _, last = self._first_last()
        mask = self._deadline(last) >= t
        m = min(mask.shape[0], self._evicted.shape[0])
        if m:
            mask[:m] &= ~self._evicted[:m]
        return mask

    def groups(self, t: int) -> np.ndarray:
        """Codes of the groups alive at t, sorted."""
        return np.flatnonzero(self.alive(t))

    def next_change(self, t: int) -> int | None:
        """The earliest time after t at which a group alive at t stops being alive."""
        first, last = self._first_last()
        dl = self._deadline(last)
        live = (first <= t) & (dl >= t)
        if not live.any():
            return None
        return int(dl[live].min()) + 1
