"""A finding's sentence for people: the rule's `summary` template, or a default.

Default: "p99(disk.io.latency) = 1.8ms (> 1ms) within 200ms of zfs.txg.sync
pool=tank txg=8812" — each condition value, what it was compared with, the window
and the key or trigger that decided it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..dsl.plan import AggRef, BoolOp, Compare, CompiledRule, Cond, Not, Num, ValueExpr
from ..units import Kind, format_value
from .scope import eval_value

__all__ = ["expr_kind", "render_summary"]

_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}


def expr_kind(rule: CompiledRule, expr: ValueExpr) -> Kind:
    if isinstance(expr, AggRef):
        return rule.aggregates[expr.index].kind
    return expr.kind


def _value(rule: CompiledRule, expr: ValueExpr, aggs: Sequence[float | None]) -> float | None:
    arrs = [np.array([np.nan if v is None else v]) for v in aggs]
    v = float(eval_value(expr, arrs, 1)[0])
    return None if math.isnan(v) else v


def _fmt(rule: CompiledRule, expr: ValueExpr, aggs: Sequence[float | None]) -> str:
    if isinstance(expr, Num):
        return format_value(expr.value, expr.kind)
    return format_value(_value(rule, expr, aggs), expr_kind(rule, expr))


def _comparisons(
    cond: Cond, out: dict[int, str], rule: CompiledRule, aggs: Sequence[float | None]
) -> None:
    """For aggregates compared directly: "(> 1ms)", first comparison wins."""
    if isinstance(cond, Compare):
        if isinstance(cond.left, AggRef) and cond.left.index not in out:
            out[cond.left.index] = f"({cond.op} {_fmt(rule, cond.right, aggs)})"
        elif isinstance(cond.right, AggRef) and cond.right.index not in out:
            out[cond.right.index] = f"({_FLIP[cond.op]} {_fmt(rule, cond.left, aggs)})"
    elif isinstance(cond, Not):
        _comparisons(cond.item, out, rule, aggs)
    elif isinstance(cond, BoolOp):
        for c in cond.items:
            _comparisons(c, out, rule, aggs)


def _context(rule: CompiledRule) -> str:
    c = rule.correlation
    if c is None:
        return f"over {format_value(rule.over, Kind.DURATION)}" if rule.over else ""
    d = format_value(c.d, Kind.DURATION)
    s = c.trigger.stream
    return {
        "within": f"within {d} of {s}",
        "before": f"before {s} within {d}",
        "after": f"after {s} within {d}",
        "during": f"during {s}",
    }[c.kind]


def _kv(k: str, v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return f"{k}={v}"


def render_summary(
    rule: CompiledRule,
    aggs: Sequence[float | None],
    key: Mapping[str, Any],
    trigger: Mapping[str, Any] | None,
    period: int | None = None,
) -> str:
    if rule.summary is not None:
        return "".join(
            p if isinstance(p, str) else format_value(_value(rule, p, aggs), expr_kind(rule, p))
            for p in rule.summary
        )
    cmp: dict[int, str] = {}
    _comparisons(rule.cond, cmp, rule, aggs)
    parts: list[str] = []
    for i, a in enumerate(rule.aggregates):
        if not a.in_cond:
            continue
        s = f"{a.text} = {format_value(aggs[i], a.kind)}"
        if i in cmp:
            s += " " + cmp[i]
        parts.append(s)
    words = [", ".join(parts)]
    ctx = _context(rule)
    if ctx:
        words.append(ctx)
    shown: set[str] = set()
    if trigger is not None:
        for k, v in trigger.items():
            if k not in ("stream", "ts", "end"):
                words.append(_kv(k, v))
                shown.add(k)
    words.extend(_kv(k, v) for k, v in key.items() if k not in shown)
    if period is not None:
        words.append(f"(recurring every {format_value(period, Kind.DURATION)})")
    return " ".join(w for w in words if w)
