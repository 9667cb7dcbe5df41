"""Many consecutive steps of a sliding rule decided at once.

A replay advance (or a live one that fell behind) makes a rule due for many steps.
Deciding each step alone costs a few dozen numpy calls on a window that shares
most of its rows with the next one. When the condition only compares counts, sums
and rates with each other or with constants, and percentiles, minima and maxima
with constants, every step's decision follows from counts per (window, key):

    x_r (nearest rank r of n values) >  c  <=>  #(v <= c) <  r
    x_r >= c  <=>  #(v < c) <  r          x_r < c  <=>  #(v < c) >= r
    x_r <= c  <=>  #(v <= c) >= r         (min: r = 1, max: r = n)

so the rows of all the steps' windows are read once, cut at the window bounds, and
counted (or summed) per (segment, key) with one bincount; a cumulative sum over
segments gives every window. Exact: counts are integers and sums are of whole
numbers below 2**53. Anything else is decided step by step (scope.eval_cond).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dsl.plan import AggRef, Arith, BoolOp, Compare, CompiledRule, Cond, Not, Num, ValueExpr
from .aggregates import percentile_rank
from .scope import _CMP, RuleScope

__all__ = ["BulkPlan", "bulk_plan"]

_VALUE_FUNCS = frozenset({"count", "rate", "sum", "avg"})
_RANK_FUNCS = frozenset({"percentile", "min", "max"})
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
_MAX_CELLS = 1 << 21  # (segments x keys) per aggregate and chunk of steps
_LONG_ROWS_PER_STEP = 2048  # a long window's rows read at once, at most, per step
_EXACT = 2.0**53
_NS_PER_S = 1e9


@dataclass(frozen=True, slots=True)
class _Test:
    """`aggregate k op c`, k a percentile, min or max."""

    k: int
    op: str
    c: float


@dataclass(slots=True)
class BulkPlan:
    cond: Cond
    tests: dict[Compare, _Test]
    values: frozenset[int]  # aggregates read as values (count, rate, sum, avg)
    ranked: frozenset[int]  # aggregates only tested against constants


def _side(e: ValueExpr, rule: CompiledRule, values: set[int]) -> bool:
    """A value expression made of constants and count/rate/sum/avg aggregates."""
    if isinstance(e, Num):
        return True
    if isinstance(e, AggRef):
        if rule.aggregates[e.index].func in _VALUE_FUNCS:
            values.add(e.index)
            return True
        return False
    return _side(e.left, rule, values) and _side(e.right, rule, values)


def bulk_plan(rule: CompiledRule) -> BulkPlan | None:
    """How to decide many steps of this rule at once; None when it cannot be."""
    if rule.correlation is not None:
        return None
    tests: dict[Compare, _Test] = {}
    values: set[int] = set()

    def walk(c: Cond) -> bool:
        if isinstance(c, Not):
            return walk(c.item)
        if isinstance(c, BoolOp):
            return all(walk(x) for x in c.items)
        if c.op in _FLIP:
            for side, other, op in ((c.left, c.right, c.op), (c.right, c.left, _FLIP[c.op])):
                if (
                    isinstance(side, AggRef)
                    and isinstance(other, Num)
                    and rule.aggregates[side.index].func in _RANK_FUNCS
                ):
                    tests[c] = _Test(side.index, op, float(other.value))
                    return True
        return _side(c.left, rule, values) and _side(c.right, rule, values)

    if not walk(rule.cond):
        return None
    ranked = frozenset(t.k for t in tests.values())
    return BulkPlan(rule.cond, tests, frozenset(values), ranked)


class _Counts:
    """Rows of one aggregate over a chunk of steps, cut at every window bound."""

    def __init__(
        self, scope: RuleScope, k: int, los: np.ndarray, his: np.ndarray, size: int
    ) -> None:
        r = scope.aggs[k]
        ts, vals, codes = r.window_ts(int(los[0]), int(his[-1]))
        self.vals = vals
        self.keyed = codes is not None and r.gcol is not None
        self.g = size if self.keyed else 1
        left = np.searchsorted(ts, los, "left")
        right = np.searchsorted(ts, his, "right")
        bounds = np.unique(np.concatenate((left, right)))
        m = int(ts.shape[0])
        nseg = int(bounds.shape[0]) + 1
        self.ok = nseg * self.g <= _MAX_CELLS
        if not self.ok:
            return
        seg = np.repeat(
            np.arange(nseg, dtype=np.int64), np.diff(np.concatenate(([0], bounds, [m])))
        )
        self.key = seg * self.g + codes if self.keyed and codes is not None else seg
        self.nseg = nseg
        self.bl = np.searchsorted(bounds, left)
        self.br = np.searchsorted(bounds, right)

    def per_window(self, weights: np.ndarray | None = None) -> np.ndarray:
        """(steps, keys): the count (or sum of weights) of each step's window."""
        c = np.bincount(self.key, weights, minlength=self.nseg * self.g).reshape(self.nseg, self.g)
        if weights is not None:
            c = c.astype(np.float64)  # no rows: bincount gives ints even with weights
        cum = np.cumsum(c, axis=0)
        return cum[self.br] - cum[self.bl]


