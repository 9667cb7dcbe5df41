"""Bad trace lines: each kind names file and line; --skip-bad reports and goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import TraceError
from engine.sources import TraceSource

from .helpers import disk, rows, txg, write_jsonl

GOOD = json.dumps(disk(1000))

BAD_LINES = [
    ("{not json", "not valid JSON"),
    (
        '{"stream": "disk.io", "dev": "sda", "op": "w", "bytes": 1, "latency": 1, "pid": 1, '
        '"comm": "x"}',
        "missing required field `ts`",
    ),
    ('{"ts": 5, "dev": "sda"}', "missing required field `stream`"),
    ('{"ts": 5, "stream": "disk.oi"}', "unknown stream 'disk.oi' (did you mean disk.io?)"),
    (json.dumps(disk(5, latency=1.5)), "field `latency`: expected an integer, got a number"),
    (json.dumps(disk(5, bytes="4096")), "field `bytes`: expected an integer, got a string"),
    (
        '{"ts": 5.0, "stream": "memcg", "cgroup": "/a", "usage": 1}',
        "field `ts`: expected an integer",
    ),
    (json.dumps(disk(5, latency=-3)), "field `latency` must be a non-negative integer"),
    (
        '{"ts": 5, "stream": "memcg", "cgroup": "/a", "usage": null}',
        "expected an integer, got null",
    ),
    ('{"ts": 5, "stream": "memcg", "cgroup": "/a"}', "missing required field `usage`"),
    (json.dumps(txg(10, 9)), "`end` (9) is before `ts` (10)"),
    ('{"ts": 10, "stream": "zfs.txg.sync", "pool": "p", "txg": 1}', "missing required field `end`"),
    ("[1, 2]", "expected a JSON object, got an array"),
    (json.dumps(disk(2**64)), "out of range"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    p = write_jsonl(tmp_path / "t.jsonl", ["# header", GOOD, "", line, GOOD])
    with pytest.raises(TraceError) as ei:
        list(TraceSource([str(p)]).batches())
    err = ei.value
    assert (err.file, err.line) == (str(p), 4)
    assert message in err.message
    assert str(err).startswith(f"{p}:4: error: ")


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_skip_bad_reports_each_and_keeps_the_rest(tmp_path: Path, line: str, message: str) -> None:
    p = write_jsonl(tmp_path / "t.jsonl", [json.dumps(disk(1)), line, json.dumps(disk(3)), line])
    seen: list[TraceError] = []
    src = TraceSource([str(p)], skip_bad=True, on_bad=seen.append)
    got = rows(src.batches())
    assert [e["ts"] for e in got] == [1, 3]
    assert [(e.line, message in e.message) for e in seen] == [(2, True), (4, True)]
    assert src.stats()["bad_lines"] == 2


def test_unknown_fields_are_ignored_and_optionals_may_be_absent(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "t.jsonl", [disk(1, extra={"a": 1}, queue=7), disk(2)])
    b = next(TraceSource([str(p)]).batches())
    assert "extra" not in b.columns
    assert b.columns["queue"][0] == 7 and b.columns["queue"][1] != b.columns["queue"][1]


def test_bad_line_in_second_file_and_bounded_mode(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [disk(i) for i in range(50)])
    b = write_jsonl(tmp_path / "b.jsonl", [*(json.dumps(disk(i)) for i in range(30)), "oops"])
    with pytest.raises(TraceError) as ei:
        list(TraceSource([str(a), str(b)], run_size=10, block_bytes=200).batches())
    assert (ei.value.file, ei.value.line) == (str(b), 31)


def test_skip_bad_reports_once_in_bounded_mode(tmp_path: Path) -> None:
    lines: list[str] = [json.dumps(disk(100 - i)) for i in range(40)]
    lines[7] = "garbage"
    lines[33] = json.dumps(txg(5, 1))
    p = write_jsonl(tmp_path / "t.jsonl", lines)
    seen: list[TraceError] = []
    src = TraceSource([str(p)], skip_bad=True, on_bad=seen.append, run_size=8, block_bytes=300)
    got = rows(src.batches())
    assert sorted(e.line for e in seen) == [8, 34]
    assert len(got) == 38
    assert src.stats()["passes"] == 2


def test_missing_file_is_a_trace_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read trace"):
        list(TraceSource([str(tmp_path / "nope.jsonl")]).batches())


def test_corrupt_gzip_is_a_trace_error(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl.gz"
    p.write_bytes(b"\x1f\x8b\x08\x00garbage-garbage")
    with pytest.raises(TraceError):
        list(TraceSource([str(p)]).batches())


def test_in_memory_attempt_falls_back_without_reporting_twice(tmp_path: Path) -> None:
    lines = [
        json.dumps({"ts": 40 - i, "stream": "memcg", "cgroup": "/a", "usage": 1}) for i in range(40)
    ]
    lines[4] = "{bad"
    lines[34] = "{worse"
    p = write_jsonl(tmp_path / "t.jsonl", lines)  # short lines: looks small enough
    seen: list[TraceError] = []
    src = TraceSource([str(p)], skip_bad=True, on_bad=seen.append, run_size=30, block_bytes=200)
    got = rows(src.batches())
    assert [e.line for e in seen] == [5, 35]
    assert [r["ts"] for r in got] == sorted(40 - i for i in range(40) if i not in (4, 34))
    assert src.stats()["passes"] == 2


def test_crlf_line_ends_and_byte_order_mark(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    p.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(disk(2)).encode()
        + b"\r\n\r\n"
        + json.dumps(disk(1)).encode()
        + b"\r\n"
    )
    assert [r["ts"] for r in rows(TraceSource([str(p)]).batches())] == [1, 2]
