"""In-flight pairing in the BPF slot tables of disk.io and sched.runq (real kernel).

Every completed request is reported once; a request or wakeup that finds no slot is
counted (th_noslot, and th_lost: a `lost` event), never dropped silently; a stale slot
(its request never completed) is taken over. Tiny tables (cflags) make the full set
happen on demand; a fake stale slot is written into the BPF array from user space.
"""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from engine.batch import Batch
from probes import block_io, sched_runq
from probes.drain import BccProbeSource

from .conftest import RAW_VARIANTS, collect, joined, needs_bpf, run

BLOCK = 4096
DEV_BLOCKS = 16384  # a 64 MiB device
FAKE_DEV = 0xFFF00001  # no such device: a slot of it never completes
SPIN = "import time\nt = time.time() + 1.0\nwhile time.time() < t: pass\n"


@pytest.fixture
def raw_loop(tmp_path: Path) -> Iterator[str]:
    """A fresh 64 MiB loop device with nothing on it: its path (/dev/loopN)."""
    img = tmp_path / "raw.img"
    with img.open("wb") as f:
        f.truncate(DEV_BLOCKS * BLOCK)
    dev = run(f"losetup --find --show {img}").stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def _writer(dev: str, blocks: list[int]) -> None:
    """4 KiB O_DIRECT writes at these blocks, one at a time: one block request each."""
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
    buf.write(b"\xab" * BLOCK)
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    try:
        for b in blocks:
            os.pwritev(fd, [buf], b * BLOCK)
    finally:
        os.close(fd)


