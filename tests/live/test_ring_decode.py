"""Decoding perf-ring bytes (no kernel needed): fast path, LOST records, misfits, wraps."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from probes.block_io import PAYLOAD as IO_PAYLOAD
from probes.block_io import decode as decode_io
from probes.block_io import op_names
from probes.decode import cstrings
from probes.jbd2 import PAYLOAD
from probes.net_drop import reason_names
from probes.perf_ring import (
    PERF_RECORD_LOST,
    PERF_RECORD_SAMPLE,
    decode_records,
    record_dtype,
    record_size,
)

REC = record_dtype(PAYLOAD)


def sample(ts: int, end: int, dev: int, tid: int) -> bytes:
    body = struct.pack("<QQII", ts, end, dev, tid)
    size = record_size(PAYLOAD)
    raw = size - 12
    return struct.pack("<IHHI", PERF_RECORD_SAMPLE, 0, size, raw) + body.ljust(raw, b"\0")


def lost(n: int) -> bytes:
    return struct.pack("<IHHQQ", PERF_RECORD_LOST, 0, 24, 7, n)


def odd_sample() -> bytes:
    return struct.pack("<IHHI", PERF_RECORD_SAMPLE, 0, 24, 12) + b"\1" * 12


record = st.one_of(
    st.tuples(st.just("s"), st.integers(0, 2**62), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("l"), st.integers(1, 10**6), st.just(0)),
    st.tuples(st.just("o"), st.just(0), st.just(0)),
)


@given(st.lists(record, max_size=40))
def test_decode_matches_what_was_written(items: list[tuple[str, int, int]]) -> None:
    chunks, want_ts, want_lost, want_bad = [], [], 0, 0
    for kind, a, b in items:
        if kind == "s":
            chunks.append(sample(a, a + 5, 8388609, b))
            want_ts.append(a)
        elif kind == "l":
            chunks.append(lost(a))
            want_lost += a
        else:
            chunks.append(odd_sample())
            want_bad += 1
    buf = np.frombuffer(b"".join(chunks), dtype=np.uint8)
    got = decode_records(buf, REC)
    assert got.payload["ts"].tolist() == want_ts
    assert (got.payload["end"] - got.payload["ts"]).tolist() == [5] * len(want_ts)
    assert got.lost == want_lost
    assert got.bad == want_bad


def test_fast_path_is_a_bulk_view() -> None:
    buf = np.frombuffer(b"".join(sample(i, i, 1, i) for i in range(1000)), dtype=np.uint8)
    got = decode_records(buf, REC)
    assert got.payload["tid"].tolist() == list(range(1000))
    assert got.lost == 0 and got.bad == 0


def test_record_size_pads_to_eight() -> None:
    assert record_size(PAYLOAD) % 8 == 0
    assert record_size(IO_PAYLOAD) >= 12 + IO_PAYLOAD.itemsize


def test_truncated_record_is_bad_not_a_crash() -> None:
    data = sample(1, 2, 3, 4)
    got = decode_records(np.frombuffer(data + data[:20], dtype=np.uint8), REC)
    assert got.payload["ts"].tolist() == [1]
    assert got.bad == 1


def test_op_names_from_rwbs() -> None:
    col = np.array([b"R", b"W", b"F", b"D", b"N", b""], dtype="S2")
    assert op_names(col).tolist() == ["read", "write", "flush", "discard", "other", "other"]


def test_data_less_write_decodes_as_flush() -> None:
    p = np.zeros(3, dtype=IO_PAYLOAD)
    p["op"] = [b"WS", b"WS", b"RA"]
    p["bytes"] = [4096, 0, 0]
    assert decode_io(p).columns["op"].tolist() == ["write", "flush", "read"]


def test_preflush_is_read_past() -> None:
    # "FWS": a write with a preflush; "FF": the flush request; "WFS": a FUA write
    col = np.array([b"FW", b"FF", b"WF", b"FR", b"FD", b"RA"], dtype="S2")
    assert op_names(col).tolist() == ["write", "flush", "write", "read", "discard", "read"]


def test_cstrings_stops_at_nul() -> None:
    col = np.array([b"dd\0junk", b"kworker/0:1", b"dd"], dtype="S16")
    assert cstrings(col).tolist() == ["dd", "kworker/0:1", "dd"]


def test_reason_names_from_format() -> None:
    fmt = (
        'print fmt: "reason: %s", __print_symbolic(REC->reason, { 2, "NOT_SPECIFIED" }, '
        '{ 3, "NO_SOCKET" }, { 77, "TCP_OFOMERGE" })'
    )
    assert reason_names(fmt) == {2: "NOT_SPECIFIED", 3: "NO_SOCKET", 77: "TCP_OFOMERGE"}
    assert reason_names("no table") == {}


def test_tcp_decode_v4_v6_and_states() -> None:
    from probes import tcp

    p = np.zeros(3, dtype=tcp.PAYLOAD)
    p["ts"] = [1, 2, 3]
    p["family"] = [2, 10, 2]
    p["sport"], p["dport"] = [1000, 2000, 3000], [80, 443, 22]
    p["state"] = [1, 12, 99]
    p["saddr"][0] = bytes([10, 0, 0, 1]) + bytes(12)
    p["daddr"][0] = bytes([10, 0, 0, 2]) + bytes(12)
    p["saddr"][1] = bytes(15) + b"\x01"
    p["daddr"][1] = bytes.fromhex("20010db8000000000000000000000001")
    b = tcp.decode(p)
    assert b.columns["saddr"].tolist() == ["10.0.0.1", "::1", "0.0.0.0"]
    assert b.columns["daddr"].tolist() == ["10.0.0.2", "2001:db8::1", "0.0.0.0"]
    assert b.columns["state"].tolist() == ["ESTABLISHED", "NEW_SYN_RECV", "UNKNOWN"]
    assert b.columns["dport"].tolist() == [80, 443, 22]
