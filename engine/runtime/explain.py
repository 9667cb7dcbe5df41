"""Explain ranking (rules.md, "Explain"): which streams the episodes fall near.

Coverage and support are computed on merged intervals in numpy (sort, running
maximum, searchsorted), so a candidate with a million occurrences costs one sort.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..findings import ExplainEntry

__all__ = ["merge_intervals", "rank"]


def merge_intervals(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of closed intervals [lo, hi] as disjoint sorted intervals."""
    if lo.shape[0] == 0:
        return lo.astype(np.int64), hi.astype(np.int64)
    order = np.argsort(lo, kind="stable")
    lo = lo[order]
    hi = hi[order]
    reach = np.maximum.accumulate(hi)
    # A new group starts where an interval begins after everything before it ended.
    start = np.ones(lo.shape[0], dtype=bool)
    start[1:] = lo[1:] > reach[:-1]
    first = np.flatnonzero(start)
    last = np.append(first[1:], lo.shape[0]) - 1
    return lo[first], reach[last]


def rank(
    episodes: Sequence[int],
    occurrences: Mapping[str, tuple[np.ndarray, np.ndarray]],
    within: int,
    observed: tuple[int, int],
) -> list[ExplainEntry]:
    """Candidates by lift, best first (ties: higher support, then name)."""
    ep = np.asarray(episodes, dtype=np.int64)
    n_ep = int(ep.shape[0])
    o0, o1 = observed
    span = max(o1 - o0, 0)
    out: list[ExplainEntry] = []
    for name, (starts, ends) in occurrences.items():
        s = np.asarray(starts, dtype=np.int64)
        if s.shape[0] == 0:
            continue
        e = np.asarray(ends, dtype=np.int64)
        glo, ghi = merge_intervals(s - within, e + within)
        covered = np.clip(ghi, o0, o1) - np.clip(glo, o0, o1)
        coverage = float(covered.sum()) / span if span > 0 else 0.0
        if n_ep:
            i = np.searchsorted(glo, ep, side="right") - 1
            inside = (i >= 0) & (ep <= ghi[np.maximum(i, 0)])
            support = int(inside.sum())
        else:
            support = 0
        lift = (support / n_ep) / coverage if n_ep and coverage > 0 else 0.0
        out.append(ExplainEntry(name, lift, support, coverage))
    out.sort(key=lambda x: (-x.lift, -x.support, x.stream))
    return out
