"""disk.io and fs.commit from a real loop device with ext4 on it."""

from __future__ import annotations

import collections
import os
import threading
import time
from pathlib import Path

import anyio
import numpy as np
import pytest

from engine.batch import Batch
from probes import block_io, jbd2
from probes.live import LiveSet

from .conftest import NO_BTF, RAW_VARIANTS, collect, joined, needs_bpf


def _write_fsync(path: Path, rounds: int = 20) -> None:
    data = os.urandom(64 * 1024)
    with path.open("wb") as f:
        for _ in range(rounds):
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


@needs_bpf
@pytest.mark.parametrize("raw", RAW_VARIANTS)
async def test_disk_io_from_loop_device(ext4_loop: tuple[str, Path], raw: bool) -> None:
    dev, mnt = ext4_loop
    src = block_io.make_source(frozenset({"disk.io"}), {"raw": raw})

    async def work() -> None:
        await anyio.to_thread.run_sync(_write_fsync, mnt / "f")

    got = await collect(src, work)
    assert src.preferred == raw, "the raw completion loads where the kernel has BTF"
    b = joined(got, "disk.io")
    mine = b.take(b.columns["dev"] == dev)
    assert len(mine) > 0, f"no disk.io on {dev}; devices seen: {set(b.columns['dev'])}"
    writes = mine.take(mine.columns["op"] == "write")
    assert len(writes) > 0
    assert np.all(writes.columns["bytes"] > 0)
    if Path(f"/sys/block/{dev}/queue/write_cache").read_text().strip() == "write back":
        # fsync flushes the device's cache: flush requests, no data, a latency
        flushes = mine.take(mine.columns["op"] == "flush")
        assert len(flushes) > 0
        assert np.all(flushes.columns["bytes"] == 0)
        assert np.all(flushes.columns["latency"] > 0)
    assert np.all(writes.columns["latency"] > 0)
    assert np.all(writes.columns["latency"] < 10e9)
    assert all(np.all(np.diff(x.ts) >= 0) for x in got["disk.io"]), "batches in emission order"
    # the issuing task is known: pid and comm are set
    assert np.all(writes.columns["pid"] >= 0)
    assert all(isinstance(c, str) for c in writes.columns["comm"])
    # queue time is either absent or a sane duration
    q = mine.columns["queue"]
    assert np.all(np.isnan(q) | ((q >= 0) & (q < 10e9)))
    st = src.stats()
    assert st["events"] >= len(b)
    assert st["bad"] == 0
    # a loss is rare here (a skipped completion, two flushes of a device in flight at
    # once): a few, not one per fsync (20) or per request
    assert st["lost"] <= 2 + len(mine) // 50, (st, len(mine))


@needs_bpf
async def test_fs_commit_from_ext4_journal(ext4_loop: tuple[str, Path]) -> None:
    dev, mnt = ext4_loop
    src = jbd2.make_source(frozenset({"fs.commit"}), {})

    async def work() -> None:
        await anyio.to_thread.run_sync(_write_fsync, mnt / "g", 5)

    got = await collect(src, work)
    b = joined(got, "fs.commit")
    assert b.end is not None
    mine = b.take(b.columns["dev"] == dev)
    assert len(mine) > 0, f"no fs.commit on {dev}; seen: {set(b.columns['dev'])}"
    assert mine.end is not None
    assert np.all(mine.end >= mine.ts)
    tids = mine.columns["tid"]
    assert np.all(np.diff(tids) > 0), "journal transactions commit in increasing order"


def _fsync_writers(mnt: Path, threads: int, seconds: float) -> None:
    def write(i: int) -> None:
        fd = os.open(mnt / f"w{i}", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            end, n = time.monotonic() + seconds, 0
            while time.monotonic() < end:
                os.pwrite(fd, b"x" * 4096, (n % 64) * 4096)
                os.fsync(fd)
                n += 1
        finally:
            os.close(fd)

    ts = [threading.Thread(target=write, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


@needs_bpf
@pytest.mark.skipif(NO_BTF is not None, reason=NO_BTF or "")
async def test_raw_completion_reports_what_the_tracepoint_does(
    ext4_loop: tuple[str, Path],
) -> None:
    """Both variants attached at once, on fsyncs (writes, flushes, journal commits):
    the raw program's dev, op and bytes, read from the kernel's structs at BTF offsets,
    are the tracepoint's: the same count of each (op, bytes), up to the samples either
    lost (whose count also has other devices' and flushes in flight together)."""
    dev, mnt = ext4_loop
    srcs = {
        raw: block_io.make_source(frozenset({"disk.io"}), {"raw": raw}) for raw in (True, False)
    }
    got: dict[bool, list[Batch]] = {True: [], False: []}
    for s in srcs.values():
        s.open()
    async with anyio.create_task_group() as tg:
        for raw, s in srcs.items():

            async def emit(b: Batch, raw: bool = raw) -> None:
                if b.stream == "disk.io":
                    got[raw].append(b)

            tg.start_soon(s.run, emit)
        await anyio.sleep(0.1)
        await anyio.to_thread.run_sync(_fsync_writers, mnt, 2, 1.0)
        await anyio.sleep(0.3)
        tg.cancel_scope.cancel()
    assert srcs[True].preferred and not srcs[False].preferred, "one of each variant"
    seen = {}
    for raw in srcs:
        b = joined({"disk.io": got[raw]}, "disk.io")
        m = b.columns["dev"] == dev
        seen[raw] = collections.Counter(zip(b.columns["op"][m], b.columns["bytes"][m], strict=True))
    lost = srcs[True].stats()["lost"] + srcs[False].stats()["lost"]
    assert seen[True][("write", 4096.0)] > 100 and seen[True][("flush", 0.0)] > 100, seen[True]
    diff = (seen[True] - seen[False]) + (seen[False] - seen[True])
    assert sum(diff.values()) <= lost, (diff, srcs[True].stats(), srcs[False].stats())


@needs_bpf
def test_a_raw_variant_that_does_not_load_falls_back_to_the_tracepoint() -> None:
    # the raw completion without its offsets does not compile: the tracepoint then
    src = block_io.make_source(
        frozenset({"disk.io"}), {"raw": False, "preferred_cflags": ("-DTH_RAW_COMPLETE=1",)}
    )
    src.open()
    try:
        assert not src.preferred and src.preferred_cflags == ()
        assert b"tracepoint__block__block_rq_complete" in src._program._bpf.funcs
        assert src.fallback is not None and "TH_" in src.fallback, src.fallback  # clang's
        live = LiveSet(sources=[src])
        assert any("block_io" in ln and "tracepoint programs instead" in ln for ln in live.report())
    finally:
        src.close()
