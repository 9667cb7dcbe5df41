"""Explain input: compact occurrence logs of candidate streams and episode logs.

Explain widens every occurrence by D and measures the union, so occurrences closer
than 2·D apart can be merged beforehand without changing coverage or support.

Memory is bounded, numbers stay exact:
- an occurrence log keeps at most `capacity` merged intervals (the most recent);
  the covered time of the dropped ones (per D, clipped to the observed start) is
  kept as a running total, and before dropping them the log lets its owner settle
  the support of the episodes they may cover (`on_compact`);
- an episode log keeps the latest episodes; dropped ones are counted, with how many
  of them each candidate supported.

Explain must not depend on how the input was batched (rules.md: observed time runs
from the first event seen to the finding's `ts`): occurrences are used only once
emitted at or before the finding's `ts`. The log merges occurrences only up to a
frontier the evaluator advances after each evaluation (its watermark); the ones
pushed ahead of it stay raw and are filtered by emission time per finding.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from ..findings import ExplainEntry
from .explain import merge_intervals

__all__ = ["EpisodeLog", "OccurrenceLog", "covered", "rank_candidates"]

_EMPTY = np.empty(0, dtype=np.int64)


def covered(s: np.ndarray, e: np.ndarray, d: int, lo: int, hi: int | float) -> int:
    """Length of the union of [s - d, e + d] clipped to [lo, hi]."""
    if s.shape[0] == 0:
        return 0
    glo, ghi = merge_intervals(s - d, e + d)
    if hi == float("inf"):
        return int((np.clip(ghi, lo, None) - np.clip(glo, lo, None)).sum())
    return int((np.clip(ghi, lo, int(hi)) - np.clip(glo, lo, int(hi))).sum())


def supported(s: np.ndarray, e: np.ndarray, d: int, eps: np.ndarray) -> np.ndarray:
    """Per episode: does it fall in a covered time ([s - d, e + d] of some occurrence)?"""
    if s.shape[0] == 0 or eps.shape[0] == 0:
        return np.zeros(eps.shape[0], dtype=bool)
    glo, ghi = merge_intervals(s - d, e + d)
    i = np.searchsorted(glo, eps, side="right") - 1
    return (i >= 0) & (eps <= ghi[np.maximum(i, 0)])


class OccurrenceLog:
    def __init__(
        self,
        gap: int,
        widths: Iterable[int] = (),
        capacity: int = 4096,
        on_compact: Callable[[np.ndarray, np.ndarray, int], None] | None = None,
    ) -> None:
        self._half = gap // 2
        self._cap = capacity
        self._starts: list[np.ndarray] = []
        self._ends: list[np.ndarray] = []
        self._n = 0
        self._raw: list[tuple[np.ndarray, np.ndarray]] = []
        self._raw_rows = 0
        self.frontier: int | float = -float("inf")
        self.origin = 0  # observed start, for clipping dropped coverage
        self.widths = sorted(set(widths))
        self.dropped_cov: dict[int, int] = dict.fromkeys(self.widths, 0)
        self.dropped = 0  # merged intervals dropped so far
        self.on_compact = on_compact

    def __len__(self) -> int:
        return self._n + self._raw_rows

    def add(self, ts: np.ndarray, end: np.ndarray | None) -> None:
        """Buffer occurrences (merged once the frontier passes their emission)."""
        e = ts if end is None else end
        if self._raw and len(self._raw) >= 64:
            rs = np.concatenate([r[0] for r in self._raw] + [ts])
            re = np.concatenate([r[1] for r in self._raw] + [e])
            self._raw = [(rs, re)]
        else:
            self._raw.append((ts, e))
        self._raw_rows += int(ts.shape[0])

    def advance(self, frontier: int | float) -> None:
        """Merge the occurrences emitted at or before frontier."""
        if frontier > self.frontier:
            self.frontier = frontier
        if not self._raw:
            return
        ts = np.concatenate([r[0] for r in self._raw])
        e = np.concatenate([r[1] for r in self._raw])
        done = e <= self.frontier
        if not done.all():
            self._raw = [(ts[~done], e[~done])]
            self._raw_rows = int(np.count_nonzero(~done))
            ts, e = ts[done], e[done]
        else:
            self._raw, self._raw_rows = [], 0
        if ts.shape[0] == 0:
            return
        lo, hi = merge_intervals(ts - self._half, e + self._half)
        self._starts.append(lo + self._half)
        self._ends.append(hi - self._half)
        self._n += int(lo.shape[0])
        if self._n > 2 * self._cap or len(self._starts) > 64:
            self._compact()

    def _merged(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._starts:
            return _EMPTY, _EMPTY
        if len(self._starts) > 1:
            self._starts = [np.concatenate(self._starts)]
            self._ends = [np.concatenate(self._ends)]
        return self._starts[0], self._ends[0]

    def _compact(self) -> None:
        s, e = self._merged()
        s, e = merge_intervals(s - self._half, e + self._half)
        s, e = s + self._half, e - self._half
        if s.shape[0] > self._cap:
            ks, ke = s[-self._cap :], e[-self._cap :]
            if self.on_compact is not None:
                self.on_compact(s, e, int(ks[0]))
            for d in self.widths:
                self.dropped_cov[d] += covered(s, e, d, self.origin, float("inf")) - covered(
                    ks, ke, d, self.origin, float("inf")
                )
            self.dropped += int(s.shape[0] - ks.shape[0])
            s, e = ks, ke
        self._starts, self._ends, self._n = [s], [e], int(s.shape[0])

    def view(self, ts: int | float) -> tuple[np.ndarray, np.ndarray]:
        """Kept occurrences emitted at or before ts (merged ones, then raw ones)."""
        s, e = self._merged()
        if self._raw:
            rs = np.concatenate([r[0] for r in self._raw])
            re = np.concatenate([r[1] for r in self._raw])
            ok = re <= ts
            if ok.any():
                s, e = np.concatenate((s, rs[ok])), np.concatenate((e, re[ok]))
        return s, e

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every kept occurrence, merged or not."""
        return self.view(float("inf"))


