"""The Source protocol: anything that feeds batches into the bus.

Trace files (sources.py), bcc probes and pollers (probes/) all look like this, so
live, replay and tests share everything from the bus on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from .batch import Batch

__all__ = ["Emit", "Source"]

Emit = Callable[[Batch], Awaitable[None]]


class Source(Protocol):
    """A producer of batches.

    `run` emits batches in emission order per stream and returns at end of input
    (trace files) or runs until cancelled (live). `progress()` is the event time up
    to which this source has emitted everything it will ever emit (None: unknown);
    the clock's watermark never passes the slowest source's progress.
    """

    name: str
    streams: frozenset[str]

    async def run(self, emit: Emit) -> None: ...

    def progress(self) -> int | None: ...

    def stats(self) -> dict[str, int]: ...