def _concurrent_writes(dev: str, writers: int, each: int) -> int:
    """`writers` threads writing at once, every block distinct and none adjacent (no
    merge): the number of block requests."""
    errors: list[BaseException] = []

    def write(blocks: list[int]) -> None:
        try:
            _writer(dev, blocks)
        except BaseException as e:  # a thread's error would otherwise only be printed
            errors.append(e)

    threads = [
        threading.Thread(target=write, args=([2 * (i * writers + w) for i in range(each)],))
        for w in range(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return writers * each


def _my_writes(got: dict[str, list[Batch]], dev: str) -> Batch:
    b = joined(got, "disk.io")
    m = (b.columns["dev"] == os.path.basename(dev)) & (b.columns["op"] == "write")
    return b.take(m & (b.columns["bytes"] == BLOCK))


def _lost(got: dict[str, list[Batch]]) -> float:
    return float(joined(got, "lost").columns["count"].sum()) if got.get("lost") else 0.0


def _table(src: BccProbeSource, name: str) -> Any:
    """A BPF map of the source's program (bcc's table object)."""
    return src._program._bpf[name.encode()]


@needs_bpf
@pytest.mark.parametrize("raw", RAW_VARIANTS)
async def test_every_concurrent_request_reported_once(raw_loop: str, raw: bool) -> None:
    src = block_io.make_source(frozenset({"disk.io"}), {"raw": raw})
    counts: dict[str, int] = {}

    async def work() -> None:
        counts["writes"] = await anyio.to_thread.run_sync(_concurrent_writes, raw_loop, 8, 300)
        await anyio.sleep(0.2)
        counts["noslot"] = src.counter(block_io.NOSLOT)

    got = await collect(src, work)
    assert src.preferred == raw
    mine = _my_writes(got, raw_loop)
    st = src.stats()
    assert counts["noslot"] == 0
    # As a tracepoint program, a completion is lost when its interrupt lands while this
    # probe's block_rq_issue program runs on that CPU: the kernel skips it and counts
    # it (recursion misses; about one run in a hundred loses 1-6 here), published as
    # lost. Not ours to count: in about one run of 90, 1-8 requests /proc/diskstats
    # counts complete never fire block_rq_complete at all (raw and tracepoint programs
    # side by side both miss them; docs/probes.md). At most 8 such, never a duplicate.
    missing = counts["writes"] - len(mine)
    assert 0 <= missing <= st["lost"] + 8, f"once each, or counted: {len(mine)} of {counts}, {st}"
    lat = mine.columns["latency"]
    assert np.all((lat > 0) & (lat < 5e9))
    q = mine.columns["queue"]
    assert np.all(np.isnan(q) | ((q >= 0) & (q < 5e9)))
    # the issuing task: our writers in their own context (loop, no scheduler), or a
    # kworker dispatching for them
    ours = mine.columns["pid"] == os.getpid()
    assert ours.sum() > 0 and np.all(mine.columns["pid"] > 0), np.unique(mine.columns["comm"])
    comm = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert set(mine.columns["comm"][ours]) == {comm}


@needs_bpf
async def test_request_without_a_slot_is_counted_lost(raw_loop: str) -> None:
    # one slot for every device: concurrent requests find it taken
    cflags = ["-DTH_RQ_SETS=1", "-DTH_RQ_WAYS=1"]
    src = block_io.make_source(frozenset({"disk.io"}), {"cflags": cflags})
    counts: dict[str, int] = {}

    async def work() -> None:
        counts["writes"] = await anyio.to_thread.run_sync(_concurrent_writes, raw_loop, 8, 200)
        await anyio.sleep(0.2)
        counts["noslot"] = src.counter(block_io.NOSLOT)

    got = await collect(src, work)
    mine = _my_writes(got, raw_loop)
    assert counts["noslot"] > 0, "eight writers on one slot must collide"
    assert len(mine) < counts["writes"]
    # every request of ours was reported or counted (the count also has other devices')
    assert len(mine) + counts["noslot"] >= counts["writes"]
    assert _lost(got) >= counts["noslot"], "a request without a slot is a `lost` sample"
    assert np.all(mine.columns["latency"] > 0)


@needs_bpf
async def test_stale_request_slot_is_taken_over(raw_loop: str) -> None:
    # one slot; an epoch of 2^28 ns: a slot is stale 268-805 ms after its claim
    cflags = ["-DTH_RQ_SETS=1", "-DTH_RQ_WAYS=1", "-DTH_RQ_EPOCH_SHIFT=28"]
    src = block_io.make_source(frozenset({"disk.io"}), {"cflags": cflags})
    marks: dict[str, int] = {}

    def fake_slot() -> None:
        """A request of no device, claimed now, that will never complete."""
        table = _table(src, "th_rq")
        leaf = table.Leaf()
        now = time.monotonic_ns()  # bpf_ktime_get_ns's clock
        leaf.way[0].tag = ((now >> 28) & 0xFF) << 56 | (12345 << 1) + 1
        leaf.way[0].dev = FAKE_DEV
        leaf.way[0].issue_ts = now
        table[table.Key(0)] = leaf

    async def work() -> None:
        fake_slot()
        marks["t0"] = time.monotonic_ns()
        await anyio.to_thread.run_sync(_writer, raw_loop, list(range(0, 100, 2)))
        marks["t1"] = time.monotonic_ns()
        marks["noslot"] = src.counter(block_io.NOSLOT)
        await anyio.sleep(1.0)
        marks["t2"] = time.monotonic_ns()
        marks["noslot2"] = src.counter(block_io.NOSLOT)
        await anyio.to_thread.run_sync(_writer, raw_loop, list(range(200, 300, 2)))
        await anyio.sleep(0.1)
        marks["noslot3"] = src.counter(block_io.NOSLOT)
        marks["lost3"] = src.counter("th_lost")

    got = await collect(src, work)
    assert marks["t1"] - marks["t0"] < 250_000_000, "the first writes outran the stale age"
    mine = _my_writes(got, raw_loop)
    early = (mine.ts >= marks["t0"]) & (mine.ts <= marks["t1"])
    assert early.sum() == 0, "a fresh slot of another request is not taken"
    assert marks["noslot"] >= 50
    late = mine.ts >= marks["t2"]
    assert late.sum() > 0, "the stale slot was taken over"
    # the one slot is shared with every other device's requests: ours found it or were counted
    assert late.sum() + marks["noslot3"] - marks["noslot2"] >= 50
    # the stale slot's request had been issued: should it complete, it goes unreported,
    # so its takeover (by our writes or any device's request) is a lost sample too
    assert marks["lost3"] >= marks["noslot3"] + 1, marks


def _spinners(n: int) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
    for p in procs:
        p.wait()


@needs_bpf
async def test_wakeup_without_a_slot_is_counted_lost() -> None:
    cflags = ["-DTH_WAKE_SETS=1", "-DTH_WAKE_WAYS=1"]
    src = sched_runq.make_source(frozenset({"sched.runq"}), {"cflags": cflags})
    counts: dict[str, int] = {}

    async def work() -> None:
        await anyio.to_thread.run_sync(_spinners, 3 * (os.cpu_count() or 2))
        counts["noslot"] = src.counter(sched_runq.NOSLOT)

    got = await collect(src, work)
    assert counts["noslot"] > 0, "runnable tasks queue up: one slot cannot hold them"
    assert _lost(got) >= counts["noslot"], "a wakeup without a slot is a `lost` sample"
    assert len(joined(got, "sched.runq")) > 0


@needs_bpf
async def test_stale_wakeup_slot_is_taken_over() -> None:
    # one slot, stale after 2^27 ns (134 ms)
    cflags = ["-DTH_WAKE_SETS=1", "-DTH_WAKE_WAYS=1", "-DTH_WAKE_STALE_SHIFT=27"]
    src = sched_runq.make_source(frozenset({"sched.runq"}), {"cflags": cflags})
    marks: dict[str, int] = {}

    async def work() -> None:
        table = _table(src, "th_wake")
        leaf = table.Leaf()
        now = time.monotonic_ns()
        # a task woken now that never runs (pid 2^22 - 1: above this host's pid_max)
        leaf.way[0] = (2**22 - 1) << 42 | (now & (2**42 - 1))
        table[table.Key(0)] = leaf
        marks["t0"] = time.monotonic_ns()
        await anyio.sleep(0.1)
        marks["t1"] = time.monotonic_ns()
        marks["noslot"] = src.counter(sched_runq.NOSLOT)
        await anyio.sleep(0.2)
        marks["t2"] = time.monotonic_ns()
        await anyio.sleep(0.3)

    got = await collect(src, work)
    b = joined(got, "sched.runq")
    assert marks["t1"] - marks["t0"] < 130_000_000
    assert np.sum((b.ts >= marks["t0"]) & (b.ts <= marks["t1"])) == 0, "no slot: no sample"
    assert marks["noslot"] > 0
    assert np.sum(b.ts >= marks["t2"]) > 0, "the stale slot was taken over"
