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
    def __init__(self, path: str | Path, *, compresslevel: int = 1) -> None:
        # gzip level 1: a live recorder must keep up; 6 costs 2.3x the CPU for 20% less size
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
        """Append the batch's events, one JSON object per line.

        Each line is one `bytes % tuple` of a per-batch template: keys and the stream
        name are encoded once per batch, each distinct string once, and rows lacking
        some optional field get a template without it. No dict per event.
        """
        n = len(batch)
        if n == 0:
            return
        spec = CATALOG[batch.stream]
        enc = self._enc.encode
        head = b'{"ts":%d,"stream":' + _escape(enc(batch.stream))
        keys: list[bytes] = []
        cols: list[np.ndarray] = [batch.ts]
        absent: list[np.ndarray | None] = []
        if batch.end is not None:
            keys.append(b',"end":%d')
            cols.append(batch.end)
            absent.append(None)
        for name, col in batch.columns.items():
            f = spec.fields.get(name)
            if f is None:
                continue
            key = b"," + _escape(enc(name)) + b":"
            if f.kind is Kind.STRING:
                values, missing = self._strings(col)
                keys.append(key + b"%b")
            else:
                missing = np.isnan(col)
                values = np.where(missing, 0, col).astype(np.int64)
                keys.append(key + b"%d")
            cols.append(values)
            absent.append(missing if missing is not None and missing.any() else None)
        if all(a is None for a in absent):
            out = _lines(head + b"".join(keys) + b"}", [c.tolist() for c in cols])
        else:
            out = _patterned(head, keys, cols, absent, n)
        out.append(b"")
        try:
            self._f.write(b"\n".join(out))
        except OSError as e:
            raise self._error(e) from None
        self.events += n

    def _strings(self, col: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """A string column as JSON-encoded bytes, each distinct value encoded once."""
        values = col.tolist()
        enc = self._enc.encode
        cache = {v: enc(v) for v in set(values)}
        missing = None
        if None in cache:
            missing = np.fromiter((v is None for v in values), bool, len(values))
        out = np.empty(len(values), dtype=object)
        out[:] = list(map(cache.__getitem__, values))
        return out, missing

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


def _escape(b: bytes) -> bytes:
    return b.replace(b"%", b"%%")


def _lines(template: bytes, cols: list[list[Any]]) -> list[bytes]:
    """One line per row: `template % (ts, value, ...)` over the columns, in C."""
    return list(map(template.__mod__, zip(*cols, strict=True)))


def _patterned(
    head: bytes,
    keys: list[bytes],
    cols: list[np.ndarray],
    absent: list[np.ndarray | None],
    n: int,
) -> list[bytes]:
    """Lines when some rows lack optional fields: one template per pattern of absent
    fields (few per batch), the lines put back in row order."""
    bits = np.zeros(n, dtype=np.int64)
    for i, a in enumerate(absent):
        if a is not None:
            bits |= a.astype(np.int64) << i
    out = np.empty(n, dtype=object)
    for pattern in np.unique(bits).tolist():
        idx = np.flatnonzero(bits == pattern)
        present = [i for i in range(len(keys)) if not pattern >> i & 1]
        template = head + b"".join(keys[i] for i in present) + b"}"
        sub = [cols[0][idx].tolist(), *(cols[i + 1][idx].tolist() for i in present)]
        out[idx] = _lines(template, sub)
    lines: list[bytes] = out.tolist()
    return lines
