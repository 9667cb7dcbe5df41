# ruff: noqa: E501, RUF005
"""Harder corners of the pinned contracts: empty-window conditions on sliding rules,
large monotonic timestamps, late (long) triggers, precedence, unit checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import MS, S, disk, ev, replay, run_cli


def test_condition_true_on_empty_sliding_window(tmp_path: Path) -> None:
    # events at 0s and 5s; count == 0 over 1s first holds at step 1.1 ([0.1, 1.1])
    # and keeps holding up to 4.9; step 5.0 holds the 5s event
    rules = "rule r\n  when count(disk.io) == 0 over 1s\n"
    r = replay(tmp_path, rules, [disk(0), disk(5 * S)])
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == 1100 * MS
    assert f["window"] == [100 * MS, 1100 * MS]
    assert f["values"] == {"count(disk.io)": 0}


def test_rate_drop_on_sliding_window(tmp_path: Path) -> None:
    # an event every 10ms from 0.01s to 1.0s, then one at 3s. rate < 5/s over 1s:
    # step 0.1 ([-0.9, 0.1]) holds 10 events; step 1.9 ([0.9, 1.9]) holds 11;
    # step 2.0 ([1.0, 2.0]) holds only the 1.0s event: rate 1/s -> fires
    rules = "rule r\n  when rate(disk.io) < 5/s over 1s\n"
    evs = [disk(k * 10 * MS) for k in range(1, 101)] + [disk(3 * S)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == 2 * S
    assert f["values"] == {"rate(disk.io)": 1.0}


def test_keyed_group_goes_quiet(tmp_path: Path) -> None:
    # sda seen at 0.5s; sdb busy until 3s. count(disk.io) == 0 over 1s by dev:
    # sda's window is empty first at step 1.6 ([0.6, 1.6])
    rules = "rule r\n  when count(disk.io) == 0 over 1s\n  by dev\n"
    evs = [disk(500 * MS, dev="sda")] + [disk(k * 100 * MS, dev="sdb") for k in range(31)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {"dev": "sda"}
    assert f["ts"] == 1600 * MS


BASE = 2**60  # a large monotonic clock value (beyond float64's exact integers)


def test_large_timestamps_trigger_rule_exact(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 2\n  within 200ms of zfs.txg.sync\n"
    evs = [
        ev("zfs.txg.sync", BASE + 1000 * MS + 1, BASE + 1190 * MS + 3, txg=1),
        disk(BASE + 800 * MS + 1),  # on the start bound
        disk(BASE + 800 * MS),  # 1ns before it
        disk(BASE + 1390 * MS + 3),  # on the end bound
        disk(BASE + 1390 * MS + 4),  # 1ns after it
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["window"] == [BASE + 800 * MS + 1, BASE + 1390 * MS + 3]
    assert f["ts"] == BASE + 1390 * MS + 3
    assert f["trigger"]["ts"] == BASE + 1000 * MS + 1
    assert f["trigger"]["end"] == BASE + 1190 * MS + 3
    assert f["values"] == {"count(disk.io)": 2}


def test_large_timestamps_sliding_rule_exact(tmp_path: Path) -> None:
    # BASE is a multiple of the tick? 2^60 % 1e8 != 0: steps are multiples of 100ms
    rules = "rule r\n  when count(disk.io) >= 1 over 1s\n"
    t0 = (BASE // (100 * MS)) * 100 * MS + 1  # 1ns after a tick
    r = replay(tmp_path, rules, [disk(t0)])
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == t0 - 1 + 100 * MS
    assert f["window"] == [t0 - 1 + 100 * MS - 1 * S, t0 - 1 + 100 * MS]


def test_realistic_uptime_timestamps_growth(tmp_path: Path) -> None:
    # 200 days of uptime in ns (~1.7e16, above 2^53): slope must still be exact-ish
    base = 200 * 86400 * S
    mib = 1 << 20
    rules = "rule r\n  when growth(memcg.usage) > 1MiB/s\n  before oom.kill within 10s\n"
    evs = [ev("memcg", base + k * S, usage=k * 3 * mib) for k in range(11)]
    evs.append(ev("oom.kill", base + 10 * S))
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.one["values"]["growth(memcg.usage)"] == pytest.approx(3 * mib, rel=1e-6)


def test_long_trigger_still_sees_history(tmp_path: Path) -> None:
    # a TXG sync lasting 60s is emitted at its end; its `before` window [0.8, 1.0]
    # is a minute in the past by then, with a steady stream of other events between
    rules = 'rule r\n  when count(disk.io where op == "read") >= 1\n  before zfs.txg.sync within 200ms\n'
    evs = [disk(900 * MS, op="read")] + [disk(k * 100 * MS, op="write") for k in range(1, 1000)]
    evs.append(ev("zfs.txg.sync", 1 * S, 61 * S))
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["window"] == [800 * MS, 1000 * MS]
    assert f["values"] == {'count(disk.io where op == "read")': 1}


def test_long_trigger_baseline(tmp_path: Path) -> None:
    # the baseline [window start - 1m, window start) of a late trigger is still there
    rules = "rule r\n  when max(disk.io.latency) >= 0\n  before zfs.txg.sync within 200ms\n"
    evs = [disk(k * S, 1000) for k in range(0, 100)] + [ev("zfs.txg.sync", 70 * S, 100 * S)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["window"] == [69800 * MS, 70 * S]
    b = f["evidence"]["disk.io.latency"]["baseline"]
    # [9.8s, 69.8s): events at 10 … 69 s
    assert b["count"] == 60


@pytest.mark.parametrize(
    "cond, n, fires",
    [
        ("count(disk.io) > 2 + 2 * 2", 6, False),
        ("count(disk.io) > 2 + 2 * 2", 7, True),
        ("count(disk.io) - 2 * 3 >= 1", 7, True),
        ("count(disk.io) / 2 * 4 == 14", 7, True),
        ("(count(disk.io) - 1) / 2 == 3", 7, True),
        ("not count(disk.io) > 5 or count(disk.io) > 100", 7, False),
        ("not count(disk.io) > 5 or count(disk.io) > 100", 5, True),
        ("count(disk.io) > 1 and count(disk.io) > 100 or count(disk.io) > 6", 7, True),
        ("count(disk.io) > 100 and (count(disk.io) > 1 or count(disk.io) > 6)", 7, False),
        ("not not count(disk.io) >= 7", 7, True),
        ("count(disk.io) >= 1e0 * 7", 7, True),
        ("count(disk.io) != 7", 7, False),
    ],
)
def test_arithmetic_and_boolean_precedence(tmp_path: Path, cond: str, n: int, fires: bool) -> None:
    rules = f"rule r\n  when {cond}\n  during fs.commit\n"
    evs = [ev("fs.commit", 1 * S, 2 * S)] + [disk(1500 * MS) for _ in range(n)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert len(r.findings) == (1 if fires else 0)


def test_division_by_empty_is_no_value(tmp_path: Path) -> None:
    rules = "rule r\n  when sum(disk.io.bytes) / count(disk.io) > 0 or count(disk.io) == 0\n  during fs.commit\n"
    r = replay(tmp_path, rules, [disk(0), ev("fs.commit", 1 * S, 2 * S)])
    assert r.rc == 0, r.err
    assert r.one["values"] == {"sum(disk.io.bytes)": None, "count(disk.io)": 0}


def test_avg_size_per_io(tmp_path: Path) -> None:
    rules = "rule r\n  when sum(disk.io.bytes) / count(disk.io) >= 48KiB\n  during fs.commit\n"
    evs = [
        ev("fs.commit", 1 * S, 2 * S),
        disk(1100 * MS, bytes=32768),
        disk(1200 * MS, bytes=65536),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert len(r.findings) == 1


@pytest.mark.parametrize(
    "cond, ok",
    [
        ("count(disk.io) > 5", True),
        ("rate(disk.io) > 100/s", True),
        ("rate(disk.io) > 100", True),
        ("sum(disk.io.bytes) > 0", True),
        ("p99(disk.io.latency) > 0", True),
        ("growth(memcg.usage) > 1MiB/s", True),
        ("growth(memcg.usage) > 1KB/s", True),
        ("avg(disk.io.bytes) >= 4KiB", True),
        ("p99(disk.io.latency) > 5 * p50(disk.io.latency over 5m)", True),
        ("p99(disk.io.latency) > 1MiB", False),
        ("sum(disk.io.bytes) > 1ms", False),
        ("sum(disk.io.bytes) > 5", False),
        ("p99(disk.io.latency) > 5", False),
        ("growth(memcg.usage) > 1ms", False),
        ("rate(disk.io) > 1MiB/s", False),
        ("count(disk.io) > 1ms", False),
        ("p99(disk.io.latency) > 1MB", False),
        ("max(memcg.usage) > 50%", False),
    ],
)
def test_unit_checks(tmp_path: Path, cond: str, ok: bool) -> None:
    p = tmp_path / "u.rules"
    stream_rule = "over 1s"
    p.write_text(f"rule r\n  when {cond}\n  {stream_rule}\n")
    r = run_cli(["check", str(p)])
    assert (r.rc == 0) == ok, r.err
    if not ok:
        assert r.rc == 2 and f"{p}:2:" in r.err


def test_define_of_expression(tmp_path: Path) -> None:
    rules = "define lat99 = p99(disk.io.latency)\nrule r\n  when lat99 > 1ms\n  during fs.commit\n"
    r = replay(tmp_path, rules, [ev("fs.commit", 1 * S, 2 * S), disk(1500 * MS, 2 * MS)])
    assert r.rc == 0, r.err
    assert list(r.one["values"].values()) == [2 * MS]


def test_define_spans_lines_and_uses_defines(tmp_path: Path) -> None:
    rules = """
