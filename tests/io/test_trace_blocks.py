"""Blocks of raw text: exact line numbers, resuming at a Pos, the unsplit fast path.

The fast path decodes a block without splitting it into lines; these check that
what it accepts is exactly what the line-by-line decode accepts, with the same
line numbers, and that bounded mode resumes reading where the first run stopped.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.errors import TraceError
from engine.sources import TraceSource
from engine.tracedecode import Pos, decode_block, line_count, read_blocks, scan_emit

from .helpers import disk, emit_time, memcg, rows, txg, write_jsonl


def _line(ts: int, **kw: Any) -> bytes:
    return json.dumps(disk(ts, **kw)).encode()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    final_newline=st.booleans(),
    bom=st.booleans(),
    gz=st.booleans(),
    block_bytes=st.integers(1, 200),
)
def test_blocks_cover_the_text_and_resume_at_any_pos(
    lines: list[bytes], final_newline: bool, bom: bool, gz: bool, block_bytes: int
) -> None:
    text = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    raw = (b"\xef\xbb\xbf" if bom else b"") + text
    assume(not text.startswith(b"\xef\xbb\xbf") and not raw.startswith(b"\x1f\x8b"))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.jsonl"
        p.write_bytes(gzip.compress(raw) if gz else raw)
        blocks = list(read_blocks(str(p), block_bytes))
        assert b"".join(t for _, t, _ in blocks) == text
        line, offset = 1, 3 if bom else 0
        for k, (first, t, nxt) in enumerate(blocks):
            assert first == line
            assert t.endswith(b"\n") or k == len(blocks) - 1
            assert nxt == (offset + len(t), first + line_count(t))
            offset, line = nxt
        for k, (_, _, nxt) in enumerate(blocks):
            again = list(read_blocks(str(p), block_bytes, nxt))
            assert b"".join(t for _, t, _ in again) == b"".join(t for _, t, _ in blocks[k + 1 :])
            assert [f for f, _, _ in again[:1]] == [f for f, _, _ in blocks[k + 1 : k + 2]]


def test_a_line_longer_than_a_block_is_one_line(tmp_path: Path) -> None:
    long = _line(2, comm="x" * 5000)
    p = tmp_path / "t.jsonl"
    p.write_bytes(_line(1) + b"\n" + long + b"\n" + _line(3))
    blocks = list(read_blocks(str(p), 100))
    assert [(f, t.count(b"\n")) for f, t, _ in blocks] == [(1, 1), (2, 1), (3, 0)]
    assert blocks[1][1] == long + b"\n"
    assert blocks[-1][2] == Pos(p.stat().st_size, 4)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_line(2) + b"," + _line(3), "not valid JSON"),
        (_line(2) + b" " + _line(3), "not valid JSON"),
        (_line(2) + _line(3), "not valid JSON"),
        (b"[" + _line(2) + b"]", "expected a JSON object"),
    ],
    ids=["comma", "space", "glued", "array"],
)
def test_two_records_on_a_line_are_one_bad_line(bad: bytes, message: str) -> None:
    text = b"\n".join([_line(1), bad, _line(4)]) + b"\n"
    seen: list[TraceError] = []
    d = decode_block("t.jsonl", 0, 10, text, on_bad=seen.append, columns=None)
    assert [(e.line, message in e.message) for e in seen] == [(11, True)]
    assert d.count == 2 and d.bad == 1
    assert d.parts["disk.io"].batch.ts.tolist() == [1, 4]
    assert d.parts["disk.io"].seq.tolist() == [10, 12]
    assert scan_emit(text, 10).tolist() == [1, 4]


def test_a_record_split_over_two_lines_is_bad_on_both() -> None:
    whole = _line(2)
    text = b"\n".join([_line(1), whole[:30], whole[30:], _line(4)]) + b"\n"
    seen: list[TraceError] = []
    d = decode_block("t.jsonl", 0, 1, text, on_bad=seen.append, columns=None)
    assert [e.line for e in seen] == [2, 3]
    assert d.parts["disk.io"].seq.tolist() == [1, 4]


def test_blank_comment_and_crlf_lines_keep_line_numbers() -> None:
    text = b"\r\n".join([_line(1), b"", b"# note", b"   ", _line(2), b"\t" + _line(3)]) + b"\r\n"
    d = decode_block("t.jsonl", 0, 5, text, on_bad=None, columns=None)
    assert d.count == 3 and d.bad == 0
    assert d.parts["disk.io"].seq.tolist() == [5, 9, 10]
    assert d.line_emit.tolist() == [1, 2, 3]
    assert scan_emit(text, 5).tolist() == [1, 2, 3]


def test_fast_path_builds_the_same_columns_as_the_line_path() -> None:
    evs = [disk(1, queue=5), memcg(2), txg(0, 3), disk(4), memcg(5, limit=9), disk(6, queue=2**53)]
    good = b"\n".join(json.dumps(e).encode() for e in evs) + b"\n"
    fast = decode_block("t.jsonl", 0, 1, good, on_bad=None, columns=None)
    slow = decode_block("t.jsonl", 0, 1, good + b"{}\n", on_bad=None, columns=None)  # 1 bad line
    assert (fast.count, slow.count, slow.bad) == (6, 6, 1)
    assert fast.line_emit.tolist() == slow.line_emit.tolist() == [1, 2, 3, 4, 5, 6]
    for s, part in fast.parts.items():
        other = slow.parts[s]
        assert part.seq.tolist() == other.seq.tolist()
        assert rows([part.batch]) == rows([other.batch])
    assert rows([fast.parts["disk.io"].batch])[2]["queue"] == 2**53
    assert "queue" not in rows([fast.parts["disk.io"].batch])[1]


def _write(d: str, name: str, events: list[dict[str, Any]], gz: bool) -> str:
    return str(write_jsonl(Path(d) / name, events, gz=gz))


_event = st.one_of(
    st.builds(lambda t, pid: disk(t, pid=pid), st.integers(0, 60), st.integers(0, 9)),
    st.builds(lambda t, u: memcg(t, usage=u), st.integers(0, 60), st.integers(0, 9)),
    st.builds(lambda t, d: txg(t, t + d), st.integers(0, 60), st.integers(0, 20)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(st.lists(_event, max_size=50), min_size=1, max_size=3),
    swaps=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 49)), max_size=2),
    run_size=st.integers(1, 60),
    block_bytes=st.integers(50, 2000),
    gz=st.booleans(),
    interleave=st.sampled_from(["ordered", "slices"]),
)
def test_recordings_in_emission_order_replay_as_a_stable_sort(
    files: list[list[dict[str, Any]]],
    swaps: list[tuple[int, int]],
    run_size: int,
    block_bytes: int,
    gz: bool,
    interleave: Any,
) -> None:
    """Files sorted by emission time (the usual recording), now and then with two
    neighbours swapped: in memory, and in bounded mode with the first run as read."""
    files = [sorted(f, key=emit_time) for f in files]
    for fi, at in swaps:
        f = files[fi % len(files)]
        if at + 1 < len(f):
            f[at], f[at + 1] = f[at + 1], f[at]
    with tempfile.TemporaryDirectory() as d:
        paths = [_write(d, f"{i}.jsonl", f, gz) for i, f in enumerate(files)]
        src = TraceSource(
            paths,
            run_size=run_size,
            block_bytes=block_bytes,
            batch_size=5,
            interleave=interleave,
            spill_dir=d,
        )
        got = rows(src.batches())
    want = sorted((e for f in files for e in f), key=emit_time)
    if interleave == "ordered":
        assert got == want
    else:
        for s in ("disk.io", "memcg", "zfs.txg.sync"):
            assert [r for r in got if r["stream"] == s] == [e for e in want if e["stream"] == s]
    assert src.stats()["events"] == len(want)


def test_first_run_spanning_files_out_of_order(tmp_path: Path) -> None:
    """Each file is in order, the first run holds all of the first and some of the
    second, which starts before the first ends: that run is not in order as read."""
    a = write_jsonl(tmp_path / "a.jsonl", [disk(t) for t in range(0, 40, 2)])
    b = write_jsonl(tmp_path / "b.jsonl", [disk(t) for t in range(1, 300, 2)])
    src = TraceSource([str(a), str(b)], run_size=60, block_bytes=500, batch_size=16)
    got = [r["ts"] for r in rows(src.batches())]
    assert got == sorted([*range(0, 40, 2), *range(1, 300, 2)])
    assert src.stats()["passes"] == 2 and src.stats()["spilled_runs"] == 0


def test_sorted_first_run_then_unsorted_rest_spills(tmp_path: Path) -> None:
    ev = [disk(t) for t in range(200)] + [disk((t * 37) % 200) for t in range(200)]
    p = write_jsonl(tmp_path / "t.jsonl", ev)
    seen: list[TraceError] = []
    src = TraceSource(
        [str(p)], run_size=50, block_bytes=400, spill_dir=str(tmp_path), on_bad=seen.append
    )
    got = [r["ts"] for r in rows(src.batches())]
    assert got == sorted(e["ts"] for e in ev)
    assert src.stats()["spilled_runs"] >= 4 and not seen
