"""External sort of decoded trace parts: sorted runs, spill files, k-way merge, cutting.

A chunk maps a stream to a `Part` sorted by the key (emission time, seq). A run is an
iterator of chunks whose keys only grow from one chunk to the next, so merging runs
needs one chunk of each in memory: everything at or below the smallest of the runs'
current last keys can go out. All of it works on numpy columns, never per event.
"""

from __future__ import annotations

import itertools
import struct
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

import msgspec
import numpy as np

from .batch import Batch, concat
from .model import CATALOG
from .tracedecode import Part
from .units import Kind

__all__ = [
    "Chunk",
    "cut_ordered",
    "cut_slices",
    "merge_runs",
    "sort_chunk",
    "spill_run",
]

Chunk = dict[str, Part]
Key = tuple[int, int]


def _concat_parts(parts: list[Part]) -> Part:
    if len(parts) == 1:
        return parts[0]
    return Part(concat(p.batch for p in parts), np.concatenate([p.seq for p in parts]))


def _take(part: Part, index: np.ndarray | slice) -> Part:
    return Part(part.batch.take(index), part.seq[index])


def _sorted(part: Part) -> Part:
    emit = part.batch.emit
    if emit.shape[0] < 2 or (bool(np.all(emit[1:] >= emit[:-1])) and _seq_ok(emit, part.seq)):
        return part
    return _take(part, np.lexsort((part.seq, emit)))


def _seq_ok(emit: np.ndarray, seq: np.ndarray) -> bool:
    """With emission non-decreasing: are ties in seq order too?"""
    ties = emit[1:] == emit[:-1]
    return not bool(np.any(ties & (seq[1:] < seq[:-1])))


def sort_chunk(pieces: Iterable[Chunk]) -> Chunk:
    """Join chunks (any order) into one chunk sorted per stream."""
    by_stream: dict[str, list[Part]] = {}
    for ch in pieces:
        for s, p in ch.items():
            if len(p.seq):
                by_stream.setdefault(s, []).append(p)
    return {s: _sorted(_concat_parts(ps)) for s, ps in by_stream.items()}


def _count_le(part: Part, bound: Key) -> int:
    """How many leading rows of a sorted part have key <= bound."""
    emit = part.batch.emit
    lo = int(np.searchsorted(emit, bound[0], "left"))
    hi = int(np.searchsorted(emit, bound[0], "right"))
    if lo == hi:
        return lo
    return lo + int(np.searchsorted(part.seq[lo:hi], bound[1], "right"))


def _last_key(chunk: Chunk) -> Key:
    return max((int(p.batch.emit[-1]), int(p.seq[-1])) for p in chunk.values() if len(p.seq))


def _split(chunk: Chunk, bound: Key) -> tuple[Chunk, Chunk]:
    """(rows with key <= bound, the rest)."""
    head: Chunk = {}
    tail: Chunk = {}
    for s, p in chunk.items():
        k = _count_le(p, bound)
        if k:
            head[s] = p if k == len(p.seq) else _take(p, slice(0, k))
        if k < len(p.seq):
            tail[s] = _take(p, slice(k, None))
    return head, tail