def bulk_held(
    scope: RuleScope, plan: BulkPlan, t0: int, steps: int, tick: int
) -> np.ndarray | None:
    """Held per (step, key code) for the steps t0, t0 + tick, ...; None: too large
    or not exact here (then each step is decided alone)."""
    rule = scope.rule
    size = max(scope.free_index.size, 1) if scope.free_index is not None else 1
    his = t0 + tick * np.arange(steps, dtype=np.int64)
    over = rule.over or 0
    counts: dict[int, _Counts] = {}
    for k in plan.values | plan.ranked:
        spec, r = rule.aggregates[k], scope.aggs[k]
        if (r.gcol is not None and not r.full) or r.tcol is not None:
            return None
        span = spec.over if spec.over is not None else over
        if scope.sketched(k):
            return None  # its rows are counted at ingest, not kept: step by step
        if scope._incremental(k, t0 - span, t0, tick):
            # A long window: kept incrementally step by step, unless its rows are few.
            i, j = r.history.span(t0 - span, int(his[-1]))
            if j - i > _LONG_ROWS_PER_STEP * steps:
                return None
        c = _Counts(scope, k, his - span, his, size)
        if not c.ok:
            return None
        counts[k] = c
    vals: dict[int, np.ndarray] = {}
    for k in plan.values:
        spec, c = rule.aggregates[k], counts[k]
        n = c.per_window().astype(np.float64)
        if spec.func == "count":
            vals[k] = n
        elif spec.func == "rate":
            span = spec.over if spec.over is not None else over
            vals[k] = n / (span / _NS_PER_S) if span > 0 else np.full_like(n, np.nan)
        else:
            v = c.vals
            assert v is not None
            if v.shape[0] and not (
                bool(np.all(v == np.floor(v))) and float(np.abs(v).sum()) < _EXACT
            ):
                return None  # sums by differences would not be exact
            s = c.per_window(v)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = s / n if spec.func == "avg" else s
            out[n == 0] = np.nan
            vals[k] = out
    ns: dict[int, np.ndarray] = {}

    def test(t: _Test) -> np.ndarray:
        spec, c = rule.aggregates[t.k], counts[t.k]
        n = ns.get(t.k)
        if n is None:
            n = ns[t.k] = c.per_window()
        v = c.vals
        assert v is not None
        strict = t.op in (">=", "<")
        under = c.per_window((v < t.c) if strict else (v <= t.c))
        if spec.func == "min":
            rank = np.ones_like(n)
        elif spec.func == "max":
            rank = n
        else:
            assert spec.q is not None
            rank = percentile_rank(spec.q, n)
        held = under < rank if t.op in (">", ">=") else under >= rank
        return np.asarray(held & (n > 0), dtype=bool)

    def value(e: ValueExpr) -> np.ndarray | float:
        if isinstance(e, Num):
            return float(e.value)
        if isinstance(e, AggRef):
            return vals[e.index]
        assert isinstance(e, Arith)
        a, b = value(e.left), value(e.right)
        with np.errstate(all="ignore"):
            if e.op == "+":
                return np.add(a, b)
            if e.op == "-":
                return np.subtract(a, b)
            if e.op == "*":
                return np.multiply(a, b)
            r = np.divide(a, b)
            return np.where(np.equal(b, 0), np.nan, r)

    def cond(c: Cond) -> np.ndarray:
        if isinstance(c, Compare):
            t = plan.tests.get(c)
            if t is not None:
                return test(t)
            a, b = value(c.left), value(c.right)
            with np.errstate(invalid="ignore"):
                res = _CMP[c.op](a, b)
            return np.asarray(res & ~np.isnan(a) & ~np.isnan(b), dtype=bool)
        if isinstance(c, Not):
            return ~cond(c.item)
        parts = [cond(x) for x in c.items]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if c.op == "and" else (out | p)
        return out

    return np.broadcast_to(np.asarray(cond(plan.cond), dtype=bool), (steps, size))
