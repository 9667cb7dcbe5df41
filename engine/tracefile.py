"""Writing traces: batches -> JSON Lines (gzip when the name ends in .gz).

The inverse of sources.TraceSource: ints stay ints, absent optional fields are left
out, one event per line in the order the batches come (record feeds them in
emission order; replay sorts anyway).
"""

from __future__ import annotations

import gzip
import typing
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import msgspec
import numpy as np

from .batch import Batch
from .errors import TraceError
from .model import CATALOG
from .units import Kind

__all__ = ["TraceWriter"]


class TraceWriter:
    def __init__(self, path: str | Path, *, compresslevel: int = 6) -> None:
        self.path = Path(path)
        self.events = 0
        self._enc = msgspec.json.Encoder()
        try:
            raw = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise self._error(e) from None
        self._f: IO[bytes] = raw
        if self.path.name.endswith(".gz"):
            gz = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=compresslevel, mtime=0)
            self._f = typing.cast(IO[bytes], gz)
        self._raw = raw

    def write(self, batch: Batch) -> None:
        """Append the batch's events, one JSON object per line."""
        n = len(batch)
        if n == 0:
            return
        spec = CATALOG[batch.stream]
        names: list[str] = []
        cols: list[list[Any]] = []
        if batch.end is not None:
            names.append("end")
            cols.append(batch.end.tolist())
        for name, col in batch.columns.items():
            f = spec.fields.get(name)
            if f is None:
                continue
            names.append(name)
            if f.kind is Kind.STRING:
                cols.append(col.tolist())
            else:
                cols.append(_ints(col))
        stream = batch.stream
        enc = self._enc.encode
        out = []
        for t, *values in zip(batch.ts.tolist(), *cols, strict=True):
            d: dict[str, Any] = {"ts": t, "stream": stream}
            for k, v in zip(names, values, strict=True):
                if v is not None:
                    d[k] = v
            out.append(enc(d))
        out.append(b"")
        try:
            self._f.write(b"\n".join(out))
        except OSError as e:
            raise self._error(e) from None
        self.events += n

    def close(self) -> None:
        """Flush and close; a full disk often shows only here, as a TraceError too."""
        try:
            try:
                self._f.close()
            finally:
                self._raw.close()  # a no-op when it is self._f
        except OSError as e:
            raise self._error(e) from None

    def _error(self, e: OSError) -> TraceError:
        return TraceError(f"cannot write trace: {e.strerror or e}", str(self.path), 0)

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _ints(col: np.ndarray) -> list[int | None]:
    """A float64 column as ints, NaN (absent) as None."""
    missing = np.isnan(col)
    if not missing.any():
        out: list[int | None] = col.astype(np.int64).tolist()
        return out
    vals: list[int | None] = np.where(missing, 0, col).astype(np.int64).tolist()
    for i in np.flatnonzero(missing).tolist():
        vals[i] = None
    return vals
