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


class Sliding:
    """Step schedule of one `over` rule and the run state of each of its keys."""

    def __init__(self, tick: int, for_: int | None) -> None:
        self.tick = tick
        self.for_ = for_ or 0
        self.next_step: int | None = None
        # code -> [first step of the current run, fired in this run]
        self.runs: dict[int, list[int]] = {}

    def start(self, first_ts: int) -> None:
        """The rule has read its first event (at first_ts)."""
        if self.next_step is None:
            self.next_step = ceil_tick(first_ts, self.tick)

    def due(self, limit: float) -> bool:
        return self.next_step is not None and self.next_step <= limit

    def update(self, t: int, groups: np.ndarray, held: np.ndarray) -> StepOutcome:
        """Record the condition of each evaluated group at step t.

        Groups not evaluated (not alive) count as not holding, which also drops the
        state of forgotten keys.
        """
        out = StepOutcome()
        true_codes = groups[held].tolist()
        if len(true_codes) != len(self.runs) or any(c not in self.runs for c in true_codes):
            keep = set(true_codes)
            for c in [c for c in self.runs if c not in keep]:
                del self.runs[c]
        for c in true_codes:
            run = self.runs.get(c)
            if run is None:
                run = self.runs[c] = [t, 0]
                out.started.append(c)
            if not run[1] and t - run[0] >= self.for_:
                run[1] = 1
                out.ready.append(c)
        return out
