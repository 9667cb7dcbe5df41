"""One rule's view of the stores: evaluate its aggregates and condition for a window.

Every group (key) of the window is evaluated at once: rows are sliced by
`searchsorted`, filtered with precomputed masks and grouped by their key codes.

Keys (rules.md, "Keys"): `by` fields the trigger carries are fixed by the trigger
occurrence and constrain only the streams that carry them; the other (free) fields
form the groups, taken from the condition streams that carry all of them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from ..dsl.plan import AggRef, AggSpec, Arith, BoolOp, Compare, CompiledRule, Cond, Not, Num, Pred
from ..dsl.plan import ValueExpr as ValueExprT
from ..model import CATALOG
from ..units import Kind
from .aggregates import aggregate, percentile_rank, rank_of
from .history import History
from .incremental import RunningSums, SortedWindow
from .keys import KeyIndex, SeenTimes
from .sketch import SlicedPercentile, SlicedRows
from .streams import KeyRegistry, StreamStore

__all__ = ["AggValues", "Reader", "RuleScope", "eval_cond", "eval_value"]

_MAX_PRODUCT = 10_000  # groups made of combinations, per window
_SUMMED = frozenset({"count", "rate", "sum", "avg"})
_NEEDS_TS = frozenset({"stddev", "growth", "predict"})  # the others ignore row times
_NO_TS = np.empty(0, dtype=np.int64)
_LONG_WINDOW_STEPS = 50  # keyed percentiles are kept sorted over windows this many ticks long


@dataclass(slots=True)
class Reader:
    """How to read the rows of one stream that count for one aggregate (or evidence)."""

    store: StreamStore
    value: str | None  # value column, None for count/rate
    mask: str | None  # `where` column
    tfields: tuple[str, ...]  # fields fixed by the trigger that this stream carries
    tcol: str | None
    tindex: KeyIndex | None
    pfields: tuple[str, ...]  # free `by` fields this stream carries
    gcol: str | None
    pindex: KeyIndex | None
    full: bool  # carries every free field
    valid: str | None = None  # value present, `where` true and key present, per row

    def _slice(
        self, i: int, j: int
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """(values, group codes, which rows count) of history rows i:j; `which` is
        None when there is neither a value, a code nor a filter to look at."""
        h = self.history
        vals = h.col(self.value)[i:j] if self.value is not None else None
        codes = h.col(self.gcol)[i:j] if self.gcol is not None else None
        if self.valid is not None:
            keep = h.col(self.valid)[i:j]
        elif self.mask is not None:
            keep = h.col(self.mask)[i:j]
        elif vals is not None:
            keep = ~np.isnan(vals)
        elif codes is not None:
            keep = codes >= 0
        else:
            keep = None
        return vals, codes, keep

    def window(self, lo: int, hi: int) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """(rows, values, group codes) of the rows in [lo, hi] that count; no trigger
        fields (tcol) and no timestamps: the common path of a sliding step."""
        h = self.history
        i = h.index(lo, "left")
        j = h.index(hi, "right")
        vals, codes, keep = self._slice(i, j)
        if keep is None:
            return j - i, None, None
        if vals is not None:
            vals = vals[keep]
        if codes is not None:
            codes = codes[keep]
        n = (
            int(vals.shape[0])
            if vals is not None
            else (int(codes.shape[0]) if codes is not None else int(np.count_nonzero(keep)))
        )
        return n, vals, codes

    def window_ts(
        self, lo: int, hi: int
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(ts, values, group codes) of the rows in [lo, hi] that count, as `window`."""
        h = self.history
        i = h.index(lo, "left")
        j = h.index(hi, "right")
        ts = h.ts[i:j]
        vals, codes, keep = self._slice(i, j)
        if keep is None:
            return ts, None, None
        if keep.all():
            return ts, vals, codes
        return (
            ts[keep],
            None if vals is None else vals[keep],
            None if codes is None else codes[keep],
        )

    @property
    def history(self) -> History:
        h = self.store.history
        assert h is not None
        return h

    def rows(
        self,
        lo: int,
        hi: int,
        tvals: Mapping[str, Any] | None,
        *,
        open_hi: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(ts, values, group codes) of the rows in [lo, hi] (or [lo, hi)) that count."""
        h = self.history
        ts_all = h.ts
        i = h.index(lo, "left")
        j = h.index(hi, "left" if open_hi else "right")
        ts = ts_all[i:j]
        keep: np.ndarray | None = None
        if self.mask is not None:
            keep = h.col(self.mask)[i:j]
        vals = None
        if self.value is not None:
            vals = h.col(self.value)[i:j]
            ok = ~np.isnan(vals)
            keep = ok if keep is None else keep & ok
        if self.tcol is not None and self.tindex is not None:
            code = -1
            if tvals is not None and all(f in tvals for f in self.tfields):
                code = self.tindex.lookup(tuple(tvals[f] for f in self.tfields))
            # An unknown trigger value (or one the trigger lacks) matches no row.
            ok = h.col(self.tcol)[i:j] == code if code >= 0 else np.zeros(j - i, dtype=bool)
            keep = ok if keep is None else keep & ok
        codes = None
        if self.gcol is not None:
            codes = h.col(self.gcol)[i:j]
            ok = codes >= 0
            keep = ok if keep is None else keep & ok
        if keep is not None:
            ts = ts[keep]
            vals = None if vals is None else vals[keep]
            codes = None if codes is None else codes[keep]
        return ts, vals, codes


def _empty_value(spec: AggSpec, start: int, end: int) -> float:
    if spec.func == "count" or (spec.func == "rate" and end > start):
        return 0.0
    return float("nan")


class RuleScope:
    """A rule's readers, its key layout and its window evaluation.

    `tick`: percentiles over long windows come from log histograms fed at ingest
    (sketch.py), within 1%: per-tick histograms for a sliding rule's window (a
    multiple of the tick), per-tick compact rows for a correlation rule's `over`
    (its windows end anywhere). The stream's rows need not be retained for those
    windows (`row_reach`).
    """

    def __init__(
        self,
        rule: CompiledRule,
        stores: Mapping[str, StreamStore],
        keys: KeyRegistry,
        *,
        tick: int | None = None,
    ) -> None:
        self.rule = rule
        trig = rule.correlation.trigger.stream if rule.correlation is not None else None
        tfields_all = CATALOG[trig].fields if trig is not None else {}
        self.tfields = tuple(f for f in rule.by if f in tfields_all)
        self.free = tuple(f for f in rule.by if f not in self.tfields)
        self.free_index = keys.index(self.free) if self.free else None
        self.aggs = [
            self._reader(stores[a.stream], a.stream, a.field, a.where, keys)
            for a in rule.aggregates
        ]
        self.key_readers = [
            self._reader(stores[s], s, None, None, keys)
            for s in sorted({a.stream for a in rule.aggregates})
            if self.free and all(f in CATALOG[s].fields for f in self.free)
        ]
        self.part_readers = [
            self._reader(stores[s], s, None, None, keys)
            for s in sorted({a.stream for a in rule.aggregates})
            if any(f in CATALOG[s].fields for f in self.free)
        ]
        self.evidence: list[tuple[str, str, Reader]] = []
        for stream, field in self.evidence_fields():
            where = next(
                (
                    a.where
                    for a in rule.aggregates
                    if a.in_cond and a.stream == stream and a.field == field
                ),
                None,
            )
            self.evidence.append(
                (stream, field, self._reader(stores[stream], stream, field, where, keys))
            )
        self._sorted: dict[int, SortedWindow] = {}
        self._sums: dict[int, RunningSums] = {}
        self._sketch: dict[int, tuple[SlicedPercentile, int]] = {}  # k -> (sketch, span)
        self._rowsk: dict[int, SlicedRows] = {}  # correlation rules
        if tick:
            for k in range(len(rule.aggregates)):
                self._sketch_if_long(k, tick)
        # Reach of the condition's windows before the rule's window start, and of
        # those still read from rows (not from a sketch).
        self.reach = max((a.over or 0 for a in rule.aggregates), default=0)
        self.row_reach = max(
            (
                a.over or 0
                for k, a in enumerate(rule.aggregates)
                if k not in self._sketch and k not in self._rowsk
            ),
            default=0,
        )
        self.tests = _percentile_tests(rule)

    def _sketch_if_long(self, k: int, tick: int) -> None:
        """Keep aggregate k in a sketch: a percentile over a long window that is a
        multiple of the tick, whose groups are tracked (not read from the rows)."""
        spec, r = self.rule.aggregates[k], self.aggs[k]
        corr = self.rule.correlation
        span = spec.over if spec.over is not None else (self.rule.over or 0)
        # Only where it lets rows go: longer than the rows the rule reads anyway
        # (its window, `for` and evidence baseline), and long in ticks.
        if corr is None:
            rows = (self.rule.over or 0) + (self.rule.for_ or 0) + tick + self.rule.baseline
        else:
            rows = 2 * corr.d + self.rule.baseline if spec.over is not None else span
        if (
            span <= rows
            or spec.func != "percentile"
            or spec.q is None
            or r.value is None
            or r.tcol is not None
            or (r.gcol is not None and not r.full)
            or (bool(self.free) and not self.tracks_groups)
            or span < _LONG_WINDOW_STEPS * tick
        ):
            return
        sk: SlicedPercentile | SlicedRows
        if corr is not None:
            sk = self._rowsk[k] = SlicedRows(spec.q, tick)
        elif span % tick:
            return
        else:
            sk = SlicedPercentile(spec.q, span, tick)
            self._sketch[k] = (sk, span)
        value, valid, gcol = r.value, r.valid, r.gcol

        def feed(cols: Mapping[str, np.ndarray]) -> None:
            v = cols[value]
            keep = cols[valid] if valid is not None else ~np.isnan(v)
            codes = cols[gcol] if gcol is not None else None
            if keep.all():
                sk.ingest(cols["ts"], v, codes)
            else:
                sk.ingest(cols["ts"][keep], v[keep], None if codes is None else codes[keep])

        r.store.listeners.append(feed)

    def sketched(self, k: int) -> bool:
        """Is aggregate k read from a sketch (its rows may be gone)?"""
        return k in self._sketch or k in self._rowsk

    def expire_sketches(self, cutoff: int) -> None:
        """Correlation windows will not reach before cutoff."""
        for sk in self._rowsk.values():
            sk.expire(cutoff)

    def sketch_step(self, t: int) -> None:
        """Move the sketched windows to the step at t (every step: the slices that
        left go, whether or not the condition reads the value)."""
        for sk, _ in self._sketch.values():
            sk.update(t)

    def sketch_holds(self, t: int) -> bool:
        """Does any sketched window of the step at t hold a row?"""
        self.sketch_step(t)
        return any(sk.rows for sk, _ in self._sketch.values())

    def sketch_left(self, prev: int, t: int) -> bool:
        """Did a row leave a sketched window between the steps at prev and t?"""
        return any(sk.left_between(prev - span, t - span) for sk, span in self._sketch.values())

    @property
    def sketch_bytes(self) -> int:
        b = sum(sk.nbytes for sk, _ in self._sketch.values())
        return b + sum(sk.nbytes for sk in self._rowsk.values())

    @property
    def tracks_groups(self) -> bool:
        """Groups can outlive their rows: free fields carried whole by some stream, and
        no trigger field narrowing which of them a window sees."""
        return (
            self.free_index is not None
            and bool(self.key_readers)
            and all(r.tcol is None for r in self.key_readers)
        )

    def seen_times(self) -> list[SeenTimes]:
        """Per key stream: when each free-key code was first and last seen."""
        out = []
        for r in self.key_readers:
            assert r.gcol is not None
            out.append(r.store.seen[r.gcol])
        return out

    def free_code(self, kt: tuple[Any, ...]) -> int:
        """The free-key code of a finding's key tuple (`by` order), -1 when unknown."""
        if self.free_index is None:
            return 0
        by = self.rule.by
        return self.free_index.lookup(tuple(kt[by.index(f)] for f in self.free))

    def evidence_fields(self) -> list[tuple[str, str]]:
        """The rule's evidence (default: each field its condition aggregates); numbers only."""
        if self.rule.evidence:
            wanted = list(self.rule.evidence)
        else:
            wanted = [(a.stream, a.field) for a in self.rule.aggregates if a.in_cond and a.field]
        out: list[tuple[str, str]] = []
        for stream, field in wanted:
            spec = CATALOG[stream].fields.get(field)
            if spec is not None and spec.kind is not Kind.STRING and (stream, field) not in out:
                out.append((stream, field))
        return out

    def _reader(
        self,
        store: StreamStore,
        stream: str,
        field: str | None,
        where: Pred | None,
        keys: KeyRegistry,
    ) -> Reader:
        fields = CATALOG[stream].fields
        tf = tuple(f for f in self.tfields if f in fields)
        pf = tuple(f for f in self.free if f in fields)
        value = store.need_value(field) if field is not None else None
        mask = store.need_pred(where) if where is not None else None
        gcol = store.need_key(pf) if pf else None
        return Reader(
            store=store,
            value=value,
            mask=mask,
            tfields=tf,
            tcol=store.need_key(tf) if tf else None,
            tindex=keys.index(tf) if tf else None,
            pfields=pf,
            gcol=gcol,
            pindex=keys.index(pf) if pf else None,
            full=bool(self.free) and pf == self.free,
            valid=store.need_valid(value, mask, gcol),
        )

    # -- groups --
    def groups(self, lo: int, hi: int, tvals: Mapping[str, Any] | None) -> np.ndarray:
        """Codes of the free-key groups seen in [lo, hi]; [0] for a rule without them."""
        if self.free_index is None:
            return np.zeros(1, dtype=np.int64)
        if not self.key_readers:
            return self._product_groups(lo, hi, tvals)
        found = [c for r in self.key_readers if (c := r.rows(lo, hi, tvals)[2]) is not None]
        codes = np.concatenate(found) if len(found) > 1 else found[0]
        size = self.free_index.size
        if size <= 8 * codes.shape[0] + 1024:
            present = np.zeros(size, dtype=bool)
            present[codes] = True
            return np.flatnonzero(present)
        return np.unique(codes)  # many keys alive, few rows here: don't touch every key

    def _product_groups(self, lo: int, hi: int, tvals: Mapping[str, Any] | None) -> np.ndarray:
        """No stream carries every free field: one group per combination of seen values."""
        assert self.free_index is not None
        seen: dict[str, set[Any]] = {f: set() for f in self.free}
        for r in self.part_readers:
            _, _, codes = r.rows(lo, hi, tvals)
            if codes is None or r.pindex is None or not codes.shape[0]:
                continue
            for c in np.unique(codes).tolist():
                for f, v in zip(r.pfields, r.pindex.values(c), strict=True):
                    seen[f].add(v)
        if any(not v for v in seen.values()):
            return np.empty(0, dtype=np.int64)
        combos = itertools.islice(
            itertools.product(*(sorted(seen[f], key=repr) for f in self.free)), _MAX_PRODUCT
        )
        out = [self.free_index.intern(tuple(c), hi) for c in combos]
        return np.unique(np.asarray(out, dtype=np.int64))

    def key_of(self, code: int, tvals: Mapping[str, Any] | None) -> dict[str, Any]:
        """The finding's key: by field -> value, in `by` order."""
        free_vals: dict[str, Any] = {}
        if self.free_index is not None:
            free_vals = dict(zip(self.free, self.free_index.values(code), strict=True))
        out: dict[str, Any] = {}
        for f in self.rule.by:
            v = free_vals[f] if f in free_vals else (tvals or {}).get(f)
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            out[f] = v
        return out

    def partial_codes(self, r: Reader, groups: np.ndarray) -> np.ndarray:
        """Codes in r's key index of each group's projection on the fields r carries."""
        assert self.free_index is not None and r.pindex is not None
        pos = [self.free.index(f) for f in r.pfields]
        out = np.empty(groups.shape[0], dtype=np.int64)
        for i, c in enumerate(groups.tolist()):
            vals = self.free_index.values(c)
            out[i] = r.pindex.lookup(tuple(vals[p] for p in pos))
        return out

    def _sorted_percentile(
        self, k: int, r: Reader, q: float, lo: int, hi: int, groups: np.ndarray
    ) -> np.ndarray:
        sw = self._sorted.get(k)
        if sw is None:
            sw = self._sorted[k] = SortedWindow(q)

        def rows(a: int, b: int, open_hi: bool) -> tuple[np.ndarray, np.ndarray | None]:
            _, v, codes = r.rows(a, b, None, open_hi=open_hi)
            assert v is not None
            return v, codes

        sw.update(rows, lo, hi, r.history)
        if r.gcol is None:
            return np.full(groups.shape[0], sw.percentile(np.zeros(1, dtype=np.int64))[0])
        return sw.percentile(groups)

    def _running(
        self, k: int, r: Reader, func: str, lo: int, hi: int, groups: np.ndarray
    ) -> np.ndarray:
        rs = self._sums.get(k)
        if rs is None:
            rs = self._sums[k] = RunningSums()

        def rows(a: int, b: int, open_hi: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
            ts, v, codes = r.rows(a, b, None, open_hi=open_hi)
            if v is None and codes is None:
                codes = np.zeros(ts.shape[0], dtype=np.int64)
            return v, codes

        rs.update(rows, lo, hi, r.history)
        n, s = rs.at(groups if r.gcol is not None else np.zeros(groups.shape[0], dtype=np.int64))
        with np.errstate(invalid="ignore", divide="ignore"):
            if func == "count":
                return n
            if func == "rate":
                return n / ((hi - lo) / 1e9)
            out = s / n if func == "avg" else s
        out[n == 0] = np.nan
        return out

    def _lut(self, groups: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Key code -> position among groups (-1 for codes not asked for)."""
        size = max(
            self.free_index.size if self.free_index is not None else 0,
            int(groups.max(initial=-1)) + 1,
            int(codes.max(initial=-1)) + 1,
        )
        lut = np.full(size, -1, dtype=np.int64)
        lut[groups] = np.arange(groups.shape[0], dtype=np.int64)
        return lut

    # -- values --
    def values(
        self,
        start: int,
        end: int,
        tvals: Mapping[str, Any] | None,
        groups: np.ndarray,
        *,
        tick: int | None = None,
    ) -> AggValues:
        """The aggregates of the rule window [start, end] per group, computed on demand.

        `tick` (sliding rules): windows only move forward from call to call, by about
        a tick, so percentiles and sums over long windows are kept incrementally.
        """
        return AggValues(self, start, end, tvals, groups, tick)

    def agg_values(
        self,
        start: int,
        end: int,
        tvals: Mapping[str, Any] | None,
        groups: np.ndarray,
        *,
        tick: int | None = None,
    ) -> list[np.ndarray]:
        """Each aggregate's value per group (NaN: no value) for the rule window [start, end]."""
        return self.values(start, end, tvals, groups, tick=tick).all()

    def _incremental(self, k: int, lo: int, end: int, tick: int | None) -> bool:
        """Is aggregate k kept incrementally over this window (a long sliding one)?"""
        if not tick or (end - lo) < _LONG_WINDOW_STEPS * tick:
            return False
        # Keyed windows pay a Python step per key: worth it only when long.
        spec, r = self.rule.aggregates[k], self.aggs[k]
        return (spec.func == "percentile" or spec.func in _SUMMED) and (r.gcol is None or r.full)

    def _fetch(
        self, k: int, lo: int, end: int, tvals: Mapping[str, Any] | None
    ) -> tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(rows, ts or _NO_TS, values, key codes) of aggregate k's rows in [lo, end]."""
        spec, r = self.rule.aggregates[k], self.aggs[k]
        if r.tcol is None and spec.func not in _NEEDS_TS:
            n, vals, codes = r.window(lo, end)
            return n, _NO_TS, vals, codes
        ts, vals, codes = r.rows(lo, end, tvals)
        return int(ts.shape[0]), ts, vals, codes

    def _value(self, k: int, av: AggValues) -> np.ndarray:
        spec, r = self.rule.aggregates[k], self.aggs[k]
        groups, end = av.groups, av.end
        lo = av.start if spec.over is None else end - spec.over
        rowsk = self._rowsk.get(k)
        if rowsk is not None:
            return rowsk.percentile(lo, end, groups if r.gcol is not None else groups * 0)
        sketch = self._sketch.get(k)
        if sketch is not None and av.tick and end % av.tick == 0 and end - lo == sketch[1]:
            sk = sketch[0]
            sk.update(end)
            return sk.percentile(groups if r.gcol is not None else np.zeros_like(groups))
        if self._incremental(k, lo, end, av.tick):
            if spec.func == "percentile":
                assert spec.q is not None
                return self._sorted_percentile(k, r, spec.q, lo, end, groups)
            return self._running(k, r, spec.func, lo, end, groups)
        g = groups.shape[0]
        n, ts, vals, codes = self._fetch(k, lo, end, av.tvals)
        if r.gcol is None or codes is None:
            gid = np.zeros(n, dtype=np.int64)
            v = aggregate(spec.func, ts, vals, gid, 1, lo, end, q=spec.q, horizon=spec.horizon)
            return np.full(g, v[0])
        whole = r.value is not None and r.store.whole.get(r.value, False)
        if r.full:
            # Position of each row's key among the groups asked for (-1: not asked).
            pos = av.lut(codes)[codes]
            ok = pos >= 0
            if not ok.all():
                ts, pos = (ts if ts is _NO_TS else ts[ok]), pos[ok]
                vals = None if vals is None else vals[ok]
            return aggregate(
                spec.func, ts, vals, pos, g, lo, end, q=spec.q, horizon=spec.horizon, whole=whole
            )
        assert r.pindex is not None
        res = aggregate(
            spec.func,
            ts,
            vals,
            codes,
            r.pindex.size,
            lo,
            end,
            q=spec.q,
            horizon=spec.horizon,
            whole=whole,
        )
        pc = self.partial_codes(r, groups)
        col = np.full(g, _empty_value(spec, lo, end))
        col[pc >= 0] = res[pc[pc >= 0]]
        return col

    def _percentile_test(
        self, k: int, op: str, thr: np.ndarray | float, av: AggValues
    ) -> np.ndarray | None:
        """`percentile(k) op thr` per group by counting, without selecting the percentile
        (min and max: ranks 1 and n).

        The nearest-rank value x_r of n values is > c exactly when fewer than r values
        are <= c (and so on for the other orders): a masked count instead of a
        partition. None: not worth it here (the value is computed instead).
        """
        spec, r = self.rule.aggregates[k], self.aggs[k]
        end = av.end
        lo = av.start if spec.over is None else end - spec.over
        if self._incremental(k, lo, end, av.tick) or self.sketched(k):
            return None
        q = 100.0 if spec.func == "max" else (spec.q or 0.0)  # min: rank 1 (q -> 0)
        g = av.groups.shape[0]
        strict = op in (">=", "<")  # count values < c, else <= c
        above = op in (">", ">=")  # held when the count is below the rank
        _, _, vals, codes = self._fetch(k, lo, end, av.tvals)
        assert vals is not None
        if r.gcol is None or codes is None:
            if isinstance(thr, float):
                c = thr
            else:
                c = float(thr[0])
                if not bool(np.all(thr == c)):
                    return None
            m = int(vals.shape[0])
            if m == 0 or math.isnan(c):
                return np.zeros(g, dtype=bool)
            under = int(np.count_nonzero(vals < c if strict else vals <= c))
            at = rank_of(q, m)
            return np.full(g, under < at if above else under >= at)
        if not r.full:
            return None
        pos = av.lut(codes)[codes]
        ok = pos >= 0
        if not ok.all():
            pos, vals = pos[ok], vals[ok]
        n = np.bincount(pos, minlength=g)
        if isinstance(thr, float) and math.isnan(thr):
            return np.zeros(g, dtype=bool)
        t = thr if isinstance(thr, float) else thr[pos]
        hit = pos[vals < t] if strict else pos[vals <= t]
        cnt = np.bincount(hit, minlength=g)
        rank = percentile_rank(q, n)
        held = (cnt < rank if above else cnt >= rank) & (n > 0)
        return held if isinstance(thr, float) else held & ~np.isnan(thr)


class AggValues(Sequence[np.ndarray]):
    """One window's aggregates per group, each computed when first read.

    A condition reads only what decides it (an `and` whose first term is false for
    every key skips the rest; `percentile > c` is decided by counting); a finding
    reads them all (`all()`).
    """

    def __init__(
        self,
        scope: RuleScope,
        start: int,
        end: int,
        tvals: Mapping[str, Any] | None,
        groups: np.ndarray,
        tick: int | None,
    ) -> None:
        self.scope = scope
        self.start = start
        self.end = end
        self.tvals = tvals
        self.groups = groups
        self.tick = tick
        self._vals: list[np.ndarray | None] = [None] * len(scope.aggs)
        self._lut: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._vals)

    @overload
    def __getitem__(self, k: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[np.ndarray]: ...

    def __getitem__(self, k: int | slice) -> np.ndarray | Sequence[np.ndarray]:
        if isinstance(k, slice):
            return [self[i] for i in range(len(self._vals))[k]]
        v = self._vals[k]
        if v is None:
            v = self._vals[k] = self.scope._value(k, self)
        return v

    def all(self) -> list[np.ndarray]:
        return [self[k] for k in range(len(self._vals))]

    def lut(self, codes: np.ndarray) -> np.ndarray:
        """Key code -> position among the groups (-1: not asked), covering codes."""
        lut = self._lut
        if lut is None or lut.shape[0] <= int(codes.max(initial=-1)):
            lut = self._lut = self.scope._lut(self.groups, codes)
        return lut

    def test(self, cond: Compare) -> np.ndarray | None:
        """The comparison per group decided without its percentile's value, if it can be."""
        t = self.scope.tests.get(cond)
        if t is None or self._vals[t[0]] is not None:
            return None
        k, op, other = t
        thr: np.ndarray | float
        if isinstance(other, Num):
            thr = float(other.value)
        else:
            thr = eval_value(other, self, self.groups.shape[0])
        return self.scope._percentile_test(k, op, thr, self)


# ---- condition evaluation over group arrays ----


def eval_value(expr: ValueExprT, aggs: Sequence[np.ndarray], n: int) -> np.ndarray:
    """A value expression per group; NaN (no value) propagates, x/0 has no value."""
    if isinstance(expr, Num):
        return np.full(n, float(expr.value))
    if isinstance(expr, AggRef):
        return aggs[expr.index]
    assert isinstance(expr, Arith)
    a = eval_value(expr.left, aggs, n)
    b = eval_value(expr.right, aggs, n)
    with np.errstate(all="ignore"):
        if expr.op == "+":
            return a + b
        if expr.op == "-":
            return a - b
        if expr.op == "*":
            return a * b
        r = a / b
    r[b == 0] = np.nan
    return r


_CMP = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def eval_cond(cond: Cond, aggs: Sequence[np.ndarray], n: int) -> np.ndarray:
    """The condition per group; a comparison with no value is false.

    `and`/`or` stop once every group is decided, so with lazy values (AggValues)
    the aggregates of the terms left are never computed.
    """
    if isinstance(cond, Compare):
        if isinstance(aggs, AggValues):
            held = aggs.test(cond)
            if held is not None:
                return held
        a = eval_value(cond.left, aggs, n)
        b = eval_value(cond.right, aggs, n)
        with np.errstate(invalid="ignore"):
            res = _CMP[cond.op](a, b)
        return np.asarray(res & ~np.isnan(a) & ~np.isnan(b), dtype=bool)
    if isinstance(cond, Not):
        return ~eval_cond(cond.item, aggs, n)
    assert isinstance(cond, BoolOp)
    out = eval_cond(cond.items[0], aggs, n)
    for c in cond.items[1:]:
        if cond.op == "and":
            if not out.any():
                break
            out = out & eval_cond(c, aggs, n)
        else:
            if out.all():
                break
            out = out | eval_cond(c, aggs, n)
    return out


_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


def _refs(node: Cond | ValueExprT, out: dict[int, int]) -> None:
    """How many times the condition reads each aggregate."""
    if isinstance(node, AggRef):
        out[node.index] = out.get(node.index, 0) + 1
    elif isinstance(node, Arith | Compare):
        _refs(node.left, out)
        _refs(node.right, out)
    elif isinstance(node, Not):
        _refs(node.item, out)
    elif isinstance(node, BoolOp):
        for c in node.items:
            _refs(c, out)


def _percentile_tests(rule: CompiledRule) -> dict[Compare, tuple[int, str, ValueExprT]]:
    """Comparisons `percentile op expr` (or min, max; either side) whose aggregate the
    condition reads nowhere else: (aggregate, op with it on the left, other side)."""
    refs: dict[int, int] = {}
    _refs(rule.cond, refs)
    out: dict[Compare, tuple[int, str, ValueExprT]] = {}

    def walk(c: Cond) -> None:
        if isinstance(c, Not):
            walk(c.item)
        elif isinstance(c, BoolOp):
            for x in c.items:
                walk(x)
        elif c.op in _FLIP:
            for side, other, op in ((c.left, c.right, c.op), (c.right, c.left, _FLIP[c.op])):
                if (
                    isinstance(side, AggRef)
                    and refs.get(side.index) == 1
                    and rule.aggregates[side.index].func in ("percentile", "min", "max")
                ):
                    out[c] = (side.index, op, other)
                    break

    walk(rule.cond)
    return out
