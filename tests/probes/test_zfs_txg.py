"""zfs.txg.sync: the txgs kstat poller (fixtures) and the kprobe C compiling."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.batch import Batch
from engine.errors import ConfigError, HostError
from probes import zfs_txg

from ..conftest import needs_root_bpf

HEADER = (
    "txg      birth            state ndirty       nread        nwritten     reads    writes"
    "   otime        qtime        wtime        stime\n"
)
# From openzfs/zfs issue #11929 (see notes/zfs-txg.md).
SAMPLE = "59754 62524099457587 C 81018880 0 25616384 0 680 563753583 604707 26596 305528904\n"
SAMPLE_START = 62524663842473  # birth + otime + qtime + wtime
SAMPLE_END = 62524969371377  # + stime
OPEN = "59756 62530000000000 O 0 0 0 0 0 0 0 0 0\n"
SYNCING = "59755 62529000000000 S 1000 0 0 0 0 100 200 300 0\n"
PRE_08 = "18 0 0x01 0 0 9225387012 1098512148148\n"  # kstat header line before 0.8


def _pool(root: Path, pool: str, text: str) -> Path:
    (root / pool).mkdir(parents=True, exist_ok=True)
    p = root / pool / "txgs"
    p.write_text(text)
    return p


def test_parse_sample_row() -> None:
    rows = zfs_txg.parse_txgs(HEADER + SAMPLE + SYNCING + OPEN)
    assert rows == [zfs_txg.TxgRow(59754, SAMPLE_START, SAMPLE_END, 81018880)]


def test_parse_pre_08_header() -> None:
    text = "kid type flags ndata size crtime snaptime\n" + PRE_08 + HEADER + SAMPLE
    assert [r.txg for r in zfs_txg.parse_txgs(text)] == [59754]
    assert zfs_txg.parse_txgs(PRE_08 + HEADER + SAMPLE)[0].end_raw == SAMPLE_END


def test_parse_skips_garbage_and_missing_header() -> None:
    assert zfs_txg.parse_txgs(SAMPLE) == []  # no header: nothing trustworthy
    bad = "59753 xx C 1 0 0 0 0 1 1 1 1\n59752 1 C 1\n"
    assert [r.txg for r in zfs_txg.parse_txgs(HEADER + bad + SAMPLE)] == [59754]


def test_parse_after() -> None:
    row = "59755 62529000000000 C 1000 0 0 0 0 100 200 300 400\n"
    assert [r.txg for r in zfs_txg.parse_txgs(HEADER + SAMPLE + row, after=59754)] == [59755]


def test_poll_emits_each_txg_once_per_pool(tmp_path: Path) -> None:
    p = _pool(tmp_path, "tank", HEADER + SAMPLE + SYNCING)
    _pool(tmp_path, "rpool", HEADER)
    src = zfs_txg.make_source(frozenset({"zfs.txg.sync"}), {"root": str(tmp_path)})
    assert isinstance(src, zfs_txg.KstatTxgSource)
    b = src.poll(offset_ns=1000)
    assert b.row(0) == {
        "stream": "zfs.txg.sync",
        "ts": SAMPLE_START + 1000,
        "end": SAMPLE_END + 1000,
        "pool": "tank",
        "txg": 59754,
        "dirty": 81018880,
    }
    assert len(b) == 1
    assert len(src.poll(offset_ns=1000)) == 0  # nothing new
    # 59755 commits; a new open TXG appears
    p.write_text(HEADER + SAMPLE + SYNCING.replace(" S ", " C ") + OPEN)
    b2 = src.poll(offset_ns=0)
    assert list(b2.columns["txg"]) == [59755.0]
    assert src.last_txg == {"tank": 59755}


def test_poll_recreated_pool_starts_over(tmp_path: Path) -> None:
    p = _pool(tmp_path, "tank", HEADER + SAMPLE)
    src = zfs_txg.KstatTxgSource(root=tmp_path)
    assert len(src.poll(offset_ns=0)) == 1
    p.write_text(HEADER + "5 1000 C 1 0 0 0 0 0 0 0 100\n")  # destroyed and created again
    assert list(src.poll(offset_ns=0).columns["txg"]) == [5.0]
    assert len(src.poll(offset_ns=0)) == 0


def test_poll_orders_by_end_across_pools(tmp_path: Path) -> None:
    _pool(tmp_path, "a", HEADER + "10 5000 C 1 0 0 0 0 0 0 0 100\n")  # ends 5100
    _pool(tmp_path, "b", HEADER + "20 1000 C 1 0 0 0 0 0 0 0 100\n")  # ends 1100
    b = zfs_txg.KstatTxgSource(root=tmp_path).poll(offset_ns=0)
    assert list(b.columns["pool"]) == ["b", "a"]
    assert b.end is not None
    assert bool(np.all(np.diff(b.end) >= 0)) and bool(np.all(b.end >= b.ts))


def test_poll_only_given_pools(tmp_path: Path) -> None:
    _pool(tmp_path, "a", HEADER + SAMPLE)
    _pool(tmp_path, "b", HEADER + SAMPLE)
    b = zfs_txg.KstatTxgSource(root=tmp_path, pools=["b", "gone"]).poll(offset_ns=0)
    assert list(b.columns["pool"]) == ["b"]


def test_read_retries_on_eio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _pool(tmp_path, "tank", HEADER + SAMPLE)
    real_read = os.read
    failures = iter([True, True])

    def flaky(fd: int, n: int) -> bytes:
        if next(failures, False):
            raise OSError(errno.EIO, "rows dropped")
        return real_read(fd, n)

    monkeypatch.setattr(zfs_txg.os, "read", flaky)
    assert zfs_txg.read_kstat(path) == HEADER + SAMPLE


def test_read_gives_up_after_retries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _pool(tmp_path, "tank", HEADER + SAMPLE)

    def always(fd: int, n: int) -> bytes:
        raise OSError(errno.EIO, "rows dropped")

    monkeypatch.setattr(zfs_txg.os, "read", always)
    with pytest.raises(OSError):
        zfs_txg.read_kstat(path, retries=2)
    src = zfs_txg.KstatTxgSource(root=tmp_path)
    assert len(src.poll()) == 0 and src.stats()["errors"] == 1


def test_clock_offset_converts_raw_to_monotonic() -> None:
    import time

    off = zfs_txg.mono_minus_raw_ns()
    raw = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
    mono = time.monotonic_ns()
    # raw + offset lands on the monotonic clock (within scheduling noise: 50 ms)
    assert abs(raw + off - mono) < 50_000_000


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**40),
            st.integers(0, 2**30),
            st.integers(0, 2**30),
            st.integers(0, 2**30),
            st.integers(0, 2**30),
            st.integers(0, 2**40),
            st.sampled_from("OQWSC"),
        ),
        max_size=20,
    )
)
def test_parse_property(rows: list[tuple[int, int, int, int, int, int, str]]) -> None:
    text = HEADER + "".join(
        f"{i + 1} {b} {s} {d} 0 0 0 0 {o} {q} {w} {st_}\n"
        for i, (b, o, q, w, st_, d, s) in enumerate(rows)
    )
    got = zfs_txg.parse_txgs(text)
    want = [
        zfs_txg.TxgRow(i + 1, b + o + q + w, b + o + q + w + st_, d)
        for i, (b, o, q, w, st_, d, s) in enumerate(rows)
        if s == "C"
    ]
    assert got == want


async def test_run_skips_history_and_emits_new(tmp_path: Path) -> None:
    import time

    old = "59754 1000 C 1 0 0 0 0 1 2 3 4\n"  # ended long before run() started
    p = _pool(tmp_path, "tank", HEADER + old)
    src = zfs_txg.make_source(
        frozenset({"zfs.txg.sync"}), {"root": str(tmp_path), "interval": "10ms"}
    )
    got: list[Batch] = []

    async def emit(b: Batch) -> None:
        got.append(b)
        tg.cancel_scope.cancel()

    async def commit_later() -> None:
        await anyio.sleep(0.05)
        now_raw = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
        p.write_text(HEADER + old + f"59755 {now_raw} C 7 0 0 0 0 1 2 3 4\n")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(src.run, emit)
            tg.start_soon(commit_later)
    assert len(got) == 1 and list(got[0].columns["txg"]) == [59755.0]
    assert src.progress() is not None


def test_make_source_errors(tmp_path: Path) -> None:
    with pytest.raises(HostError, match="no ZFS"):
        zfs_txg.make_source(frozenset({"zfs.txg.sync"}), {"root": str(tmp_path / "none")})
    with pytest.raises(ConfigError):
        zfs_txg.make_source(frozenset({"zfs.txg.sync"}), {"mode": "magic"})
    with pytest.raises(ConfigError):
        zfs_txg.make_source(frozenset({"zfs.txg.sync"}), {"root": str(tmp_path), "interval": "x"})
    for odd in (float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="zfs_txg interval"):
            opts = {"root": str(tmp_path), "interval": odd}
            zfs_txg.make_source(frozenset({"zfs.txg.sync"}), opts)


def test_check_says_why() -> None:
    ok, why = zfs_txg.check()
    if not ok:
        assert "no ZFS module loaded" in why
    else:
        assert "spa_sync" in why or "txgs" in why


def test_kprobe_decode() -> None:
    rec = np.zeros(2, dtype=zfs_txg.PAYLOAD)
    rec["start"] = [100, 300]
    rec["end"] = [250, 900]
    rec["txg"] = [7, 8]
    rec["pool"] = [b"tank", b"rpool"]
    b = zfs_txg.decode(rec)
    assert b.row(1) == {
        "stream": "zfs.txg.sync",
        "ts": 300,
        "end": 900,
        "pool": "rpool",
        "txg": 8,
    }
    assert zfs_txg.PAYLOAD.itemsize == 3 * 8 + 64  # struct txg_event


@needs_root_bpf
def test_kprobe_program_compiles() -> None:
    from probes import _bcc

    # Compiling attaches only auto-prefixed functions; ours have none, so this
    # proves the C builds against this host's headers without needing kprobes.
    prog = _bcc.Program(zfs_txg.BPF_SOURCE)
    try:
        assert prog.percpu_counter() is not None
    finally:
        prog.close()


@needs_root_bpf
def test_kprobe_attach_or_clear_reason() -> None:
    kp = zfs_txg._kprobe_ok()
    if not kp.ok:
        with pytest.raises(HostError, match=r"kprobe|spa_sync|CONFIG_KPROBES"):
            zfs_txg.make_source(frozenset({"zfs.txg.sync"}), {"mode": "kprobe"})
        pytest.skip(f"cannot attach kprobes here: {kp.message()}")
    src = zfs_txg.make_source(frozenset({"zfs.txg.sync"}), {"mode": "kprobe"})
    src.open()  # type: ignore[attr-defined]
    src.close()  # type: ignore[attr-defined]
