"""disk.io and fs.commit from a real loop device with ext4 on it."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import numpy as np

from probes import block_io, jbd2

from .conftest import collect, joined, needs_bpf


def _write_fsync(path: Path, rounds: int = 20) -> None:
    data = os.urandom(64 * 1024)
    with path.open("wb") as f:
        for _ in range(rounds):
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


@needs_bpf
async def test_disk_io_from_loop_device(ext4_loop: tuple[str, Path]) -> None:
    dev, mnt = ext4_loop
    src = block_io.make_source(frozenset({"disk.io"}), {})

    async def work() -> None:
        await anyio.to_thread.run_sync(_write_fsync, mnt / "f")

    got = await collect(src, work)
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
    assert src.stats()["events"] >= len(b)
    assert src.stats()["lost"] == 0


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
