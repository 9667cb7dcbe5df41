"""The runtime: runs a compiled plan over batches and turns matches into findings.

Pure: batches in, findings out, time from the events and the watermark only (no
awaits, no wall clock), so live, replay and tests share it. Each stream's history
is kept columnar for as long as any window, late trigger or baseline can reach it.

Steps cost what changed: many due steps of a rule are decided at once when its
condition allows (bulk.py); a step whose windows hold exactly the previous step's
rows reuses its outcome (a watchdog steps every rule at every tick), and skips
even the alive-groups lookup when nothing held; steps with empty windows are
skipped. Aggregate values are computed only when the condition reads them, and
all of them only for findings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..batch import Batch
from ..dsl.plan import CompiledRule, Plan
from ..findings import ExplainEntry, Finding
from ..model import CATALOG
from .bulk import BulkPlan, bulk_held, bulk_plan
from .evidence import evidence_for
from .groups import MIN_TTL, GroupLife
from .occurrences import (
    EpisodeLog,
    OccurrenceLog,
    rank_candidates,
    settle_against,
    settle_before,
)
from .periodic import PeriodicDetector
from .predicates import pred_mask
from .scope import AggValues, RuleScope, eval_cond
from .streams import KeyRegistry, StreamStore
from .summary import render_summary
from .triggers import Occurrence, PendingTriggers, trigger_windows
from .windows import Sliding, ceil_tick

__all__ = ["Evaluator"]

_INF = math.inf
_END_OF_INPUT = 2**63 - 1
_FLUSH_ROWS = 65536  # buffered rows per stream before ingesting regardless
_BULK_STEPS = 64  # steps of a rule decided at once, at most
_NO_GROUPS = np.zeros(0, dtype=np.int64)
_NO_HELD = np.zeros(0, dtype=bool)


@dataclass(slots=True)
class _Rule:
    rule: CompiledRule
    scope: RuleScope
    reads: frozenset[str]  # streams of the condition's aggregates
    reach: int  # how far before a window end its windows reach (incl. baseline)
    row_reach: int = 0  # the same for the windows read from rows (not from a sketch)
    sliding: Sliding | None = None
    pending: PendingTriggers | None = None
    horizon: int = 0  # sliding: how far back a step's windows reach
    bulk: BulkPlan | None = None  # sliding: how to decide many steps at once
    # sliding: (stream, window length) of each aggregate, None if a value depends on
    # the step's time itself (predict); the last step's (t, appends, groups, held)
    windows: tuple[tuple[str, int], ...] | None = None
    reads_sorted: tuple[str, ...] = ()
    memo: tuple[int, tuple[int, ...], np.ndarray, np.ndarray] | None = None
    life: GroupLife | None = None  # keyed rules: which groups are alive
    ttl: int = 0  # how long an idle group is kept
    cooldown: dict[tuple[Any, ...], int] = field(default_factory=dict)
    periodic: dict[tuple[Any, ...], PeriodicDetector] = field(default_factory=dict)
    last_episode: dict[tuple[Any, ...], int] = field(default_factory=dict)
    episodes: dict[tuple[Any, ...], EpisodeLog] = field(default_factory=dict)


def _none_if_nan(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


class Evaluator:
    """Evaluates every rule of a plan over pushed batches as the watermark advances."""

    def __init__(
        self, plan: Plan, *, tick: int = 100_000_000, margin: int = 30_000_000_000
    ) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        self.plan = plan
        self.tick = tick
        self._keys = KeyRegistry()
        self._stores: dict[str, StreamStore] = {}
        for s in sorted(plan.streams | {"lost"}):
            self._stores[s] = StreamStore(s, CATALOG[s].interval, self._keys)
        self._lost_col = self._stores["lost"].need_value("count")
        self._rules: list[_Rule] = []
        self._readers_of: dict[str, list[_Rule]] = {}
        self._triggers_of: dict[str, list[_Rule]] = {}
        for rule in plan.rules:
            self._rules.append(self._setup_rule(rule))
        for st in self._stores.values():
            st.freeze()
        self._rule_order = {r.name: i for i, r in enumerate(plan.rules)}
        self._margin = margin
        # The longest window (sketched ones included): lost rows, and the cutoff
        # before which key codes may be released, follow it.
        self.retention = max((r.reach for r in self._rules), default=0) + margin
        # Per stream: only as long as the rules reading its rows need (lost: the
        # longest); a sketched window has its rows counted at ingest.
        self._retention = {name: margin for name in self._stores}
        self._retention["lost"] = self.retention
        for rs in self._rules:
            for name in rs.rule.streams:
                self._retention[name] = max(self._retention[name], rs.row_reach + margin)
        # Explain: occurrence logs of candidate streams (None: every stream seen).
        self._explain_all = any(r.explain is not None and not r.explain.streams for r in plan.rules)
        self._explain_streams = {s for r in plan.rules if r.explain for s in r.explain.streams}
        gaps = [2 * r.explain.within for r in plan.rules if r.explain is not None]
        self._occ_gap = min(gaps, default=0)
        self._occ_widths = {r.explain.within for r in plan.rules if r.explain is not None}
        self._occurrences: dict[str, OccurrenceLog] = {}
        self._wm: int | float = -_INF
        self._first_ts: int | None = None
        # (emission, ts) of the events that lowered the first ts seen, in emission
        # order: explain's observed start as of a finding's ts, whatever the batching.
        self._firsts: list[tuple[int, int]] = []
        self._last_emit: int | None = None
        self._last_expiry: int | float = -_INF
        self._dirty: set[StreamStore] = set()
        self._due: int | float = _INF  # earliest step or trigger window end pending
        self._stats = {
            "events": 0,
            "ignored_events": 0,
            "late_events": 0,
            "evaluations": 0,
            "findings": 0,
            "suppressed": 0,
            "late_triggers": 0,
        }

    # ---- set-up ----
    def _setup_rule(self, rule: CompiledRule) -> _Rule:
        scope = RuleScope(rule, self._stores, self._keys, tick=self.tick)
        reads = frozenset(a.stream for a in rule.aggregates)
        over_reach = scope.reach
        if rule.correlation is None:
            window = rule.over or 0
            span = max(window, over_reach) + (rule.for_ or 0) + self.tick
            # The evidence baseline ends where the rule's own window starts, not where
            # a long `over` starts: a 10m baseline aggregate does not add 60s to it.
            base = window + (rule.for_ or 0) + self.tick + rule.baseline
            reach = max(span, base)
            rs = _Rule(rule, scope, reads, reach, sliding=Sliding(self.tick, rule.for_))
            # Sketched windows (long percentiles) read no rows once ingested.
            row_span = max(window, scope.row_reach) + (rule.for_ or 0) + self.tick
            rs.row_reach = max(row_span, base)
            rs.horizon = span
            rs.bulk = bulk_plan(rule)
            rs.reads_sorted = tuple(sorted(reads))
            if all(a.func != "predict" for a in rule.aggregates):
                rs.windows = tuple(
                    sorted(
                        {
                            (a.stream, a.over if a.over is not None else window)
                            for a in rule.aggregates
                        }
                    )
                )
            for s in reads:
                self._readers_of.setdefault(s, []).append(rs)
        else:
            d = rule.correlation.d
            span = 2 * d + over_reach
            rs = _Rule(rule, scope, reads, span + rule.baseline, pending=PendingTriggers())
            rs.row_reach = 2 * d + scope.row_reach + rule.baseline
            self._triggers_of.setdefault(rule.correlation.trigger.stream, []).append(rs)
        rs.ttl = max(rs.reach, MIN_TTL)
        if rule.periodic is not None and rule.periodic.every is not None:
            every = rule.periodic.every
            rs.ttl = max(rs.ttl, every + (rule.periodic.jitter or every // 10) + self.tick)
        if scope.tracks_groups:
            assert scope.free_index is not None
            rs.life = GroupLife(scope.free_index, scope.seen_times(), rs.ttl)
        return rs

    # ---- input ----
    def push(self, batch: Batch) -> None:
        """Add a batch (one stream, emission order). Streams no rule reads are dropped."""
        n = len(batch)
        if n == 0:
            return
        store = self._stores.get(batch.stream)
        explained = self._explain_all or batch.stream in self._explain_streams
        if store is None and not explained:
            self._stats["ignored_events"] += n
            return
        self._stats["events"] += n
        emit = batch.emit
        first = int(batch.ts.min())
        last = int(emit.max())
        self._note_first(batch.ts, emit, first)
        if self._last_emit is None or last > self._last_emit:
            self._last_emit = last
        if int(emit.min()) < self._wm:
            self._stats["late_events"] += int(np.count_nonzero(emit < self._wm))
        if explained:
            log = self._occurrences.get(batch.stream)
            if log is None:
                log = self._occurrences[batch.stream] = OccurrenceLog(
                    self._occ_gap, self._occ_widths, on_compact=self._compacting(batch.stream)
                )
            if self._first_ts is not None:
                log.origin = self._first_ts
            log.add(batch.ts, batch.end)
        if store is None:
            return
        store.add(batch)
        self._dirty.add(store)
        if store.pending_rows >= _FLUSH_ROWS:
            store.flush()
        for rs in self._readers_of.get(batch.stream, ()):
            assert rs.sliding is not None
            rs.sliding.start(first)
            if rs.sliding.next_step is not None and rs.sliding.next_step < self._due:
                self._due = rs.sliding.next_step
        for rs in self._triggers_of.get(batch.stream, ()):
            self._add_triggers(rs, batch)

    def _note_first(self, ts: np.ndarray, emit: np.ndarray, first: int) -> None:
        fl = self._firsts
        if fl and first >= fl[-1][1] and int(emit.min()) >= fl[-1][0]:
            return  # nothing earlier than what was known
        if self._first_ts is None or first < self._first_ts:
            self._first_ts = first
        order = np.argsort(emit, kind="stable")
        e, t = emit[order], ts[order]
        m = np.minimum.accumulate(t)
        new = np.ones(m.shape[0], dtype=bool)
        new[1:] = m[1:] < m[:-1]
        pts = set(fl)
        for ee, tt in zip(e[new].tolist(), t[new].tolist(), strict=True):
            pts.add((ee, tt))
        out: list[tuple[int, int]] = []
        for ee, tt in sorted(pts):
            if not out or tt < out[-1][1]:
                if out and out[-1][0] == ee:
                    out.pop()
                out.append((ee, tt))
        self._firsts = out

    def _observed_start(self, ts: int) -> int:
        """The first event's ts among those emitted at or before ts."""
        start = ts
        for e, t in self._firsts:
            if e > ts:
                break
            start = t
        return min(start, ts)

    def _flush(self) -> None:
        """Ingest buffered batches: history is only read when something is due."""
        for st in self._dirty:
            st.flush()
        self._dirty.clear()

    def _earliest_due(self) -> int | float:
        due: int | float = _INF
        for rs in self._rules:
            if rs.sliding is not None and rs.sliding.next_step is not None:
                due = min(due, rs.sliding.next_step)
            elif rs.pending is not None:
                due = min(due, rs.pending.earliest_end())
        return due

    def _add_triggers(self, rs: _Rule, batch: Batch) -> None:
        corr = rs.rule.correlation
        assert corr is not None and rs.pending is not None
        b = batch
        if corr.trigger.where is not None:
            b = batch.take(pred_mask(corr.trigger.where, batch.columns, len(batch)))
            if len(b) == 0:
                return
        starts, ends = trigger_windows(corr, b.ts, b.end)
        tf = rs.scope.tfields
        tvals: list[dict[str, Any]] = []
        cols = [(f, b.columns[f].tolist()) for f in tf if f in b.columns]
        for i in range(len(b)):
            d: dict[str, Any] = {}
            for f, c in cols:
                v = c[i]
                if v is not None and not (isinstance(v, float) and math.isnan(v)):
                    d[f] = v
            tvals.append(d)
        # A trigger emitted behind the watermark (a poller learning of it afterwards).
        self._stats["late_triggers"] += int(np.count_nonzero(b.emit < self._wm))
        rs.pending.add(starts, ends, b, tvals)
        self._due = min(self._due, int(ends.min()))

    # ---- evaluation ----
    def advance(self, watermark: int) -> list[Finding]:
        """Evaluate every step and trigger window whose end <= watermark.

        The largest int64 means end of input (the clock's INFINITY): same as finish().
        """
        if watermark >= _END_OF_INPUT:
            return self.finish()
        if watermark > self._wm:
            self._wm = watermark
        out = self._evaluate(self._wm, self._wm) if self._wm >= self._due else []
        # Occurrences emitted up to here can no longer be ahead of a finding's ts.
        for log in self._occurrences.values():
            log.advance(self._wm)
        # Likewise for when key values were last seen (group lifetime).
        wm = int(self._wm)
        for st in self._stores.values():
            for seen in st.seen.values():
                seen.commit(wm)
        self._maybe_expire()
        return out

    def finish(self) -> list[Finding]:
        """End of input: every pending trigger window, and steps up to the last event."""
        step_limit: int | float = -_INF
        if self._last_emit is not None:
            step_limit = ceil_tick(self._last_emit, self.tick)
        out = self._evaluate(step_limit, _INF)
        self._wm = _INF
        return out

    def _evaluate(self, step_limit: int | float, trigger_limit: int | float) -> list[Finding]:
        self._flush()
        out: list[Finding] = []
        for rs in self._rules:
            if rs.sliding is not None:
                self._run_steps(rs, step_limit, out)
            else:
                assert rs.pending is not None
                for occ in rs.pending.pop_due(trigger_limit):
                    self._eval_trigger(rs, occ, out)
        # Deterministic whatever the batching: by time, then rule, then key.
        out.sort(key=lambda f: (f.ts, self._rule_order[f.rule], repr(list(f.key.values()))))
        self._stats["findings"] += len(out)
        self._due = self._earliest_due()
        return out

    def _run_steps(self, rs: _Rule, limit: int | float, out: list[Finding]) -> None:
        sl = rs.sliding
        assert sl is not None
        scope = rs.scope
        over = rs.rule.over or 0
        tick = self.tick
        # Steps decided at once, [chunk_t0, chunk_end): held per step and key code,
        # and whether any key holds at each (None: decided one by one).
        chunk: np.ndarray | None = None
        chunk_any: list[bool] = []
        chunk_t0 = chunk_end = chunk_keys = 0
        while sl.due(limit):
            t = sl.next_step
            assert t is not None
            self._stats["evaluations"] += 1
            scope.sketch_step(t)
            if rs.bulk is not None and not chunk_t0 <= t < chunk_end:
                steps = _BULK_STEPS
                if limit != _INF:
                    steps = min(steps, (int(limit) - t) // tick + 1)
                chunk = bulk_held(scope, rs.bulk, t, steps, tick) if steps > 2 else None
                chunk_t0, chunk_end = t, t + steps * tick
                if chunk is not None:
                    chunk_any = [bool(x) for x in np.asarray(chunk.any(axis=1))]
                    chunk_keys = int(chunk.shape[1])
            row = (t - chunk_t0) // tick if chunk is not None and chunk_t0 <= t < chunk_end else -1
            if row >= 0 and not chunk_any[row] and not self._capped(rs):
                # No key holds: which keys are alive does not matter.
                sl.update(t, _NO_GROUPS, _NO_HELD)
                self._next(rs, t, limit, _NO_GROUPS, _NO_HELD)
                continue
            stamp = self._stamp(rs) if row < 0 else None
            same = stamp is not None and self._unchanged(rs, t, stamp)
            if (
                same
                and sl.runs == 0
                and rs.memo is not None
                and not rs.memo[3].any()
                and not self._capped(rs)
            ):
                # Nothing held at the previous step and no row moved since: nothing
                # holds now either, whichever keys are alive (a new one needs a row).
                rs.memo = (t, stamp, rs.memo[2], rs.memo[3])  # type: ignore[assignment]
                self._next(rs, t, limit, _NO_GROUPS, _NO_HELD)
                continue
            if rs.life is not None:
                groups = rs.life.groups(t)
            else:
                groups = scope.groups(t - rs.horizon, t, None)
            if groups.shape[0] == 0:
                sl.update(t, groups, _NO_HELD)
                sl.next_step = self._next_busy_step(rs, t, limit)
                continue
            vals = scope.values(t - over, t, None, groups, tick=tick)
            if row >= 0 and int(groups[-1]) < chunk_keys:  # codes sorted; none new since
                assert chunk is not None
                held = chunk[row][groups]
            else:
                if same and rs.memo is not None and np.array_equal(rs.memo[2], groups):
                    held = rs.memo[3]
                else:
                    held = eval_cond(rs.rule.cond, vals, groups.shape[0])
                rs.memo = None if stamp is None else (t, stamp, groups, held)
            outcome = sl.update(t, groups, held)
            if outcome.started or outcome.ready:
                pos = {c: i for i, c in enumerate(groups.tolist())}
                for c in outcome.started:
                    self._episode(rs, t, pos[c], c, vals, out)
                if rs.rule.periodic is None and outcome.ready:
                    fire = [(pos[c], c, None) for c in outcome.ready]
                    self._fire(rs, t - over, t, fire, vals, None, out)
            self._next(rs, t, limit, groups, held)

    def _next(
        self, rs: _Rule, t: int, limit: int | float, groups: np.ndarray, held: np.ndarray
    ) -> None:
        """The step after t: the next tick, or further when nothing can change before."""
        sl = rs.sliding
        assert sl is not None
        if self._settled(rs, groups, held) and self._idle(rs, t):
            nxt = self._next_busy_step(rs, t, limit)
            if rs.life is not None:
                # A group forgotten meanwhile drops its run: step there.
                change = rs.life.next_change(t)
                if change is not None:
                    nxt = max(t + self.tick, min(nxt, ceil_tick(change, self.tick)))
            sl.next_step = nxt
        else:
            sl.next_step = t + self.tick

    @staticmethod
    def _capped(rs: _Rule) -> bool:
        """May the rule have more groups than its cap (asking which are alive then
        counts evictions, so it is asked at every step)?"""
        return rs.life is not None and rs.life.index.size > rs.life.cap

    def _stamp(self, rs: _Rule) -> tuple[int, ...] | None:
        """Appends so far to each stream the condition reads (None: never reuse a step)."""
        if rs.windows is None:
            return None
        out = []
        for s in rs.reads_sorted:
            h = self._stores[s].history
            assert h is not None
            out.append(h.appends)
        return tuple(out)

    def _unchanged(self, rs: _Rule, t: int, stamp: tuple[int, ...]) -> bool:
        """Would step t see exactly the rows of the previous step's windows?

        The previous step is the tick before, no rows were added since, and none
        entered or left any aggregate window between the two steps. (A watchdog steps
        every rule at every tick, mostly with nothing new: those steps reuse the
        previous outcome.) Rows of the previous windows cannot have expired: history
        is kept a margin beyond the longest window.
        """
        memo = rs.memo
        if memo is None or memo[0] != t - self.tick or memo[1] != stamp:
            return False
        prev = memo[0]
        if rs.scope.sketch_left(prev, t):
            return False  # left a sketched window (its rows may be gone from history)
        assert rs.windows is not None
        for s, span in rs.windows:
            h = self._stores[s].history
            assert h is not None
            if h.index(prev, "right") != h.index(t, "right"):
                return False
            if h.index(prev - span, "left") != h.index(t - span, "left"):
                return False
        return True

    def _settled(self, rs: _Rule, groups: np.ndarray, held: np.ndarray) -> bool:
        """Would repeating this step's outcome change nothing (every held run has fired)?"""
        if not held.any():
            return True
        sl = rs.sliding
        assert sl is not None
        if rs.rule.periodic is not None:
            return True
        return sl.all_fired(groups[held])

    def _idle(self, rs: _Rule, t: int) -> bool:
        """No row of the rule's streams can be in any window of the step at t."""
        if rs.scope.sketch_holds(t):
            return False
        for s in rs.reads:
            h = self._stores[s].history
            assert h is not None
            i, j = h.span(t - rs.horizon, t)
            if j > i:
                return False
        return True

    def _next_busy_step(self, rs: _Rule, t: int, limit: int | float) -> int:
        """Skip steps whose windows are all empty: they would decide exactly as step t."""
        nxt: int | None = None
        for s in rs.reads:
            h = self._stores[s].history
            assert h is not None
            f = h.first_after(t)
            if f is not None and (nxt is None or f < nxt):
                nxt = f
        if nxt is None:
            if limit == _INF:
                return t + self.tick
            return max(t + self.tick, ceil_tick(int(limit) + 1, self.tick))
        return max(t + self.tick, ceil_tick(nxt, self.tick))

    def _episode(
        self, rs: _Rule, t: int, i: int, code: int, vals: AggValues, out: list[Finding]
    ) -> None:
        """A run of held steps began at t for this key (periodic and explain episodes)."""
        key = rs.scope.key_of(code, None)
        kt = tuple(key.values())
        if rs.rule.explain is not None:
            self._add_episode(rs, kt, t)
        spec = rs.rule.periodic
        if spec is None:
            return
        prev = rs.last_episode.get(kt)
        rs.last_episode[kt] = t
        if prev is not None and rs.life is not None:
            # Keep the group (and its detector) through N of its intervals.
            rs.life.extend(code, (t - prev) * max(spec.at_least, 2))
        det = rs.periodic.get(kt)
        if det is None:
            det = rs.periodic[kt] = PeriodicDetector(spec)
        hit = det.episode(t)
        if hit is not None:
            over = rs.rule.over or 0
            self._fire(rs, t - over, t, [(i, code, hit)], vals, None, out)

    def _eval_trigger(self, rs: _Rule, occ: Occurrence, out: list[Finding]) -> None:
        scope = rs.scope
        self._stats["evaluations"] += 1
        ws, we = occ.start, occ.end
        groups = scope.groups(min(ws, we - scope.reach), we, occ.tvals)
        if rs.life is not None:
            groups = np.union1d(groups, rs.life.groups(we))
        if groups.shape[0] == 0:
            return
        vals = scope.values(ws, we, occ.tvals, groups)
        held = eval_cond(rs.rule.cond, vals, groups.shape[0])
        codes = groups.tolist()
        fire = [(i, codes[i], None) for i in np.flatnonzero(held).tolist()]
        if fire:
            self._fire(rs, ws, we, fire, vals, occ, out)

    # ---- findings ----
    def _fire(
        self,
        rs: _Rule,
        ws: int,
        we: int,
        fire: Sequence[tuple[int, int, tuple[int, list[int]] | None]],
        vals: AggValues,
        occ: Occurrence | None,
        out: list[Finding],
    ) -> None:
        """Findings of one window for each (group position, key code, periodic hit).

        Work shared by the keys (rows for evidence, lost, trigger) is done once, so a
        burst of findings costs little more than their histograms.
        """
        rule = rs.rule
        tvals = occ.tvals if occ is not None else None
        keep: list[tuple[int, int, tuple[int, list[int]] | None, dict[str, Any]]] = []
        for i, code, hit in fire:
            key = rs.scope.key_of(code, tvals)
            kt = tuple(key.values())
            if rule.cooldown > 0:
                prev = rs.cooldown.get(kt)
                if prev is not None and we - prev < rule.cooldown:
                    self._stats["suppressed"] += 1
                    continue
                rs.cooldown[kt] = we
            keep.append((i, code, hit, key))
        if not keep:
            return
        exclude = None
        if occ is not None and rs.pending is not None:
            exclude = rs.pending.others(occ.seq, ws - rule.baseline, ws)
        evidence = evidence_for(rs.scope, ws, we, [k[1] for k in keep], tvals, exclude)
        trigger = occ.event() if occ is not None else None
        lost = self._lost(ws, we)
        labels = dict(rule.labels) if rule.labels else None
        values = vals.all()
        for (i, _, hit, key), ev in zip(keep, evidence, strict=True):
            kt = tuple(key.values())
            if occ is not None and rule.explain is not None:
                self._add_episode(rs, kt, ws)
            agg = [_none_if_nan(float(v[i])) for v in values]
            f = Finding(
                rule=rule.name,
                severity=rule.severity,
                ts=we,
                window=(ws, we),
                key=key,
                values={a.text: agg[j] for j, a in enumerate(rule.aggregates) if a.in_cond},
                trigger=trigger,
                evidence=ev,
                summary=render_summary(rule, agg, key, trigger, hit[0] if hit else None),
                lost=lost,
                labels=labels,
                description=rule.description or None,
            )
            if hit is not None:
                f.period, f.episodes = hit[0], list(hit[1])
            if rule.explain is not None:
                f.explain = self._explain(rs, kt, we)
            out.append(f)

    def _lost(self, ws: int, we: int) -> int:
        h = self._stores["lost"].history
        assert h is not None
        i, j = h.span(ws, we)
        c = h.col(self._lost_col)[i:j]
        return int(np.nansum(c)) if j > i else 0

    def _candidates(self, rs: _Rule) -> list[str]:
        spec = rs.rule.explain
        assert spec is not None
        if spec.streams:
            return list(spec.streams)
        return [s for s in self._occurrences if s not in rs.reads]

    def _explain(self, rs: _Rule, kt: tuple[Any, ...], ts: int) -> list[ExplainEntry]:
        spec = rs.rule.explain
        assert spec is not None
        occ: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
        for s in self._candidates(rs):
            log = self._occurrences.get(s)
            if log is None:
                continue
            starts, ends = log.view(ts)  # emitted at or before the finding's ts
            if starts.shape[0] or log.dropped:
                occ[s] = (starts, ends, log.dropped_cov.get(spec.within, 0))
        first = self._observed_start(ts)
        return rank_candidates(rs.episodes.get(kt), occ, spec.within, (first, ts))

    def _add_episode(self, rs: _Rule, kt: tuple[Any, ...], t: int) -> None:
        spec = rs.rule.explain
        assert spec is not None
        log = rs.episodes.get(kt)
        if log is None:
            log = rs.episodes[kt] = EpisodeLog()

        def arrays(name: str) -> tuple[np.ndarray, np.ndarray, int]:
            return (*self._occurrences[name].view(t), spec.within)

        def settle(el: EpisodeLog, eps: np.ndarray) -> None:
            names = [n for n in self._candidates(rs) if n in self._occurrences]
            settle_against(el, int(eps.shape[0]), names, arrays)

        log.add(t, settle)

    def _compacting(self, name: str) -> Any:
        """Before a log drops old intervals: settle the support of the episodes they cover."""

        def settle(starts: np.ndarray, ends: np.ndarray, boundary: int) -> None:
            for rs in self._rules:
                spec = rs.rule.explain
                if spec is None or not rs.episodes or name not in self._candidates(rs):
                    continue
                d = spec.within
                for el in rs.episodes.values():
                    settle_before(el, name, starts, ends, d, boundary - d)

        return settle

    # ---- memory ----
    def _maybe_expire(self) -> None:
        wm = self._wm
        if (
            wm == _INF
            or wm == -_INF
            # At most every 30 s: rows past their retention wait for it (and cost memory).
            or wm - self._last_expiry < max(min(self.retention // 4, 30_000_000_000), self.tick)
        ):
            return
        self._last_expiry = wm
        self._flush()
        cutoffs = {name: int(wm) - r for name, r in self._retention.items()}
        for rs in self._rules:
            if rs.pending is not None:
                early = rs.pending.earliest_start()
                # Correlation windows' sketches: as far back as their windows reach.
                sketch_cut = int(wm) - rs.reach - self._margin
                if early is not None:
                    sketch_cut = min(sketch_cut, early - rs.reach)
                    for name in rs.rule.streams:
                        cutoffs[name] = min(cutoffs[name], early - rs.row_reach)
                rs.scope.expire_sketches(sketch_cut)
        for name, st in self._stores.items():
            if st.history is not None:
                st.history.expire(cutoffs[name])
        # A code may go once no stream can hold a row carrying it and no rule keeps
        # its group alive.
        cutoff = min(cutoffs.values())
        now = int(wm)
        keeps: dict[int, np.ndarray] = {}
        alive: dict[int, np.ndarray] = {}
        for rs in self._rules:
            if rs.life is not None:
                m = alive[id(rs)] = rs.life.keep(now)
                k = keeps.get(id(rs.life.index))
                if k is None:
                    keeps[id(rs.life.index)] = m
                else:
                    n = max(k.shape[0], m.shape[0])
                    both = np.zeros(n, dtype=bool)
                    both[: k.shape[0]] |= k
                    both[: m.shape[0]] |= m
                    keeps[id(rs.life.index)] = both
        for ki in self._keys.values():
            dead = ki.release(cutoff, keeps.get(id(ki)))
            if dead.shape[0]:
                for st in self._stores.values():
                    st.forget_codes(ki.fields, dead)
                for rs in self._rules:
                    if rs.life is not None and rs.life.index is ki:
                        rs.life.forget(dead)
                        if rs.sliding is not None:
                            rs.sliding.forget(dead)
        for rs in self._rules:
            if rs.pending is not None:
                rs.pending.forget_before(cutoff)
            if rs.cooldown:
                cd = rs.rule.cooldown
                rs.cooldown = {k: v for k, v in rs.cooldown.items() if wm - v < cd}
            if rs.periodic or rs.episodes or rs.last_episode:
                self._forget_groups(rs, now, alive.get(id(rs)))

    def _forget_groups(self, rs: _Rule, now: int, alive: np.ndarray | None) -> None:
        """Periodic detectors and explain episodes go with their group, not before."""
        if not rs.rule.by:
            return  # one group, never forgotten
        scope = rs.scope

        def live(kt: tuple[Any, ...], last: int | None) -> bool:
            if alive is not None:
                c = scope.free_code(kt)
                return 0 <= c < alive.shape[0] and bool(alive[c])
            # No tracked free key (trigger fields, or combinations): idle time of the
            # key's own episodes decides.
            return last is not None and now - last < rs.ttl

        rs.last_episode = {k: t for k, t in rs.last_episode.items() if live(k, t)}
        rs.periodic = {k: d for k, d in rs.periodic.items() if k in rs.last_episode}
        rs.episodes = {
            k: e for k, e in rs.episodes.items() if e and live(k, rs.last_episode.get(k, e.last))
        }

    def stats(self) -> dict[str, int]:
        self._flush()
        s = dict(self._stats)
        s["keys_alive"] = sum(len(k) for k in self._keys.values())
        s["rows_retained"] = sum(
            len(st.history) for st in self._stores.values() if st.history is not None
        )
        s["pending_triggers"] = sum(len(r.pending) for r in self._rules if r.pending is not None)
        s["run_states"] = sum(r.sliding.runs for r in self._rules if r.sliding is not None)
        s["groups_evicted"] = sum(r.life.evictions for r in self._rules if r.life is not None)
        s["key_states"] = sum(
            len(r.cooldown) + len(r.periodic) + len(r.episodes) for r in self._rules
        )
        return s
