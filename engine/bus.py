"""The event bus: per-stream fan-out of batches to bounded subscriber queues.

Replay publishes with `publish` (waits for room: nothing dropped, the slowest
subscriber sets the pace). Live drains publish with `publish_nowait` (never blocks a
kernel drain): a full subscriber loses the batch and the loss is counted for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .batch import Batch

__all__ = ["Bus", "Subscription"]


@dataclass(slots=True)
class _Counts:
    events: int = 0
    batches: int = 0

    def add(self, batch: Batch) -> None:
        self.events += len(batch)
        self.batches += 1


@dataclass(eq=False)
class Subscription:
    """An async iterator of the batches of the streams it asked for (None: all)."""

    name: str
    streams: frozenset[str] | None
    capacity: int
    _send: MemoryObjectSendStream[Batch]
    _recv: MemoryObjectReceiveStream[Batch]
    dropped: _Counts = field(default_factory=_Counts)
    delivered: _Counts = field(default_factory=_Counts)
    # (first ts, events) of each batch dropped since the last take_drops().
    _unmarked: list[tuple[int, int]] = field(default_factory=list)

    def wants(self, stream: str) -> bool:
        return self.streams is None or stream in self.streams

    def queued(self) -> int:
        return self._recv.statistics().current_buffer_used

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Batch:
        try:
            return await self._recv.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def receive_nowait(self) -> Batch | None:
        """A queued batch, or None when nothing is queued right now."""
        try:
            return self._recv.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            return None

    def close(self) -> None:
        self._send.close()
        self._recv.close()

    def _drop(self, batch: Batch) -> None:
        self.dropped.add(batch)
        if len(batch):
            self._unmarked.append((int(batch.ts.min()), len(batch)))

    def take_drops(self) -> Batch | None:
        """The drops since the last call as a `lost` batch (probe `bus:NAME`), so
        the findings whose windows they fall in carry them in their `lost` count."""
        if not self._unmarked:
            return None
        drops, self._unmarked = sorted(self._unmarked), []
        return Batch(
            "lost",
            np.array([ts for ts, _ in drops], dtype=np.int64),
            None,
            {
                "probe": np.array([f"bus:{self.name}"] * len(drops), dtype=object),
                "count": np.array([n for _, n in drops], dtype=np.float64),
            },
        )


class Bus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._by_stream: dict[str, list[Subscription]] = {}
        self._published: dict[str, _Counts] = {}
        self._closed = False

    def subscribe(self, name: str, streams: Iterable[str] | None, capacity: int) -> Subscription:
        """`capacity` counts batches; a batch is never split between subscribers."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        send, recv = anyio.create_memory_object_stream[Batch](capacity)
        sub = Subscription(
            name, None if streams is None else frozenset(streams), capacity, send, recv
        )
        self._subs.append(sub)
        self._by_stream.clear()
        if self._closed:
            send.close()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._by_stream.clear()
        sub.close()

    def _targets(self, stream: str) -> list[Subscription]:
        subs = self._by_stream.get(stream)
        if subs is None:
            subs = self._by_stream[stream] = [s for s in self._subs if s.wants(stream)]
        return subs

    def _count(self, batch: Batch) -> None:
        c = self._published.get(batch.stream)
        if c is None:
            c = self._published[batch.stream] = _Counts()
        c.add(batch)

    async def publish(self, batch: Batch) -> None:
        """Deliver to every interested subscriber, waiting for room in each."""
        if self._closed:
            raise RuntimeError("publish on a closed bus")
        self._count(batch)
        for sub in self._targets(batch.stream):
            try:
                await sub._send.send(batch)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                sub._drop(batch)
            else:
                sub.delivered.add(batch)

    def publish_nowait(self, batch: Batch) -> None:
        """Deliver where there is room; count a drop for every full subscriber."""
        if self._closed:
            raise RuntimeError("publish on a closed bus")
        self._count(batch)
        for sub in self._targets(batch.stream):
            try:
                sub._send.send_nowait(batch)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                sub._drop(batch)
            else:
                sub.delivered.add(batch)

    def close(self) -> None:
        """End of input: subscribers finish once they have read what is queued."""
        self._closed = True
        for sub in self._subs:
            sub._send.close()

    def statistics(self) -> dict[str, Any]:
        return {
            "streams": {
                s: {"events": c.events, "batches": c.batches}
                for s, c in sorted(self._published.items())
            },
            "subscribers": {
                sub.name: {
                    "queued": sub.queued(),
                    "delivered_events": sub.delivered.events,
                    "dropped_events": sub.dropped.events,
                    "dropped_batches": sub.dropped.batches,
                }
                for sub in self._subs
            },
        }
