"""Long-lived runtime state kept compact: trigger windows as arrays, compiler pages."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import live
from engine.runtime.triggers import PendingTriggers
from tests.runtime.rt_helpers import S, batch


def _add(p: PendingTriggers, starts: list[int], ends: list[int]) -> None:
    b = batch("fs.commit", *({"ts": s, "end": e} for s, e in zip(starts, ends, strict=True)))
    p.add(np.asarray(starts), np.asarray(ends), b, [{} for _ in starts])


def test_trigger_windows_other_than_one_and_forgotten() -> None:
    """Many adds (joined into one array now and then): `others` leaves out the asked
    window and those not overlapping; `forget_before` drops those ended before."""
    p = PendingTriggers()
    want = []
    for i in range(200):  # more adds than chunks kept apart
        s = [i * 10 * S, i * 10 * S + S]
        e = [x + 2 * S for x in s]
        _add(p, s, e)
        want += list(zip(s, e, strict=True))
    assert p.windows == [(s, e, q) for q, (s, e) in enumerate(want)]
    starts, ends = p.others(seq=20, lo=100 * S, hi=112 * S)
    # seq 20 is (100 s, 102 s); overlapping [100 s, 112 s]: 101-103, 110-112, 111-113
    assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == [
        (101 * S, 103 * S),
        (110 * S, 112 * S),
        (111 * S, 113 * S),
    ]
    p.forget_before(1000 * S)
    assert [w[:2] for w in p.windows] == [(s, e) for s, e in want if e >= 1000 * S]
    assert p.windows[0][2] == want.index((1000 * S, 1002 * S))  # seqs kept with them
    assert len(p.pop_due(float("inf"))) == 400  # occurrences are not windows


_SMAPS = """\
7f0000000000-7f0000100000 r--p 00000000 fe:00 1 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
Rss:                1024 kB
Anonymous:             0 kB
7f0000100000-7f0003000000 r-xp 00100000 fe:00 1 /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
Size:              48128 kB
Rss:               40000 kB
Anonymous:             0 kB
7f0003000000-7f0003100000 r-xp 00000000 fe:00 2 /usr/lib/llvm-14/lib/libclang-cpp.so.14
Rss:                 512 kB
Anonymous:             8 kB
7f0004000000-7f0004200000 r-xp 00000000 fe:00 3 /usr/lib/libpython3.11.so.1.0
Rss:                2048 kB
Anonymous:             0 kB
7f0005000000-7f0005400000 r-xp 00000000 fe:00 4 /usr/lib/x86_64-linux-gnu/libbcc.so.0
Rss:                4096 kB
Anonymous:             0 kB
7f0006000000-7f0006100000 rw-p 00000000 00:00 0
Rss:                1024 kB
Anonymous:          1024 kB
"""


def test_compiler_code_only_clean_executable_compiler_mappings(tmp_path: Path) -> None:
    """Only r-x mappings of LLVM/clang/bcc with no copied-on-write page are dropped:
    never data, never another library's code, never a mapping with private pages."""
    f = tmp_path / "smaps"
    f.write_text(_SMAPS)
    assert live._compiler_code(str(f)) == [
        (0x7F0000100000, 0x7F0003000000 - 0x7F0000100000),
        (0x7F0005000000, 0x400000),
    ]
    assert live._compiler_code(str(tmp_path / "absent")) == []


def test_compiler_code_of_this_process_is_page_aligned() -> None:
    for start, length in live._compiler_code():
        assert start % 4096 == 0 and length % 4096 == 0 and length > 0


def test_cstrings_share_one_str_per_value_across_batches() -> None:
    from probes import decode

    col = np.array([b"bash", b"kworker/0:1", b"bash", b"", b"a\0junk"], dtype="S16")
    a, b = decode.cstrings(col), decode.cstrings(col[::-1].copy())
    assert a.tolist() == ["bash", "kworker/0:1", "bash", "", "a"]
    assert a[0] is a[2] and a[0] is b[2]  # one object per value, whatever the batch
    assert decode.cstrings(col[:0]).shape == (0,)


def test_cstrings_cache_stays_bounded() -> None:
    from probes import decode

    decode._str_cache.clear()
    many = np.array([f"c{i}".encode() for i in range(decode._STR_CACHE_MAX + 10)], dtype="S16")
    out = decode.cstrings(many)
    assert out.tolist() == [f"c{i}" for i in range(many.shape[0])]
    assert len(decode._str_cache) <= decode._STR_CACHE_MAX


def test_long_over_is_not_lengthened_by_the_evidence_baseline() -> None:
    """The evidence baseline ends where the rule's window starts: a 10m `over`
    aggregate read from rows keeps 10m of rows, not 10m + the 60s baseline; a
    baseline longer than every `over` still sets how long rows stay. (A 10m
    percentile is sketched and keeps no rows: test_sketch.py.)"""
    from engine.dsl import compile_text
    from engine.runtime.evaluator import Evaluator

    tick, margin = 100_000_000, 30 * S
    long_over = compile_text(
        "rule r when p99(sched.runq.latency) > 10 * avg(sched.runq.latency over 10m)"
        " over 5s by comm"
    )
    ev = Evaluator(long_over, tick=tick, margin=margin)
    assert ev._retention["sched.runq"] == 600 * S + tick + margin
    long_base = compile_text("rule r when p99(sched.runq.latency) > 1ms over 5s baseline 20m")
    ev = Evaluator(long_base, tick=tick, margin=margin)
    assert ev._retention["sched.runq"] == 5 * S + tick + 1200 * S + margin
