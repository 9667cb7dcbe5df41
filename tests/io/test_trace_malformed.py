"""Malformed trace lines of every kind are bad lines (FILE:LINE), never a crash.

Each is tried through every reading path: the bulk decode of a block, the per-line
fallback, gzip, and the bounded mode (the time-only pre-pass, lazy decoding of an
ordered file, spilled runs of an unordered one).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.errors import TraceError
from engine.sources import TraceSource
from engine.tracedecode import decode_block, scan_emit

from .helpers import disk, rows, txg


def _line(**kw: Any) -> bytes:
    return json.dumps(disk(5, **kw)).encode()


def _raw(field: str, raw: bytes) -> bytes:
    """A disk.io line whose `field` holds the raw JSON bytes `raw`."""
    e = disk(5)
    e[field] = "@@"
    return json.dumps(e).encode().replace(b'"@@"', raw)


DEEP = b"[" * 5000 + b"]" * 5000

MALFORMED: list[tuple[str, bytes, str]] = [
    ("utf8-in-value", _raw("dev", b'"\xff\xfe"'), "invalid UTF-8 byte 0xff at column "),
    ("utf8-in-stream", b'{"ts": 5, "stream": "disk\xff.io"}', "invalid UTF-8 byte 0xff"),
    (
        "utf8-in-unknown-key",
        _raw("xx", b"1").replace(b'"xx"', b'"x\xff"'),
        "invalid UTF-8 byte 0xff",
    ),
    ("utf8-in-unknown-value", _raw("extra", b'"a\xc3"'), "invalid UTF-8 byte 0xc3"),
    ("utf8-truncated-sequence", _raw("comm", b'"\xe2\x82"'), "invalid UTF-8 byte 0xe2"),
    ("utf8-overlong", _raw("comm", b'"\xc0\xaf"'), "invalid UTF-8 byte 0xc0"),
    ("huge-ts", _raw("ts", b"1" + b"0" * 30), "field `ts` is out of range"),
    ("min-int64-ts", _raw("ts", str(-(2**63)).encode()), "field `ts` is out of range"),
    ("huge-bytes", _raw("bytes", b"1" + b"0" * 30), "field `bytes` is out of range"),
    ("past-int64-pid", _raw("pid", str(2**63).encode()), "field `pid` is out of range"),
    ("past-float-bytes", _raw("bytes", b"1" + b"0" * 400), "field `bytes` is out of range"),
    ("huge-optional", _raw("queue", b"1" + b"0" * 30), "field `queue` is out of range"),
    ("float-overflow", _raw("bytes", b"1e999"), "field `bytes`"),
    ("nan", _raw("latency", b"NaN"), "not valid JSON"),
    ("infinity", _raw("latency", b"Infinity"), "not valid JSON"),
    ("minus-infinity", _raw("latency", b"-Infinity"), "not valid JSON"),
    ("deep-unknown-field", _raw("extra", DEEP), "nested too deeply"),
    ("deep-array", DEEP, "expected a JSON object"),
    ("array-of-event", b"[" + _line() + b"]", "expected a JSON object, got an array"),
    ("string", b'"disk.io"', "expected a JSON object, got a string"),
    ("null", b"null", "expected a JSON object, got null"),
    ("true", b"true", "expected a JSON object, got true/false"),
    ("lone-surrogate", _raw("comm", b'"\\ud800"'), "not valid JSON"),
    ("huge-end", json.dumps(txg(5, 10**30)).encode(), "field `end` is out of range"),
]
IDS = [m[0] for m in MALFORMED]


def _trace(
    path: Path,
    bad: bytes,
    *,
    ordered: bool = True,
    gz: bool = False,
    at: tuple[int, ...] = (3, 21, 38),
) -> list[int]:
    """40 lines: good disk.io (ts = line number, or reversed), the bad line at `at`;
    returns the good times."""
    n = 40
    lines: list[bytes] = []
    good: list[int] = []
    for no in range(1, n + 1):
        if no in at:
            lines.append(bad)
            continue
        ts = no if ordered else n - no
        good.append(ts)
        lines.append(json.dumps(disk(ts)).encode())
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if gz else data)
    return sorted(good)


MODES: dict[str, dict[str, Any]] = {
    "memory": {},
    "memory-small-blocks": {"block_bytes": 300},
    "gzip": {"gz": True},
    "bounded-ordered": {"run_size": 2, "block_bytes": 300},
    "bounded-spilled": {"run_size": 1, "block_bytes": 300, "ordered": False},
    "bounded-spilled-gzip": {"run_size": 3, "block_bytes": 500, "ordered": False, "gz": True},
    "bounded-unwanted-stream": {"run_size": 2, "block_bytes": 300, "streams": ["memcg"]},
}


def _source(path: Path, opts: dict[str, Any], **kw: Any) -> TraceSource:
    src_opts = {k: v for k, v in opts.items() if k not in ("gz", "ordered")}
    return TraceSource([str(path)], **src_opts, **kw)


@pytest.mark.parametrize("line", [3, 38])  # in the first run; in the rest (bounded modes)
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("name", "bad", "message"), MALFORMED, ids=IDS)
def test_malformed_line_stops_replay_with_file_and_line(
    tmp_path: Path, mode: str, name: str, bad: bytes, message: str, line: int
) -> None:
    opts = MODES[mode]
    p = tmp_path / ("t.jsonl.gz" if opts.get("gz") else "t.jsonl")
    _trace(p, bad, ordered=opts.get("ordered", True), gz=opts.get("gz", False), at=(line,))
    with pytest.raises(TraceError) as ei:
        list(_source(p, opts).batches())
    assert (ei.value.file, ei.value.line) == (str(p), line)
    assert message in ei.value.message
    assert str(ei.value).startswith(f"{p}:{line}: error: ")


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(("name", "bad", "message"), MALFORMED, ids=IDS)
def test_malformed_line_skip_bad_reports_and_keeps_the_rest(
    tmp_path: Path, mode: str, name: str, bad: bytes, message: str
) -> None:
    opts = MODES[mode]
    p = tmp_path / ("t.jsonl.gz" if opts.get("gz") else "t.jsonl")
    good = _trace(p, bad, ordered=opts.get("ordered", True), gz=opts.get("gz", False))
    seen: list[TraceError] = []
    src = _source(p, opts, skip_bad=True, on_bad=seen.append)
    got = rows(src.batches())
    if "streams" not in opts:
        assert [e["ts"] for e in got] == good
    assert [e.line for e in seen] == [3, 21, 38]
    assert all(message in e.message for e in seen)
    assert src.stats()["bad_lines"] == 3


@pytest.mark.parametrize(("name", "bad", "message"), MALFORMED, ids=IDS)
def test_time_prepass_never_raises(name: str, bad: bytes, message: str) -> None:
    # It reads only ts/stream/end: a line it cannot read is left out (the full decode
    # reports it); one whose times it can read may count (it only costs a spill).
    lines = [json.dumps(disk(1)).encode(), bad, json.dumps(disk(2)).encode()]
    got = scan_emit(b"\n".join(lines) + b"\n", 1).tolist()
    assert len(got) in (2, 3) and (got[0], got[-1]) == (1, 2)
    assert len(scan_emit(bad, 1)) <= 1


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 2**63 - 512])
def test_numbers_at_the_int64_edge_are_accepted(tmp_path: Path, value: int) -> None:
    # 2**63 - 1 is 2**63 as a float: the fast check sends the block to the exact one.
    lines = [json.dumps(disk(1, pid=value)).encode(), json.dumps(disk(2)).encode()]
    text = b"\n".join(lines) + b"\n"
    d = decode_block("t.jsonl", 0, 1, text, on_bad=None, columns=None)
    assert d.count == 2 and d.bad == 0
    assert d.parts["disk.io"].batch.columns["pid"][0] == np.float64(value)
    d = decode_block("t.jsonl", 0, 1, text, on_bad=None, columns=frozenset())
    assert d.count == 2 and d.bad == 0


def test_utf8_outside_ascii_is_fine(tmp_path: Path) -> None:
    text = json.dumps(disk(1, comm="zfs-\u00e9\u4e2d\U0001f600"), ensure_ascii=False).encode()
    d = decode_block("t.jsonl", 0, 1, text, on_bad=None, columns=None)
    assert d.bad == 0
    assert d.parts["disk.io"].batch.columns["comm"][0] == "zfs-\u00e9\u4e2d\U0001f600"


def test_utf8_error_column_is_the_bad_byte() -> None:
    bad = b'{"ts": 1, "stream": "disk.io", "dev": "ab\xff"}'
    seen: list[TraceError] = []
    decode_block("t.jsonl", 0, 7, bad + b"\n", on_bad=seen.append, columns=None)
    (err,) = seen
    assert err.line == 7
    col = bad.index(b"\xff") + 1
    assert err.message == f"not valid JSON (invalid UTF-8 byte 0xff at column {col})"
