"""Per-event predicates (`where`) as boolean masks over a batch's columns.

Numbers compare in numpy; strings are decided once per distinct value of the batch
and mapped back, so `matches` runs one regex search per distinct `comm`, not per
event. An absent optional value never satisfies a comparison.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np

from ..dsl.plan import Pred, PredBool, PredCompare, PredIn, PredMatch, PredNot
from .keys import factorize, factorized

__all__ = ["pred_fields", "pred_mask"]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def pred_fields(pred: Pred) -> set[str]:
    """Fields a predicate reads."""
    if isinstance(pred, PredBool):
        out: set[str] = set()
        for p in pred.items:
            out |= pred_fields(p)
        return out
    if isinstance(pred, PredNot):
        return pred_fields(pred.item)
    return {pred.field}


def _per_distinct(col: np.ndarray, fn: Callable[[Any], bool]) -> np.ndarray:
    codes, uniq = factorize(col)  # shared with the other predicates and keys of the batch
    # One slot per distinct value, then False for absent ones (code -1).
    table = np.fromiter((bool(fn(v)) for v in uniq), dtype=bool, count=len(uniq))
    return np.append(table, False)[codes]


def pred_mask(pred: Pred, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Which of n rows satisfy pred. A field the rows lack matches nothing."""
    if isinstance(pred, PredBool):
        masks = [pred_mask(p, columns, n) for p in pred.items]
        red = np.logical_and if pred.op == "and" else np.logical_or
        out = masks[0]
        for m in masks[1:]:
            out = red(out, m)
        return out
    if isinstance(pred, PredNot):
        return ~pred_mask(pred.item, columns, n)
    col = columns.get(pred.field)
    if col is None:
        return np.zeros(n, dtype=bool)
    if isinstance(pred, PredMatch):
        rx = re.compile(pred.pattern)
        return _per_distinct(col, lambda v: isinstance(v, str) and rx.search(v) is not None)
    if isinstance(pred, PredIn):
        if col.dtype == object:
            allowed = set(pred.values)
            return _per_distinct(col, allowed.__contains__)
        nums = [float(v) for v in pred.values if not isinstance(v, str)]
        return np.isin(col, np.asarray(nums, dtype=np.float64))
    assert isinstance(pred, PredCompare)
    op = _OPS[pred.op]
    value = pred.value
    if col.dtype == object:
        if not isinstance(value, str):
            return np.zeros(n, dtype=bool)
        if pred.op in ("==", "!=") and not factorized(col):
            # One vectorized comparison beats hashing every value (strings are not
            # shared objects); `!=` leaves out absent values.
            eq = np.asarray(col == value, dtype=bool)
            return eq if pred.op == "==" else ~eq & np.not_equal(col, cast(Any, None))
        return _per_distinct(col, lambda v: isinstance(v, str) and op(v, value))
    if isinstance(value, str):
        return np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        out = np.asarray(op(col, float(value)), dtype=bool)
    return out & ~np.isnan(col)
