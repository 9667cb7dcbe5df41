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

    def _last(self) -> np.ndarray:
        """Per code: the newest committed row (<= every seen's frontier)."""
        n = self.index.size
        if len(self.seen) == 1:
            s = self.seen[0]
            s.grow(n)
            return s.last[:n]
        last = np.full(n, _NEVER, dtype=np.int64)
        for s in self.seen:
            s.grow(n)
            np.maximum(last, s.last[:n], out=last)
        return last

    def _ttl(self, n: int) -> np.ndarray:
        ttl = np.full(n, self.ttl, dtype=np.int64)
        m = min(n, self._ext.shape[0])
        if m:
            np.maximum(ttl[:m], self._ext[:m], out=ttl[:m])
        return ttl

    def _state(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(alive at t, last seen at or before t) per code, before the cap."""
        last = self._last().copy()
        n = last.shape[0]
        for s in self.seen:
            # Rows ahead of the committed frontier count only when at or before t.
            c, ts = s.recent(t - max(self.ttl, int(self._ext.max(initial=0))), t)
            if c.shape[0]:
                np.maximum.at(last, c[c < n], ts[c < n])
        seen = last != _NEVER
        dl = np.where(seen, last + self._ttl(n), _NEVER)
        return seen & (dl >= t), last

    def _alive(self, t: int) -> np.ndarray:
        """Alive at t before the cap, as _state's but without folding every pending
        row's time into `last` (a fancy assignment instead of a maximum.at per step)."""
        last = self._last()
        n = last.shape[0]
        ext = int(self._ext.max(initial=0))
        if ext <= self.ttl:
            mask = (last != _NEVER) & (last >= t - self.ttl)
        else:
            ttl = self._ttl(n)
            mask = (last != _NEVER) & (last + ttl >= t)
        for s in self.seen:
            c, ts = s.recent(t - max(self.ttl, ext), t)
            if not c.shape[0]:
                continue
            if ext > self.ttl:
                ok = c < n
                c, ts = c[ok], ts[ok]
                c = c[ts + self._ttl(n)[c] >= t]
            elif int(c.max()) >= n:
                c = c[c < n]
            mask[c] = True
        return mask

    def alive(self, t: int) -> np.ndarray:
        """Bool per code: the group exists at t (seen at or before t, not idle too long)."""
        mask = self._alive(t)
        count = int(np.count_nonzero(mask))
        if count > self.cap:
            mask, last = self._state(t)
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
        """Bool per code: its group may still be alive at t or later (its code must stay)."""
        last = self._last()
        n = last.shape[0]
        mask = (last != _NEVER) & (last + self._ttl(n) >= t)
        m = min(n, self._evicted.shape[0])
        if m:
            mask[:m] &= ~self._evicted[:m]
        for s in self.seen:
            pc = s.pending_codes()
            mask[pc[pc < n]] = True
        return mask

    def groups(self, t: int) -> np.ndarray:
        """Codes of the groups alive at t, sorted."""
        return np.flatnonzero(self.alive(t))

    def next_change(self, t: int) -> int | None:
        """The earliest time after t at which a group alive at t may stop being alive."""
        live, last = self._state(t)
        if not live.any():
            return None
        dl = last[live] + self._ttl(last.shape[0])[live]
        return int(dl.min()) + 1
