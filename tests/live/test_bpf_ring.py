"""The BPF ring buffer reader: record decoding (no kernel), then a real ring (root).

Decoding: a BUSY record stops the read (nothing after it is consumed), discarded
records are skipped, records of another size are misfits. On a real ring: records
that wrap around the end of the data area read whole and in order, discards made
by a program are skipped, a full ring refuses samples into th_lost (and says it was
full), and the fd wakes at a quarter of the ring, not per sample (or per sample for
the rare streams that ask for it).
"""

from __future__ import annotations

import os
import platform
import select
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes import _bcc
from probes.bpf_ring import (
    BUSY_BIT,
    DISCARD_BIT,
    BpfRing,
    read_records,
    record_dtype,
    record_size,
)
from probes.drain import BccProbeSource
from probes.synthetic import PAYLOAD, spec

from .conftest import needs_bpf

REC = record_dtype(PAYLOAD)
RS = record_size(PAYLOAD)


def rec(seq: int, flags: int = 0, size: int = PAYLOAD.itemsize) -> bytes:
    body = struct.pack("<QQQQ", 1000 + seq, seq, 0, 0)[:size].ljust(size, b"\0")
    raw = struct.pack("<II", size | flags, 3) + body
    return raw.ljust((len(raw) + 7) // 8 * 8, b"\0")


def decode(data: bytes) -> tuple[list[int], int, int]:
    got, used = read_records(np.frombuffer(data, dtype=np.uint8), REC)
    return got.payload["id"].tolist(), used, got.bad


def test_record_size_is_header_and_payload_padded_to_eight() -> None:
    assert RS == 8 + 32
    assert record_size(np.dtype([("a", np.uint32)])) == 16


def test_whole_records_are_one_bulk_view() -> None:
    data = b"".join(rec(i) for i in range(1000))
    assert decode(data) == (list(range(1000)), len(data), 0)


def test_a_busy_record_at_the_end_stops_the_read_before_it() -> None:
    data = b"".join(rec(i) for i in range(5)) + rec(5, BUSY_BIT)
    assert decode(data) == ([0, 1, 2, 3, 4], 5 * RS, 0)


def test_nothing_after_a_busy_record_is_consumed() -> None:
    data = rec(0) + rec(1, BUSY_BIT) + rec(2) + rec(3)
    assert decode(data) == ([0], RS, 0), "the consumer position may not pass a busy record"


def test_discarded_records_are_skipped_not_bad() -> None:
    data = rec(0) + rec(1, DISCARD_BIT) + rec(2) + rec(3, DISCARD_BIT)
    assert decode(data) == ([0, 2], 4 * RS, 0)


def test_records_of_another_size_are_misfits_read_past() -> None:
    odd = rec(0, size=12)  # 24 bytes: the bulk view realigns after it
    data = rec(1) + odd + rec(2) + rec(3, DISCARD_BIT, size=4) + rec(4)
    assert decode(data) == ([1, 2, 4], len(data), 1)


record = st.sampled_from(["ok", "discard", "odd", "busy"])


@given(st.lists(record, max_size=60))
def test_decode_matches_what_was_written(kinds: list[str]) -> None:
    chunks, want, used, stopped = [], [], 0, False
    bad = 0
    for i, kind in enumerate(kinds):
        r = {
            "ok": rec(i),
            "discard": rec(i, DISCARD_BIT),
            "odd": rec(i, size=20),
            "busy": rec(i, BUSY_BIT),
        }[kind]
        chunks.append(r)
        if stopped:
            continue
        if kind == "busy":
            stopped = True
            continue
        used += len(r)
        if kind == "ok":
            want.append(i)
        elif kind == "odd":
            bad += 1
    assert decode(b"".join(chunks)) == (want, used, bad)


# ---- a real ring buffer ----

SEQ_C = r"""
BPF_ARRAY(th_seq, u64, 1);
struct hit { u64 ts; u64 id; u64 a; u64 b; };
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_TGID || args->id != SYS_NR)
        return 0;
    int zero = 0;
    u64 *n = th_seq.lookup(&zero);
    if (!n)
        return 0;
    struct hit h = {};
    h.ts = bpf_ktime_get_ns();
    h.id = (*n)++;
#ifdef DISCARD_ODD
    struct hit *r = events.ringbuf_reserve(sizeof(h));
    if (!r)
        return 0;
    __builtin_memcpy(r, &h, sizeof(h));
    if (h.id & 1)
        events.ringbuf_discard(r, 0);
    else
        events.ringbuf_submit(r, 0);
#else
    th_submit(args, &h, sizeof(h));
#endif
    return 0;
}
"""

PAGE = os.sysconf("SC_PAGE_SIZE")
GETPPID = {"x86_64": 110, "aarch64": 173}.get(platform.machine(), -1)
MakeRing = Callable[..., tuple[_bcc.Program, BpfRing]]


def syscalls(n: int) -> None:
    for _ in range(n):
        os.getppid()


def lost(prog: _bcc.Program) -> int:
    return sum(prog.percpu_counter())


@pytest.fixture
def ring_of(tmp_path: Path) -> Iterator[MakeRing]:
    """ring_of(pages, wake_each=False, discard=False) -> (program, BpfRing) for this
    process's getppid() calls, closed at the end."""
    made: list[tuple[_bcc.Program, BpfRing]] = []
    src = tmp_path / "seq.bpf.c"
    src.write_text(SEQ_C)

    def make(
        pages: int, wake_each: bool = False, discard: bool = False
    ) -> tuple[_bcc.Program, BpfRing]:
        flags = [f"-DTARGET_TGID={os.getpid()}", f"-DSYS_NR={GETPPID}"]
        if discard:
            flags.append("-DDISCARD_ODD=1")
        flags += _bcc.output_cflags(pages * PAGE, 1 if wake_each else 0)
        prog = _bcc.Program(src, flags)
        fd, size = prog.ringbuf()
        ring = BpfRing(fd, size, PAYLOAD)
        made.append((prog, ring))
        return prog, ring

    yield make
    for prog, ring in made:
        ring.close()
        prog.close()


def readable(fd: int, timeout: float = 0.05) -> bool:
    r, _, _ = select.select([fd], [], [], timeout)
    return bool(r)


needs_ringbuf = pytest.mark.skipif(
    not _bcc.ringbuf_supported() or GETPPID < 0,
    reason="no BPF ring buffer on this kernel (5.8+), or getppid's number unknown here",
)


@needs_bpf
@needs_ringbuf
def test_records_wrapping_the_end_read_whole_and_in_order(ring_of: MakeRing) -> None:
    prog, ring = ring_of(1)  # 4096 bytes: 102 records of 40
    seen: list[int] = []
    for _ in range(5):  # 5 x 70 records go round the ring several times
        syscalls(70)
        got = ring.read()
        seen += got.payload["id"].tolist()
        assert got.bad == 0 and not got.full
    assert seen == list(range(350))
    assert ring.pending() == 0
    assert lost(prog) == 0


@needs_bpf
@needs_ringbuf
def test_a_full_ring_counts_what_it_refused(ring_of: MakeRing) -> None:
    prog, ring = ring_of(1)
    syscalls(250)
    got = ring.read()
    kept = PAGE // RS  # the producer may not get a whole ring ahead
    assert got.payload["id"].tolist() == list(range(kept))
    assert got.full
    assert lost(prog) == 250 - kept
    syscalls(3)
    assert ring.read().payload["id"].tolist() == [250, 251, 252], "room again once read"


@needs_bpf
@needs_ringbuf
def test_records_a_program_discards_are_skipped(ring_of: MakeRing) -> None:
    _, ring = ring_of(1, discard=True)
    syscalls(90)  # 45 kept, 45 discarded
    first = ring.read().payload["id"].tolist()
    syscalls(50)  # round the end of the ring
    second = ring.read()
    assert first + second.payload["id"].tolist() == list(range(0, 140, 2))
    assert second.bad == 0
    assert ring.pending() == 0


@needs_bpf
@needs_ringbuf
def test_the_fd_wakes_at_a_quarter_of_the_ring_not_per_sample(ring_of: MakeRing) -> None:
    _, ring = ring_of(4)  # 16 KiB: a quarter is 102.4 records
    ring.ack()
    syscalls(90)
    assert not readable(ring.fd), "below the watermark: no wakeup"
    syscalls(20)
    assert readable(ring.fd), "the quarter was crossed"
    ring.ack()
    assert not readable(ring.fd), "ack re-arms the edge-triggered fd"
    syscalls(50)
    assert not readable(ring.fd), "between two quarters: no wakeup"
    syscalls(50)  # past half of the ring: the next multiple of the quarter
    assert readable(ring.fd)
    ring.ack()
    assert len(ring.read().payload) == 210
    syscalls(5)
    assert not readable(ring.fd)


@needs_bpf
@needs_ringbuf
def test_rare_streams_wake_per_sample(ring_of: MakeRing) -> None:
    _, ring = ring_of(1, wake_each=True)
    ring.ack()
    syscalls(1)
    assert readable(ring.fd)
    ring.ack()
    assert ring.read().payload["id"].tolist() == [0]
    syscalls(1)
    assert readable(ring.fd), "the reader had caught up: the next sample wakes it again"


# ---- which output a probe gets ----


@needs_bpf
@pytest.mark.parametrize("forced", [None, "perf", "ringbuf"])
def test_output_is_the_ring_buffer_where_the_kernel_has_it_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forced: str | None
) -> None:
    monkeypatch.delenv("TRACEHOUND_PROBE_OUTPUT", raising=False)
    if forced == "perf":
        monkeypatch.setenv("TRACEHOUND_PROBE_OUTPUT", "perf")
    if forced == "ringbuf" and not _bcc.ringbuf_supported():
        pytest.skip("no BPF ring buffer on this kernel")
    src = BccProbeSource(spec(tmp_path, os.getpid(), pages=4), {"output": forced} if forced else {})
    src.open()
    try:
        want = forced or ("ringbuf" if _bcc.ringbuf_supported() else "perf")
        assert src.output == want
        rings = src._rings
        if want == "ringbuf":
            assert [r.cpu for r in rings] == [-1]
            as_much_as_perf = 4 * PAGE * len(_bcc.online_cpus())
            assert isinstance(rings[0], BpfRing)
            assert rings[0].size == 1 << (as_much_as_perf - 1).bit_length()
        else:
            assert [r.cpu for r in rings] == _bcc.online_cpus()
    finally:
        src.close()


def test_an_unknown_output_is_refused_with_the_choices(tmp_path: Path) -> None:
    from engine.errors import HostError

    with pytest.raises(HostError, match="ringbuf, perf"):
        BccProbeSource(spec(tmp_path, 1), {"output": "pipe"})


@needs_bpf
@needs_ringbuf
def test_auto_falls_back_to_perf_when_the_ring_buffer_will_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.errors import HostError

    monkeypatch.delenv("TRACEHOUND_PROBE_OUTPUT", raising=False)
    # 3 pages: the kernel refuses a ring buffer that is not a power of two
    monkeypatch.setattr(
        _bcc,
        "output_cflags",
        lambda size, wake: ("-DTH_RINGBUF=1", "-DTH_RB_PAGES=3", "-DTH_RB_WAKE_EACH=1"),
    )
    auto = BccProbeSource(spec(tmp_path, os.getpid(), pages=1))
    auto.open()
    try:
        assert auto.output == "perf"
        assert [r.cpu for r in auto._rings] == _bcc.online_cpus()
    finally:
        auto.close()
    forced = BccProbeSource(spec(tmp_path, os.getpid(), pages=1), {"output": "ringbuf"})
    with pytest.raises(HostError, match="cannot load probe"):
        forced.open()
