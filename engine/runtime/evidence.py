"""A finding's evidence: histograms of each evidence field in the window and baseline.

events.md: the baseline covers [window start − baseline, window start) for the same
key and `where` filter as the condition's aggregate on that field, leaving out time
inside the rule's other trigger windows (they would hide the contrast).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..findings import Evidence, Histogram
from .explain import merge_intervals
from .histogram import histogram
from .scope import Reader, RuleScope

__all__ = ["evidence_for", "outside"]

_FEW_KEYS = 8


def outside(ts: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """True for the times not inside any of the closed intervals [starts, ends]."""
    if starts.shape[0] == 0:
        return np.ones(ts.shape[0], dtype=bool)
    ms, me = merge_intervals(starts, ends)
    k = np.searchsorted(ms, ts, "right") - 1
    return ~((k >= 0) & (ts <= me[np.maximum(k, 0)]))


def _by_key(
    scope: RuleScope,
    r: Reader,
    codes: list[int],
    vals: np.ndarray,
    row_codes: np.ndarray | None,
) -> list[np.ndarray] | None:
    """The values of each group, projected on the key fields r's stream carries.

    None when r's rows are not keyed: every group shares all of them.
    """
    if row_codes is None or r.gcol is None:
        return None
    want = np.asarray(codes, dtype=np.int64)
    if not r.full:
        want = scope.partial_codes(r, want)
    if want.shape[0] <= _FEW_KEYS:
        # A few findings (the usual case): one pass per key beats sorting the rows.
        return [vals[row_codes == c] for c in want.tolist()]
    order = np.argsort(row_codes, kind="stable")
    sc, sv = row_codes[order], vals[order]
    lo = np.searchsorted(sc, want, "left").tolist()
    hi = np.searchsorted(sc, want, "right").tolist()
    return [sv[a:b] for a, b in zip(lo, hi, strict=True)]


def _histograms(
    scope: RuleScope, r: Reader, codes: list[int], vals: np.ndarray, rc: np.ndarray | None
) -> list[Histogram]:
    parts = _by_key(scope, r, codes, vals, rc)
    if parts is None:
        return [histogram(vals)] * len(codes)
    return [histogram(p) for p in parts]


def evidence_for(
    scope: RuleScope,
    start: int,
    end: int,
    codes: list[int],
    tvals: Mapping[str, Any] | None,
    exclude: tuple[np.ndarray, np.ndarray] | None,
) -> list[dict[str, Evidence]]:
    """Evidence of findings over [start, end], one per group code; `exclude`: other windows."""
    out: list[dict[str, Evidence]] = [{} for _ in codes]
    b0 = start - scope.rule.baseline
    for stream, fld, r in scope.evidence:
        _, v, c = r.rows(start, end, tvals)
        assert v is not None
        window = _histograms(scope, r, codes, v, c)
        bts, bv, bc = r.rows(b0, start, tvals, open_hi=True)
        assert bv is not None
        if exclude is not None and bts.shape[0]:
            keep = outside(bts, *exclude)
            bv = bv[keep]
            bc = None if bc is None else bc[keep]
        baseline = _histograms(scope, r, codes, bv, bc)
        for o, w, b in zip(out, window, baseline, strict=True):
            o[f"{stream}.{fld}"] = Evidence(window=w, baseline=b)
    return out
