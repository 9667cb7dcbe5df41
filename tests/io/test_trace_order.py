"""Emission order: any line order, several files with ties, gzip, spill and merge."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.sources import TraceSource
from engine.tracedecode import line_count

from .helpers import disk, emit_time, memcg, rows, txg, write_jsonl


def _expected(files: list[list[dict[str, Any]]], streams: set[str] | None = None) -> list[Any]:
    """Stable sort by emission time: ties keep file order, then line order."""
    flat = [e for f in files for e in f if streams is None or e["stream"] in streams]
    return [(e["stream"], e["ts"], e.get("end")) for e in sorted(flat, key=emit_time)]


def _got(src: TraceSource) -> list[Any]:
    return [(r["stream"], r["ts"], r.get("end")) for r in rows(src.batches())]


def test_out_of_order_lines_come_out_in_emission_order(tmp_path: Path) -> None:
    ev = [disk(300), txg(100, 250), memcg(50), disk(200), disk(250)]
    p = write_jsonl(tmp_path / "t.jsonl", ev)
    assert _got(TraceSource([str(p)])) == [
        ("memcg", 50, None),
        ("disk.io", 200, None),
        ("zfs.txg.sync", 100, 250),
        ("disk.io", 250, None),
        ("disk.io", 300, None),
    ]


def test_ties_keep_file_then_line_order(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [disk(10, pid=1), memcg(10, usage=1), disk(10, pid=2)])
    b = write_jsonl(tmp_path / "b.jsonl.gz", [memcg(10, usage=2), disk(5, pid=3)], gz=True)
    got = rows(TraceSource([str(a), str(b)]).batches())
    assert [(r["stream"], r.get("pid"), r.get("usage")) for r in got] == [
        ("disk.io", 3, None),
        ("disk.io", 1, None),
        ("memcg", None, 1),
        ("disk.io", 2, None),
        ("memcg", None, 2),
    ]


def test_gzip_is_detected_by_magic_not_name(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "plain-name.jsonl", [disk(2), disk(1)], gz=True)
    assert [r["ts"] for r in rows(TraceSource([str(p)]).batches())] == [1, 2]


def test_ordered_batches_follow_global_order_and_size_bound(tmp_path: Path) -> None:
    ev = [disk(t) if t % 3 else memcg(t) for t in range(100)]
    p = write_jsonl(tmp_path / "t.jsonl", ev)
    batches = list(TraceSource([str(p)], batch_size=4).batches())
    emit = np.concatenate([b.emit for b in batches])
    assert (np.diff(emit) >= 0).all()
    assert max(len(b) for b in batches) <= 4
    assert all(len(b.columns["dev"]) == len(b) for b in batches if b.stream == "disk.io")


def test_stream_filter_skips_columns_and_batches(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "t.jsonl", [disk(1), memcg(2), txg(0, 3)])
    got = _got(TraceSource([str(p)], streams={"memcg"}))
    assert got == [("memcg", 2, None)]


def test_slices_progress_moves_per_piece(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "t.jsonl", [disk(t) if t % 2 else memcg(t) for t in range(10)])
    src = TraceSource([str(p)], interleave="slices")
    seen = []
    for b in src.batches():
        seen.append((b.stream, len(b), src.progress()))
    assert sorted(s for s, _, _ in seen) == ["disk.io", "memcg"]
    assert src.progress() == 8  # one below the last emission time


def test_already_sorted_big_trace_streams_without_spilling(tmp_path: Path) -> None:
    ev = [disk(t) if t % 5 else txg(t - 3, t) for t in range(5, 2000)]
    p = write_jsonl(tmp_path / "t.jsonl", ev)
    src = TraceSource([str(p)], run_size=100, block_bytes=2000)
    assert _got(src) == _expected([ev])
    assert src.stats()["spilled_runs"] == 0
    assert src.stats()["passes"] == 2


def test_unsorted_big_trace_spills_runs_and_merges(tmp_path: Path) -> None:
    ev = [disk((t * 7919) % 1000) for t in range(1000)]
    p = write_jsonl(tmp_path / "t.jsonl", ev)
    src = TraceSource([str(p)], run_size=64, block_bytes=1500, spill_dir=str(tmp_path))
    assert _got(src) == _expected([ev])
    assert src.stats()["spilled_runs"] >= 10
    assert src.stats()["events"] == 1000


_event = st.one_of(
    st.builds(lambda t, pid: disk(t, pid=pid), st.integers(0, 50), st.integers(0, 9)),
    st.builds(
        lambda t, u: memcg(t, usage=u, limit=None if u % 2 else 5),
        st.integers(0, 50),
        st.integers(0, 9),
    ),
    st.builds(lambda t, d: txg(t, t + d), st.integers(0, 50), st.integers(0, 20)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(st.lists(_event, max_size=60), min_size=1, max_size=3),
    run_size=st.integers(1, 40),
    block_bytes=st.integers(50, 3000),
    interleave=st.sampled_from(["ordered", "slices"]),
)
def test_any_input_replays_as_a_stable_sort(
    files: list[list[dict[str, Any]]], run_size: int, block_bytes: int, interleave: Any
) -> None:
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, f in enumerate(files):
            p = Path(d) / f"{i}.jsonl"
            p.write_text("".join(json.dumps(e) + "\n" for e in f))
            paths.append(str(p))
        src = TraceSource(
            paths, run_size=run_size, block_bytes=block_bytes, batch_size=7, interleave=interleave
        )
        got = rows(src.batches())
    want = [
        {k: v for k, v in e.items() if v is not None}
        for e in sorted((e for f in files for e in f), key=emit_time)
    ]
    if interleave == "ordered":
        assert got == want
    else:  # per stream the same order; streams overlap within a slice
        for s in ("disk.io", "memcg", "zfs.txg.sync"):
            assert [r for r in got if r["stream"] == s] == [e for e in want if e["stream"] == s]


def test_stray_fields_do_not_fool_the_order_check(tmp_path: Path) -> None:
    """A point event with a non-integer `end` (ignored by the catalog) and a line
    the full decode rejects must not make an unsorted file look sorted."""
    lines = [json.dumps(disk(t)) for t in range(100, 400)]
    lines[150] = json.dumps(disk(5, end="soon"))
    lines[200] = json.dumps(disk(2**64))
    p = write_jsonl(tmp_path / "t.jsonl", lines)
    src = TraceSource([str(p)], run_size=20, block_bytes=1000, skip_bad=True)
    got = [r["ts"] for r in rows(src.batches())]
    assert got == sorted(got) and got[0] == 5 and len(got) == 299


def test_no_line_is_decoded_twice(tmp_path: Path, monkeypatch: Any) -> None:
    import engine.sources as sources

    decoded: list[int] = []
    real = sources.decode_block

    def counting(path: str, i: int, first: int, text: bytes, **kw: Any) -> Any:
        decoded.extend(range(first, first + line_count(text)))
        return real(path, i, first, text, **kw)

    monkeypatch.setattr(sources, "decode_block", counting)
    a = write_jsonl(tmp_path / "a.jsonl", [disk(t) for t in range(0, 3000, 3)])
    b = write_jsonl(tmp_path / "b.jsonl", [disk(t) for t in range(2000, 1000, -1)])
    src = TraceSource([str(a), str(b)], run_size=300, block_bytes=4000)
    got = [r["ts"] for r in rows(src.batches())]
    assert got == sorted([*range(0, 3000, 3), *range(2000, 1000, -1)])
    assert sorted(decoded) == sorted([*range(1, 1001), *range(1, 1001)])
    assert src.stats()["passes"] == 2 and src.stats()["spilled_runs"] >= 3
