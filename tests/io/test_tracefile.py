"""record -> replay round trip: what TraceWriter writes, TraceSource reads back."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.batch import Batch
from engine.errors import TraceError
from engine.sources import TraceSource
from engine.tracefile import TraceWriter

from .helpers import disk, memcg, rows, txg


def test_writes_ints_as_ints_and_omits_absent_optionals(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl"
    with TraceWriter(p) as w:
        w.write(Batch.from_rows("disk.io", [disk(5, latency=2_300_000)]))
        w.write(Batch.from_rows("zfs.txg.sync", [txg(1, 9)]))
    lines = p.read_text().splitlines()
    assert lines[0] == (
        '{"ts":5,"stream":"disk.io","dev":"sda","op":"write","bytes":4096,'
        '"latency":2300000,"pid":1,"comm":"x"}'
    )
    assert json.loads(lines[1]) == {
        "ts": 1,
        "stream": "zfs.txg.sync",
        "end": 9,
        "pool": "tank",
        "txg": 1,
    }


def test_gz_name_writes_gzip(tmp_path: Path) -> None:
    p = tmp_path / "t.jsonl.gz"
    with TraceWriter(p) as w:
        w.write(Batch.from_rows("memcg", [memcg(1, limit=10)]))
    assert json.loads(gzip.decompress(p.read_bytes())) == memcg(1, limit=10)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("name", ["full.jsonl", "full.jsonl.gz"])
def test_full_disk_is_a_trace_error(tmp_path: Path, name: str) -> None:
    link = tmp_path / name
    link.symlink_to("/dev/full")
    w = TraceWriter(link)
    w.write(Batch.from_rows("disk.io", [disk(5)]))  # buffered: no error yet
    with pytest.raises(TraceError, match="cannot write trace: No space left"):
        w.close()


_ev = st.one_of(
    st.builds(
        lambda t, lat, q: disk(t, latency=lat, queue=q),
        st.integers(0, 2**53),
        st.integers(0, 2**40),
        st.none() | st.integers(0, 10**9),
    ),
    st.builds(
        lambda t, u, lim, cg: memcg(t, usage=u, limit=lim, cgroup=cg),
        st.integers(-(2**40), 2**53),
        st.integers(0, 2**50),
        st.none() | st.integers(0, 9),
        st.text(min_size=1, max_size=8),
    ),
    st.builds(
        lambda t, d, n: txg(t, t + d, txg_=n),
        st.integers(0, 2**50),
        st.integers(0, 10**9),
        st.integers(0, 2**31),
    ),
)


@settings(max_examples=50, deadline=None)
@given(events=st.lists(_ev, max_size=40), gz=st.booleans())
def test_round_trip(events: list[dict[str, Any]], gz: bool) -> None:
    want = [{k: v for k, v in e.items() if v is not None} for e in events]
    want.sort(key=lambda e: e.get("end", e["ts"]))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / ("t.jsonl.gz" if gz else "t.jsonl")
        with TraceWriter(p) as w:
            for e in want:
                w.write(Batch.from_rows(e["stream"], [e]))
        got = rows(TraceSource([str(p)]).batches())
    assert got == want


@settings(max_examples=50, deadline=None)
@given(
    rows_=st.lists(
        st.tuples(st.none() | st.integers(0, 10**12), st.text(max_size=6), st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_one_batch_mixed_absent_fields_keeps_row_order(
    rows_: list[tuple[int | None, str, bool]],
) -> None:
    # several absent-field patterns in one batch, strings with %, quotes, non-ASCII
    events = [
        disk(i, queue=q, comm=c + '%d"é', dev="sd%s" if odd else "nvme0n1")
        for i, (q, c, odd) in enumerate(rows_)
    ]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.jsonl"
        with TraceWriter(p) as w:
            w.write(Batch.from_rows("disk.io", events))
        lines = p.read_text(encoding="utf-8").split("\n")  # not splitlines: "\x85" is no end
        assert lines.pop() == ""
        assert [json.loads(ln) for ln in lines] == [
            {k: v for k, v in e.items() if v is not None} for e in events
        ]
