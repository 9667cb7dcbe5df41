"""Sliding `over`/`for` steps: when a step is due and when a key's run fires.

rules.md: steps are multiples of the tick, from the first tick at or after the
first event the rule reads; a rule fires at the first step where its condition
holds (with `for D`, has held at every step of the last D) and not again for that
key until after a step where it does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Sliding", "StepOutcome", "ceil_tick"]


def ceil_tick(t: int, tick: int) -> int:
    """The first multiple of tick at or after t."""
    return -((-t) // tick) * tick


@dataclass(slots=True)
class StepOutcome:
    started: list[int] = field(default_factory=list)  # codes whose run began at this step
    ready: list[int] = field(default_factory=list)  # codes to fire for (once per run)


_NO_RUN = np.iinfo(np.int64).min


class Sliding:
    """Step schedule of one `over` rule and the run state of each of its keys.

    Run state is kept in arrays indexed by key code (first step of the current run,
    fired in this run), so a step costs numpy work, not a Python step per key.
    """

    def __init__(self, tick: int, for_: int | None) -> None:
        self.tick = tick
        # Steps are multiples of the tick: "held at every step in [t - D, t]" means
        # the run began at or before the first step >= t - D, i.e. t - start >= D
        # rounded down to a multiple of the tick.
        self.for_ = (for_ or 0) // tick * tick
        self.next_step: int | None = None
        self._start = np.full(16, _NO_RUN, dtype=np.int64)
        self._fired = np.zeros(16, dtype=bool)
        self._active = np.empty(0, dtype=np.int64)  # codes with a run

    @property
    def runs(self) -> int:
        """Number of keys with a current run."""
        return int(self._active.shape[0])

    def start(self, first_ts: int) -> None:
        """The rule has read its first event (at first_ts)."""
        if self.next_step is None:
            self.next_step = ceil_tick(first_ts, self.tick)

    def due(self, limit: float) -> bool:
        return self.next_step is not None and self.next_step <= limit

    def all_fired(self, codes: np.ndarray) -> bool:
        """Has every run of these (held) codes fired already?"""
        return bool(self._fired[codes].all()) if codes.shape[0] else True

    def forget(self, codes: np.ndarray) -> None:
        """Codes released for reuse: drop their runs."""
        codes = codes[codes < self._start.shape[0]]
        self._start[codes] = _NO_RUN
        self._fired[codes] = False
        self._active = np.setdiff1d(self._active, codes)

    def _grow(self, n: int) -> None:
        size = self._start.shape[0]
        if n <= size:
            return
        new = max(n, 2 * size)
        st = np.full(new, _NO_RUN, dtype=np.int64)
        st[:size] = self._start
        fi = np.zeros(new, dtype=bool)
        fi[:size] = self._fired
        self._start, self._fired = st, fi

    def update(self, t: int, groups: np.ndarray, held: np.ndarray) -> StepOutcome:
        """Record the condition of each evaluated group at step t.

        Groups not evaluated (not alive) count as not holding, which also drops the
        state of forgotten keys.
        """
        out = StepOutcome()
        if not self._active.shape[0] and not held.any():
            return out  # no run before, none now
        hc = groups[held]
        if hc.shape[0]:
            self._grow(int(hc.max()) + 1)
        prev = self._start[hc]
        was = self._fired[hc]
        new = prev == _NO_RUN
        first = np.where(new, t, prev)
        fired = was | (t - first >= self.for_)
        if self._active.shape[0]:
            self._start[self._active] = _NO_RUN
            self._fired[self._active] = False
        self._start[hc] = first
        self._fired[hc] = fired
        self._active = hc
        if new.any():
            out.started = hc[new].tolist()
        ready = fired & ~was
        if ready.any():
            out.ready = hc[ready].tolist()
        return out