class EpisodeLog:
    """One rule key's episode times (in order), the latest `capacity` of them kept.

    Episodes are numbered from 0; `settled[X] = (k, n)`: of the first k episodes
    (dropped or kept), n fell in X's covered time; later ones are checked against
    X's log when ranked.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.times: deque[int] = deque()
        self.cap = capacity
        self.dropped = 0  # number of the first kept episode
        self.settled: dict[str, tuple[int, int]] = {}

    def __len__(self) -> int:
        return self.dropped + len(self.times)

    def __bool__(self) -> bool:
        return bool(self.times) or self.dropped > 0

    @property
    def last(self) -> int | None:
        return self.times[-1] if self.times else None

    def add(self, t: int, settle: Callable[[EpisodeLog, np.ndarray], None]) -> None:
        """Record an episode; settle(log, times) settles the oldest before they go."""
        self.times.append(t)
        if len(self.times) > self.cap + self.cap // 4:
            k = len(self.times) - self.cap
            old = np.fromiter(itertools.islice(self.times, k), np.int64, k)
            settle(self, old)
            for _ in range(k):
                self.times.popleft()
            self.dropped += k

    def kept(self) -> np.ndarray:
        return np.fromiter(self.times, np.int64, len(self.times))

    def settle(self, name: str, upto: int, hit: Callable[[np.ndarray], np.ndarray]) -> None:
        """Settle X's support of the episodes numbered below upto (kept ones only)."""
        k, n = self.settled.get(name, (0, 0))
        if upto <= k:
            return
        lo = max(k - self.dropped, 0)
        hi = upto - self.dropped
        eps = np.fromiter(itertools.islice(self.times, lo, hi), np.int64, max(hi - lo, 0))
        if eps.shape[0]:
            n += int(np.count_nonzero(hit(eps)))
        self.settled[name] = (upto, n)

    def unsettled(self, name: str) -> np.ndarray:
        k, _ = self.settled.get(name, (0, 0))
        arr = self.kept()
        return arr[max(k - self.dropped, 0) :]


def rank_candidates(
    episodes: EpisodeLog | None,
    occurrences: Mapping[str, tuple[np.ndarray, np.ndarray, int]],
    within: int,
    observed: tuple[int, int],
) -> list[ExplainEntry]:
    """rules.md, Explain, with the dropped occurrences and episodes accounted for.

    occurrences: name -> (kept starts, kept ends, covered time of dropped ones).
    """
    n_ep = len(episodes) if episodes is not None else 0
    o0, o1 = observed
    span = max(o1 - o0, 0)
    out: list[ExplainEntry] = []
    for name, (s, e, dropped_cov) in occurrences.items():
        cov_ns = covered(s, e, within, o0, o1) + dropped_cov
        coverage = cov_ns / span if span > 0 else 0.0
        support = 0
        if episodes is not None and n_ep:
            support = episodes.settled.get(name, (0, 0))[1]
            live = episodes.unsettled(name)
            support += int(np.count_nonzero(supported(s, e, within, live)))
        lift = (support / n_ep) / coverage if n_ep and coverage > 0 else 0.0
        out.append(ExplainEntry(name, lift, support, coverage))
    out.sort(key=lambda x: (-x.lift, -x.support, x.stream))
    return out


def settle_against(
    log: EpisodeLog,
    count: int,
    names: Sequence[str],
    arrays: Callable[[str], tuple[np.ndarray, np.ndarray, int]],
) -> None:
    """Settle the support of the oldest `count` kept episodes for each candidate."""
    for name in names:
        s, e, d = arrays(name)

        def hit(eps: np.ndarray, s: np.ndarray = s, e: np.ndarray = e, d: int = d) -> np.ndarray:
            return supported(s, e, d, eps)

        log.settle(name, log.dropped + count, hit)


def settle_before(log: EpisodeLog, name: str, s: np.ndarray, e: np.ndarray, d: int, t: int) -> None:
    """Settle X's support of the leading kept episodes before t (X drops what covers them)."""
    arr = log.kept()
    before = arr < t
    m = int(before.shape[0]) if before.all() else int(np.argmin(before))
    if m:
        log.settle(name, log.dropped + m, lambda eps: supported(s, e, d, eps))
