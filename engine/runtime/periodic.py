"""Periodic detection (rules.md, "Periodic"): steady spacing of a rule's episodes.

The detector is edge-triggered on "the last N episodes are steady": it fires when
that becomes true and stays quiet while it remains true, so a steady run fires
once and a new run fires again only after the spacing was broken.
"""

from __future__ import annotations

import itertools
from collections import deque

from ..dsl.plan import PeriodicSpec

__all__ = ["PeriodicDetector"]


class PeriodicDetector:
    """One per rule and key; fed episode times (first steps) in increasing order."""

    def __init__(self, spec: PeriodicSpec) -> None:
        self.spec = spec
        self._n = max(spec.at_least, 2)  # one interval at least; the compiler checks N
        self._times: deque[int] = deque(maxlen=self._n)
        self._steady = False

    def _check(self) -> int | None:
        """The period of the last N episodes, or None when their spacing is not steady."""
        times = list(self._times)
        if len(times) < self._n:
            return None
        gaps = [b - a for a, b in itertools.pairwise(times)]
        mean = sum(gaps) / len(gaps)
        if mean <= 0:
            return None
        jitter = self.spec.jitter if self.spec.jitter is not None else 0.1 * mean
        if max(gaps) - min(gaps) > jitter:
            return None
        if self.spec.every is not None and abs(mean - self.spec.every) > jitter:
            return None
        return round(mean)

    def episode(self, t: int) -> tuple[int, list[int]] | None:
        """Record an episode at t; (period_ns, the N episode times) when a run starts."""
        self._times.append(t)
        period = self._check()
        was = self._steady
        self._steady = period is not None
        if period is not None and not was:
            return period, list(self._times)
        return None
