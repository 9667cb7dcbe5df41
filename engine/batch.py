"""Columnar batches: how events move from sources through the bus to the runtime.

A batch holds events of one stream in emission order (`end` for interval streams,
`ts` for point streams). Numeric fields are float64 columns with NaN where an
optional field is absent (ns and bytes stay exact below 2**53); string fields are
object columns with None where absent. `ts` and `end` are int64.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model import CATALOG
from .units import Kind

__all__ = ["Batch", "concat"]


@dataclass(slots=True)
class Batch:
    stream: str
    ts: np.ndarray  # int64
    end: np.ndarray | None = None  # int64, interval streams only
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def emit(self) -> np.ndarray:
        """Emission times: `end` for interval events, `ts` for point events."""
        return self.end if self.end is not None else self.ts

    def take(self, index: np.ndarray | slice) -> Batch:
        """A batch of the selected rows (a mask, an index array or a slice)."""
        return Batch(
            self.stream,
            self.ts[index],
            None if self.end is None else self.end[index],
            {k: v[index] for k, v in self.columns.items()},
        )

    def row(self, i: int) -> dict[str, Any]:
        """One event as a plain dict (`stream`, `ts`, [`end`], fields), ints as ints.

        For findings (the trigger event) and recording; never on a hot path.
        """
        spec = CATALOG[self.stream]
        out: dict[str, Any] = {"stream": self.stream, "ts": int(self.ts[i])}
        if self.end is not None:
            out["end"] = int(self.end[i])
        for name, col in self.columns.items():
            v = col[i]
            f = spec.fields.get(name)
            if v is None or (isinstance(v, float) and v != v):
                continue
            if f is not None and f.kind is not Kind.STRING:
                v = int(v)
            out[name] = v
        return out

    @classmethod
    def from_rows(cls, stream: str, rows: Sequence[Mapping[str, Any]]) -> Batch:
        """Build a batch from dicts with the catalog's field names (tests, pollers)."""
        spec = CATALOG[stream]
        ts = np.fromiter((r["ts"] for r in rows), dtype=np.int64, count=len(rows))
        end = (
            np.fromiter((r["end"] for r in rows), dtype=np.int64, count=len(rows))
            if spec.interval
            else None
        )
        cols: dict[str, np.ndarray] = {}
        for name, f in spec.fields.items():
            if f.kind is Kind.STRING:
                cols[name] = np.array([r.get(name) for r in rows], dtype=object)
            else:
                cols[name] = np.array(
                    [np.nan if r.get(name) is None else r[name] for r in rows], dtype=np.float64
                )
        return cls(stream, ts, end, cols)

    @classmethod
    def empty(cls, stream: str) -> Batch:
        return cls.from_rows(stream, [])


def concat(batches: Iterable[Batch]) -> Batch:
    """Join batches of one stream, in the order given."""
    bs = list(batches)
    if not bs:
        raise ValueError("concat of no batches")
    if len(bs) == 1:
        return bs[0]
    first = bs[0]
    return Batch(
        first.stream,
        np.concatenate([b.ts for b in bs]),
        None if first.end is None else np.concatenate([b.end for b in bs]),
        {k: np.concatenate([b.columns[k] for b in bs]) for k in first.columns},
    )
