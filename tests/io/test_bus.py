"""The bus: fan-out by stream, backpressure on publish, counted drops on publish_nowait."""

from __future__ import annotations

import anyio
import pytest

from engine.batch import Batch
from engine.bus import Bus

from .helpers import disk, memcg


def _disk(*ts: int) -> Batch:
    return Batch.from_rows("disk.io", [disk(t) for t in ts])


def _memcg(*ts: int) -> Batch:
    return Batch.from_rows("memcg", [memcg(t) for t in ts])


async def test_fan_out_by_stream_and_end_of_input() -> None:
    bus = Bus()
    everything = bus.subscribe("all", None, 8)
    only_mem = bus.subscribe("mem", {"memcg"}, 8)
    await bus.publish(_disk(1, 2))
    await bus.publish(_memcg(3))
    bus.close()
    assert [(b.stream, len(b)) async for b in everything] == [("disk.io", 2), ("memcg", 1)]
    assert [(b.stream, len(b)) async for b in only_mem] == [("memcg", 1)]
    st = bus.statistics()
    assert st["streams"] == {
        "disk.io": {"events": 2, "batches": 1},
        "memcg": {"events": 1, "batches": 1},
    }
    assert st["subscribers"]["mem"]["delivered_events"] == 1


async def test_publish_waits_for_room_and_drops_nothing() -> None:
    bus = Bus()
    sub = bus.subscribe("slow", None, 1)
    published: list[int] = []

    async def producer() -> None:
        for t in range(5):
            await bus.publish(_disk(t))
            published.append(t)
        bus.close()

    got: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(producer)
        await anyio.wait_all_tasks_blocked()
        # the queue holds one batch; the producer is blocked on the second
        assert published == [0]
        async for b in sub:
            got.append(int(b.ts[0]))
    assert got == [0, 1, 2, 3, 4]
    assert bus.statistics()["subscribers"]["slow"]["dropped_events"] == 0


async def test_publish_nowait_counts_drops_per_subscriber() -> None:
    bus = Bus()
    small = bus.subscribe("small", None, 1)
    big = bus.subscribe("big", None, 10)
    for t in range(4):
        bus.publish_nowait(_disk(t, t))
    st = bus.statistics()["subscribers"]
    assert st["small"] == {
        "queued": 1,
        "delivered_events": 2,
        "dropped_events": 6,
        "dropped_batches": 3,
    }
    assert st["big"]["dropped_events"] == 0 and st["big"]["queued"] == 4
    assert small.receive_nowait() is not None and small.receive_nowait() is None
    assert big.queued() == 4


async def test_unsubscribed_reader_counts_as_drops_not_errors() -> None:
    bus = Bus()
    sub = bus.subscribe("gone", None, 4)
    bus.unsubscribe(sub)
    keep = bus.subscribe("keep", {"disk.io"}, 4)
    await bus.publish(_disk(1))
    assert keep.queued() == 1
    assert "gone" not in bus.statistics()["subscribers"]


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Bus().subscribe("x", None, 0)


async def test_drops_come_back_as_lost_events_once() -> None:
    bus = Bus()
    sub = bus.subscribe("evaluator", None, 1)
    bus.publish_nowait(_disk(10, 11))
    bus.publish_nowait(_disk(30, 31, 32))  # full: dropped
    bus.publish_nowait(_disk(20))  # full: dropped
    lost = sub.take_drops()
    assert lost is not None and lost.stream == "lost"
    assert lost.ts.tolist() == [20, 30]
    assert lost.columns["count"].tolist() == [1.0, 3.0]
    assert set(lost.columns["probe"]) == {"bus:evaluator"}
    assert sub.take_drops() is None
    assert sub.dropped.events == 4
