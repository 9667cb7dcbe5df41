"""Trace files as a Source: JSON Lines (optionally gzip) -> batches in emission order.

Small traces are decoded once into memory and sorted there. A trace larger than
`run_size` events is read in bounded memory: a first pass checks each file (bad
lines, order); a file already in emission order is decoded again lazily while
merging, any other is cut into sorted runs spilled to temporary files; then one
k-way merge of all runs feeds the batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

from .batch import Batch
from .errors import TraceError
from .model import CATALOG
from .source import Emit
from .tracedecode import Decoded, OnBad, decode_block, read_blocks
from .tracesort import Chunk, cut_ordered, cut_slices, merge_runs, sort_chunk, spill_run

__all__ = ["TraceSource"]


class TraceSource:
    """Replays trace files.

    skip_bad: report each bad line through `on_bad` and go on; otherwise the first
    bad line raises TraceError. streams: build columns and emit batches only for
    these (every line is still checked). interleave "ordered": a batch ends wherever
    the stream changes, so the batches follow global emission order; "slices": per
    merged piece one batch per stream, `progress()` moving only when a piece is done.
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
        block_bytes: int = 1 << 22,
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
        self._reported: set[tuple[int, int]] = set()

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
        loaded = self._in_memory()
        chunks: Iterable[Chunk]
        if loaded is None:
            self._stats["passes"] = 2
            chunks = self._bounded()
        else:
            chunks = loaded
        cut = cut_ordered if self.interleave == "ordered" else cut_slices
        for chunk in chunks:
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
            key = (file_index, err.line)
            if key in self._reported:
                return
            self._reported.add(key)
            self._stats["bad_lines"] += 1
            if not self.skip_bad:
                raise err
            if self._on_bad is not None:
                self._on_bad(err)

        return report

    def _blocks(self, i: int, columns: frozenset[str] | None, report: bool) -> Iterator[Decoded]:
        path = self.paths[i]
        on_bad = self._bad(i) if report else None
        for first, lines in read_blocks(path, self.block_bytes):
            yield decode_block(path, i, first, lines, on_bad=on_bad, columns=columns)

    def _in_memory(self) -> list[Chunk] | None:
        """Decode everything into memory, or None once it passes `run_size` events."""
        chunks: list[Chunk] = []
        n = 0
        for i in range(len(self.paths)):
            for d in self._blocks(i, self._want, report=True):
                chunks.append(d.parts)
                n += d.count
                if n > self.run_size:
                    return None
        return [sort_chunk(chunks)]

    def _bounded(self) -> Iterator[Chunk]:
        runs: list[Iterator[Chunk]] = []
        nothing: frozenset[str] = frozenset()
        for i in range(len(self.paths)):
            if self._in_order(i, nothing):
                runs.append(self._file_run(i))
            else:
                runs.extend(self._spilled_runs(i))
        return merge_runs(runs)

    def _in_order(self, i: int, nothing: frozenset[str]) -> bool:
        """First pass over one file: report bad lines; is it in emission order?"""
        last: int | None = None
        ordered = True
        for d in self._blocks(i, nothing, report=True):
            e = d.line_emit
            if not len(e):
                continue
            if (last is not None and e[0] < last) or bool((e[1:] < e[:-1]).any()):
                ordered = False
            last = int(e[-1])
        return ordered

    def _file_run(self, i: int) -> Iterator[Chunk]:
        for d in self._blocks(i, self._want, report=False):
            yield d.parts

    def _spilled_runs(self, i: int) -> list[Iterator[Chunk]]:
        runs: list[Iterator[Chunk]] = []
        pending: list[Chunk] = []
        n = 0
        for d in self._blocks(i, self._want, report=False):
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
