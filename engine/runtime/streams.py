"""What the runtime keeps of one stream: the columns rules read, plus derived ones.

Derived columns are computed once per event at ingest, vectorized per batch: one
boolean column per `where` predicate and one key-code column per tuple of `by`
fields. Windows then only slice, mask and group; nothing is recomputed per step.
Listeners (long-window sketches) see each ingested chunk once, as it is appended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..batch import Batch
from ..dsl.plan import Pred
from ..model import CATALOG
from ..units import Kind
from .history import History
from .keys import KeyIndex, SeenTimes
from .predicates import pred_fields, pred_mask

__all__ = ["KEY_DTYPE", "KeyRegistry", "StreamStore"]

KEY_DTYPE = np.dtype(np.int32)  # key code columns as stored in the history
_KEY_MAX = int(np.iinfo(KEY_DTYPE).max)


class KeyRegistry(dict[tuple[str, ...], KeyIndex]):
    """One KeyIndex per field tuple, shared by every stream carrying those fields.

    Shared so that a trigger's `dev` and a condition stream's `dev` get equal codes
    for equal values.
    """

    def index(self, fields: tuple[str, ...]) -> KeyIndex:
        ki = self.get(fields)
        if ki is None:
            ki = self[fields] = KeyIndex(fields)
        return ki


class StreamStore:
    """Registration of needed columns (before the first batch), then ingest."""

    def __init__(self, name: str, interval: bool, keys: KeyRegistry) -> None:
        self.name = name
        self.interval = interval
        self._keys = keys
        self._values: list[str] = []
        self._preds: dict[Pred, str] = {}
        self._key_cols: dict[tuple[str, ...], str] = {}
        # Per key column: when each code was first and last seen in this stream.
        self.seen: dict[str, SeenTimes] = {}
        self._valid: dict[tuple[str | None, str | None, str | None], str] = {}
        # Value columns whose every value so far is a whole number (or absent).
        self.whole: dict[str, bool] = {}
        self.history: History | None = None
        self.rows_in = 0
        self._pending: list[Batch] = []
        self._pending_rows = 0
        # Called with each ingested chunk's columns (sketches fed once per row).
        self.listeners: list[Callable[[Mapping[str, np.ndarray]], None]] = []

    # -- registration --
    def need_value(self, field: str) -> str:
        if field not in self._values:
            self._values.append(field)
        return "v:" + field

    def need_pred(self, pred: Pred) -> str:
        col = self._preds.get(pred)
        if col is None:
            col = self._preds[pred] = f"w:{len(self._preds)}"
        return col

    def need_valid(self, value: str | None, mask: str | None, key: str | None) -> str | None:
        """A bool column: the row has the value, passes the `where`, has the key.

        Computed once per row at ingest, so a window's rows are one mask away.
        """
        parts = (value, mask, key)
        if sum(p is not None for p in parts) < 2:
            return None
        col = self._valid.get(parts)
        if col is None:
            col = self._valid[parts] = f"ok:{len(self._valid)}"
        return col

    def need_key(self, fields: tuple[str, ...]) -> str:
        col = self._key_cols.get(fields)
        if col is None:
            self._keys.index(fields)
            col = self._key_cols[fields] = "k:" + ",".join(fields)
            self.seen[col] = SeenTimes()
        return col

    def forget_codes(self, fields: tuple[str, ...], codes: np.ndarray) -> None:
        """Codes the key index released (to be reused): forget when they were seen."""
        col = self._key_cols.get(fields)
        if col is not None:
            self.seen[col].reset(codes)

    def freeze(self) -> None:
        dtypes: dict[str, np.dtype | type] = {}
        if self.interval:
            dtypes["end"] = np.int64
        for f in self._values:
            dtypes["v:" + f] = np.float64
        for col in self._preds.values():
            dtypes[col] = np.bool_
        for col in self._key_cols.values():
            # Codes are dense (bounded by the live keys): 4 bytes instead of 8 per row
            # of a long window.
            dtypes[col] = KEY_DTYPE
        for col in self._valid.values():
            dtypes[col] = np.bool_
        self.history = History(dtypes)

    # -- ingest --
    def add(self, batch: Batch) -> None:
        """Buffer a batch; ingested (vectorized over many batches) by flush()."""
        self._pending.append(batch)
        self._pending_rows += len(batch)

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def flush(self) -> None:
        if not self._pending:
            return
        batches, self._pending, self._pending_rows = self._pending, [], 0
        self.ingest(batches[0] if len(batches) == 1 else self._merge(batches))

    def _merge(self, batches: list[Batch]) -> Batch:
        """One batch of the fields this store reads (absent where a batch lacks one)."""
        fields = set(self._values)
        for pred in self._preds:
            fields |= pred_fields(pred)
        for key in self._key_cols:
            fields |= set(key)
        cols: dict[str, np.ndarray] = {}
        for f in fields:
            parts = []
            for b in batches:
                c = b.columns.get(f)
                if c is None:
                    string = (spec := CATALOG[self.name].fields.get(f)) and spec.kind is Kind.STRING
                    c = np.full(len(b), None, dtype=object) if string else np.full(len(b), np.nan)
                parts.append(c)
            cols[f] = np.concatenate(parts)
        ends = [b.end if b.end is not None else b.ts for b in batches]
        return Batch(
            self.name,
            np.concatenate([b.ts for b in batches]),
            np.concatenate(ends) if self.interval else None,
            cols,
        )

    def ingest(self, batch: Batch) -> None:
        if self.history is None:
            self.freeze()
        assert self.history is not None
        n = len(batch)
        if n == 0:
            return
        self.rows_in += n
        cols: dict[str, np.ndarray] = {"ts": batch.ts}
        if self.interval:
            cols["end"] = batch.end if batch.end is not None else batch.ts
        nan = np.full(n, np.nan)
        for f in self._values:
            c = batch.columns.get(f)
            # Only numbers aggregate; a string column here would be a compiler slip.
            v = cols["v:" + f] = nan if c is None or c.dtype == object else c
            if self.whole.get("v:" + f, True):
                with np.errstate(invalid="ignore"):
                    self.whole["v:" + f] = bool(np.all((v == np.floor(v)) | np.isnan(v)))
        for pred, col in self._preds.items():
            cols[col] = pred_mask(pred, batch.columns, n)
        for fields, col in self._key_cols.items():
            parts = [batch.columns.get(f) for f in fields]
            if any(p is None for p in parts):
                cols[col] = np.full(n, -1, dtype=np.int64)
            else:
                ki = self._keys.index(fields)
                cols[col] = ki.encode([p for p in parts if p is not None], batch.ts)
                if ki.size > _KEY_MAX:  # never near: codes are reused once released
                    raise OverflowError(f"{ki.size} live keys of {fields} in one index")
                self.seen[col].touch(cols[col], batch.ts)
        for (value, mask, key), col in self._valid.items():
            ok = np.ones(n, dtype=bool)
            if value is not None:
                ok &= ~np.isnan(cols[value])
            if mask is not None:
                ok &= cols[mask]
            if key is not None:
                ok &= cols[key] >= 0
            cols[col] = ok
        for fn in self.listeners:
            fn(cols)
        self.history.append(cols)