define big = bytes >= 64KiB
define hot_write = op == "write"
   and big
rule r
  when count(disk.io where hot_write) == 1
  during fs.commit
"""
    evs = [
        ev("fs.commit", 1 * S, 2 * S),
        disk(1100 * MS, bytes=65536),
        disk(1200 * MS, bytes=65536, op="read"),
        disk(1300 * MS, bytes=100),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert len(r.findings) == 1


def test_define_in_trigger_where(tmp_path: Path) -> None:
    rules = 'define tank = pool == "tank"\nrule r\n  when count(disk.io) >= 1\n  within 100ms of zfs.txg.sync where tank\n'
    evs = [
        ev("zfs.txg.sync", 1 * S, 1 * S, pool="tank"),
        ev("zfs.txg.sync", 3 * S, 3 * S, pool="x"),
        disk(1 * S),
        disk(3 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.one["trigger"]["pool"] == "tank"


def test_rule_ends_at_next_define(tmp_path: Path) -> None:
    rules = 'rule a\n  when count(disk.io) >= 1 over 1s\ndefine x = op == "read"\nrule b\n  when count(disk.io where x) >= 1 over 1s\n'
    r = replay(tmp_path, rules, [disk(1 * S, op="read")])
    assert r.rc == 0, r.err
    assert sorted(f["rule"] for f in r.findings) == ["a", "b"]


def test_description_and_clause_order(tmp_path: Path) -> None:
    rules = 'rule r "Disk stalls"\n  severity info\n  cooldown 1s\n  by dev\n  when count(disk.io) >= 1 over 1s\n'
    r = replay(tmp_path, rules, [disk(1 * S)])
    assert r.rc == 0, r.err
    f = r.one
    assert f["severity"] == "info" and f["key"] == {"dev": "sda"}


def test_uppercase_keyword_is_error(tmp_path: Path) -> None:
    p = tmp_path / "u.rules"
    p.write_text("rule r\n  WHEN count(disk.io) >= 1 over 1s\n")
    r = run_cli(["check", str(p)])
    assert r.rc == 2
    assert f"{p}:2:3: error:" in r.err


def test_keyword_cannot_name_a_field_in_where(tmp_path: Path) -> None:
    p = tmp_path / "u.rules"
    p.write_text("rule r\n  when count(disk.io where every == 1) >= 1 over 1s\n")
    r = run_cli(["check", str(p)])
    assert r.rc == 2


def test_sliding_evidence_and_lost(tmp_path: Path) -> None:
    rules = "rule r\n  when max(disk.io.latency) > 1ms over 500ms\n  baseline 2s\n"
    evs = [
        disk(2 * S, 1000),
        disk(3 * S, 2000),
        disk(3500 * MS, 100_000),  # baseline [1.5, 3.5)? no: 3.5 in window
        ev("lost", 3600 * MS, count=2),
        ev("lost", 3400 * MS, count=50),
        disk(3900 * MS, 5 * MS),
        disk(4 * S, 1000),
    ]
    # first step where max > 1ms: 3.9 (event at 3.9s) -> window [3.4, 3.9]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["window"] == [3400 * MS, 3900 * MS]
    assert f["lost"] == 52
    e = f["evidence"]["disk.io.latency"]
    assert e["window"]["count"] == 2  # 3.5s and 3.9s
    assert e["baseline"]["count"] == 2  # [1.4, 3.4): 2s and 3s


@pytest.mark.parametrize(
    "clause, lo, hi",
    [
        ("during zfs.txg.sync", 5 * S, 205 * S),
        ("before zfs.txg.sync within 1s", 4 * S, 5 * S),
    ],
)
def test_long_trigger_on_busy_trace(tmp_path: Path, clause: str, lo: int, hi: int) -> None:
    # a 200s interval trigger, emitted at its end, over a busy trace (many batches)
    bg = [disk(k * 10 * MS + 1, 1 * MS) for k in range(220 * 100)]
    evs = bg + [ev("zfs.txg.sync", 5 * S, 205 * S)]
    r = replay(tmp_path, f"rule r\n  when count(disk.io) >= 1\n  {clause}\n", evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["window"] == [lo, hi]
    assert f["values"] == {"count(disk.io)": sum(1 for e in bg if lo <= e["ts"] <= hi)}