def _order(chunk: Chunk) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The global order of a chunk: streams, and per row of the order its stream index,
    emission time and seq."""
    names = list(chunk)
    emit = np.concatenate([chunk[s].batch.emit for s in names])
    seq = np.concatenate([chunk[s].seq for s in names])
    sid = np.concatenate([np.full(len(chunk[s].seq), i, np.int32) for i, s in enumerate(names)])
    order = np.lexsort((seq, emit))
    return names, sid[order], emit[order], seq[order]


def cut_pieces(chunk: Chunk, size: int) -> Iterator[Chunk]:
    """A sorted chunk as pieces of at most `size` rows with growing keys."""
    total = sum(len(p.seq) for p in chunk.values())
    if total <= size:
        if total:
            yield chunk
        return
    _, _, emit, seq = _order(chunk)
    rest = chunk
    for i in range(size - 1, total, size):
        head, rest = _split(rest, (int(emit[i]), int(seq[i])))
        yield head
    if rest:
        yield rest


def merge_runs(runs: list[Iterator[Chunk]]) -> Iterator[Chunk]:
    """Merge runs into one sequence of chunks with growing keys."""
    buffers: list[Chunk] = [{} for _ in runs]
    active = list(range(len(runs)))
    while True:
        for r in list(active):
            while not buffers[r]:
                nxt = next(runs[r], None)
                if nxt is None:
                    active.remove(r)
                    break
                buffers[r] = {s: p for s, p in nxt.items() if len(p.seq)}
        if not active:
            return
        if len(active) == 1:
            r = active[0]
            yield buffers[r]
            buffers[r] = {}
            continue
        bound = min(_last_key(buffers[r]) for r in active)
        heads: list[Chunk] = []
        for r in active:
            head, buffers[r] = _split(buffers[r], bound)
            if head:
                heads.append(head)
        yield sort_chunk(heads)


def cut_ordered(chunk: Chunk, batch_size: int) -> Iterator[Batch]:
    """Batches in global emission order: a new batch wherever the stream changes."""
    if len(chunk) == 1:
        ((_, part),) = chunk.items()
        yield from _sized(part.batch, batch_size)
        return
    names, sid, _, _ = _order(chunk)
    starts = np.flatnonzero(np.diff(sid)) + 1
    bounds = [0, *starts.tolist(), len(sid)]
    pos = dict.fromkeys(names, 0)
    for a, b in itertools.pairwise(bounds):
        s = names[int(sid[a])]
        p = pos[s]
        pos[s] = p + (b - a)
        yield from _sized(chunk[s].batch.take(slice(p, p + b - a)), batch_size)


def cut_slices(chunk: Chunk, batch_size: int) -> Iterator[Batch]:
    """Per stream one batch (split by size), streams overlapping in time; batches in
    order of their first key, so nothing after a batch is earlier than its start."""
    subs: list[tuple[int, int, Batch]] = []
    for part in chunk.values():
        n = len(part.seq)
        for i in range(0, n, batch_size):
            b = part.batch if n <= batch_size else part.batch.take(slice(i, i + batch_size))
            subs.append((int(b.emit[0]), int(part.seq[i]), b))
    subs.sort(key=lambda x: (x[0], x[1]))
    for _, _, b in subs:
        yield b


def _sized(batch: Batch, size: int) -> Iterator[Batch]:
    n = len(batch)
    if n <= size:
        yield batch
        return
    for i in range(0, n, size):
        yield batch.take(slice(i, i + size))


# ---- spill files: length-prefixed msgpack frames, one per piece ----

_LEN = struct.Struct("<I")
_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder()


def _encode(chunk: Chunk) -> bytes:
    out = {}
    for s, p in chunk.items():
        b = p.batch
        cols = {}
        for name, col in b.columns.items():
            cols[name] = col.tolist() if col.dtype == object else col.tobytes()
        out[s] = {
            "ts": b.ts.tobytes(),
            "end": None if b.end is None else b.end.tobytes(),
            "seq": p.seq.tobytes(),
            "cols": cols,
        }
    return _ENC.encode(out)


def _decode(data: bytes) -> Chunk:
    out: Chunk = {}
    for s, d in _DEC.decode(data).items():
        spec = CATALOG[s]
        cols: dict[str, np.ndarray] = {}
        for name, v in d["cols"].items():
            if spec.fields[name].kind is Kind.STRING:
                col = np.empty(len(v), dtype=object)
                col[:] = v
                cols[name] = col
            else:
                cols[name] = np.frombuffer(v, dtype=np.float64).copy()
        end = None if d["end"] is None else np.frombuffer(d["end"], dtype=np.int64).copy()
        ts = np.frombuffer(d["ts"], dtype=np.int64).copy()
        out[s] = Part(Batch(s, ts, end, cols), np.frombuffer(d["seq"], dtype=np.int64).copy())
    return out


def spill_run(chunk: Chunk, piece: int, directory: str | None) -> Iterator[Chunk]:
    """Write a sorted chunk to a temporary file; return a run that reads it back."""
    f = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by the reader
    for p in cut_pieces(chunk, piece):
        data = _encode(p)
        f.write(_LEN.pack(len(data)))
        f.write(data)
    f.flush()
    return _read_spill(f)


def _read_spill(f: IO[bytes]) -> Iterator[Chunk]:
    with f:
        f.seek(0)
        while True:
            head = f.read(_LEN.size)
            if not head:
                return
            (n,) = _LEN.unpack(head)
            yield _decode(f.read(n))
