"""Trace files as a Source: JSON Lines (optionally gzip) -> batches in emission order.

Traces are decoded into memory and sorted there, up to `run_size` events (a
trace read in emission order, as recordings are, needs no sort: that is checked
per block with one numpy pass). Past that, what is decoded becomes the first run
and the rest is read in bounded memory, resuming at the byte where the first run
stopped: a cheap pass reads only the times of each remaining file to see whether
it is in emission order; such a file is decoded lazily while merging (no spill),
any other is cut into sorted runs spilled to temporary files; one k-way merge of
all runs feeds the batches, consecutive pieces of an ordered run joined up to
`batch_size` events. No line is fully decoded twice; bad lines are reported by
the full decode, in line order per file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

import numpy as np

from .batch import Batch
from .errors import TraceError
from .model import CATALOG
from .source import Emit
from .tracedecode import START, Decoded, OnBad, Pos, decode_block, read_blocks, scan_emit
from .tracesort import (
    Chunk,
    cut_ordered,
    cut_pieces,
    cut_slices,
    merge_runs,
    sort_chunk,
    spill_run,
)

__all__ = ["TraceSource"]

_INT64_MIN = -(2**63)


class TraceSource:
    """Replays trace files.

    skip_bad: report each bad line through `on_bad` and go on; otherwise the first
    bad line raises TraceError. streams: build columns and emit batches only for
    these (every line is still checked). interleave "ordered": a batch ends wherever
    the stream changes, so the batches follow global emission order; "slices": per
    merged piece (about `batch_size` events) one batch per stream, streams
    overlapping in time, batches in order of their first event (what ReplayClock
    relies on) — far fewer batches when streams interleave finely. Memory: about
    `run_size` events, plus a piece per file or spilled run while merging.
    block_bytes: text decoded at a time; small enough that a block and what it
    decodes to stay in the CPU's cache (4 MiB blocks decode about a quarter slower).
    """

    name = "trace"

    def __init__(
        self,
        paths: Sequence[str],
        *,
        skip_bad: bool = False,
        on_bad: Callable[[TraceError], None] | None = None,
        streams: Iterable[str] | None = None,
        batch_size: int = 65536,
        run_size: int = 1 << 20,
        block_bytes: int = 1 << 19,
        interleave: Literal["ordered", "slices"] = "ordered",
        spill_dir: str | None = None,
    ) -> None:
        self.paths = list(paths)
        self.skip_bad = skip_bad
        self._on_bad = on_bad
        self._want = None if streams is None else frozenset(streams)
        self.streams = frozenset(CATALOG) if self._want is None else self._want
        self.batch_size = batch_size
        self.run_size = run_size
        self.block_bytes = block_bytes
        self.interleave = interleave
        self.spill_dir = spill_dir
        self._progress: int | None = None
        self._stats = {"events": 0, "bad_lines": 0, "batches": 0, "spilled_runs": 0, "passes": 1}
        self._reported: dict[int, int] = {}  # file index -> last line reported

    # ---- Source protocol ----
    # progress(): one below the last emission time emitted, since another event at
    # that very time may follow; every event at or below it has been emitted.

    async def run(self, emit: Emit) -> None:
        for batch in self.batches():
            await emit(batch)

    def progress(self) -> int | None:
        return self._progress

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    # ---- reading ----

    def batches(self) -> Iterator[Batch]:
        """Every batch of the trace in emission order (the sync core of `run`)."""
        cut = cut_ordered if self.interleave == "ordered" else cut_slices
        for chunk in self._chunks():
            chunk = {s: p for s, p in chunk.items() if len(p.seq) and s in self.streams}
            if not chunk:
                continue
            last = max(int(p.batch.emit[-1]) for p in chunk.values())
            for batch in cut(chunk, self.batch_size):
                self._stats["batches"] += 1
                self._stats["events"] += len(batch)
                if self.interleave == "ordered":
                    self._progress = int(batch.emit[-1]) - 1
                yield batch
            self._progress = last - 1

    def _bad(self, file_index: int) -> OnBad:
        def report(err: TraceError) -> None:
            # Lines are reported in order per file; a second pass skips those done.
            if err.line <= self._reported.get(file_index, 0):
                return
            self._reported[file_index] = err.line
            self._stats["bad_lines"] += 1
            if not self.skip_bad:
                raise err
            if self._on_bad is not None:
                self._on_bad(err)

        return report

    def _blocks(
        self, i: int, start: Pos = START, *, report: bool = True
    ) -> Iterator[tuple[Decoded, Pos]]:
        """Decoded blocks of file i from `start`, each with where the next one starts."""
        path = self.paths[i]
        on_bad = self._bad(i) if report else None
        for first, text, nxt in read_blocks(path, self.block_bytes, start):
            d = decode_block(
                path, i, first, text, on_bad=on_bad, columns=self._want, lines=nxt.line - first
            )
            yield d, nxt

    def _chunks(self) -> Iterable[Chunk]:
        """Decode into memory; past `run_size` events, what is decoded becomes the
        first run and the rest is read in bounded memory (nothing decoded twice).
        While every event so far came in emission order (the usual recording), no
        sort is needed: the blocks as read are a run already."""
        held: list[Chunk] = []
        n = 0
        last = _INT64_MIN  # emission time of the last event read, while in order
        in_order = True
        for i in range(len(self.paths)):
            for d, nxt in self._blocks(i):
                held.append(d.parts)
                n += d.count
                e = d.line_emit
                if in_order and len(e):
                    in_order = bool(e[0] >= last) and bool(np.all(e[1:] >= e[:-1]))
                    last = int(e[-1])
                if n > self.run_size:
                    rest = [(i, nxt), *((j, START) for j in range(i + 1, len(self.paths)))]
                    return self._bounded(held, rest, in_order)
        return [sort_chunk(held)]

    def _bounded(
        self, held: list[Chunk], rest: list[tuple[int, Pos]], held_in_order: bool
    ) -> Iterator[Chunk]:
        self._stats["passes"] = 2
        ordered = [self._in_order(i, start) for i, start in rest]
        runs: list[Iterator[Chunk]] = []
        if held_in_order:
            runs.append(_coalesce(_drain(held), self.batch_size))
        else:
            head = sort_chunk(held)
            held.clear()
            if all(ordered):
                runs.append(cut_pieces(head, self.batch_size))
            else:  # spilled runs will be built: keep memory to one run
                runs.append(self._spill([head]))
            del head
        for (i, start), in_order in zip(rest, ordered, strict=True):
            if in_order:
                runs.append(_coalesce(self._file_run(i, start), self.batch_size))
            else:
                runs.extend(self._spilled_runs(i, start))
        return merge_runs(runs)

    def _in_order(self, i: int, start: Pos) -> bool:
        """The cheap first pass over (the rest of) one file: in emission order?"""
        last: int | None = None
        for first, text, nxt in read_blocks(self.paths[i], self.block_bytes, start):
            e = scan_emit(text, first, nxt.line - first)
            if not len(e):
                continue
            if (last is not None and e[0] < last) or bool((e[1:] < e[:-1]).any()):
                return False
            last = int(e[-1])
        return True

    def _file_run(self, i: int, start: Pos) -> Iterator[Chunk]:
        for d, _ in self._blocks(i, start):
            yield d.parts

    def _spilled_runs(self, i: int, start: Pos) -> list[Iterator[Chunk]]:
        runs: list[Iterator[Chunk]] = []
        pending: list[Chunk] = []
        n = 0
        for d, _ in self._blocks(i, start):
            pending.append(d.parts)
            n += d.count
            if n >= self.run_size:
                runs.append(self._spill(pending))
                pending, n = [], 0
        if pending:
            runs.append(self._spill(pending))
        return runs

    def _spill(self, pending: list[Chunk]) -> Iterator[Chunk]:
        self._stats["spilled_runs"] += 1
        piece = max(1, min(self.batch_size, self.run_size))
        return spill_run(sort_chunk(pending), piece, self.spill_dir)


def _drain(held: list[Chunk]) -> Iterator[Chunk]:
    """The chunks in order, each let go once taken."""
    held.reverse()
    while held:
        yield held.pop()


def _coalesce(chunks: Iterable[Chunk], size: int) -> Iterator[Chunk]:
    """Consecutive chunks of a run (keys growing) joined up to about `size` events:
    fewer, larger batches; joining them needs no sort."""
    group: list[Chunk] = []
    n = 0
    for ch in chunks:
        group.append(ch)
        n += sum(len(p.seq) for p in ch.values())
        if n >= size:
            yield sort_chunk(group)
            group, n = [], 0
    if group:
        yield sort_chunk(group)
