# ruff: noqa: E501
"""Trigger windows: `within D of`, `before`, `after`, `during` (closed intervals),
trigger `where`, point and interval triggers, overlaps, out-of-order trace lines."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from .helpers import MS, S, disk, ev, replay

TXG = ev("zfs.txg.sync", 1000 * MS, 1190 * MS, pool="tank", txg=8812)

# ns offsets around the interesting bounds
PROBE_TIMES = [
    800 * MS - 1,
    800 * MS,
    900 * MS,
    1000 * MS - 1,
    1000 * MS,
    1100 * MS,
    1190 * MS,
    1190 * MS + 1,
    1300 * MS,
    1390 * MS,
    1390 * MS + 1,
]


def _count_in(lo: int, hi: int) -> int:
    return sum(1 for t in PROBE_TIMES if lo <= t <= hi)


@pytest.mark.parametrize(
    "clause, window",
    [
        ("within 200ms of zfs.txg.sync", (800 * MS, 1390 * MS)),
        ("before zfs.txg.sync within 200ms", (800 * MS, 1000 * MS)),
        ("after zfs.txg.sync within 200ms", (1190 * MS, 1390 * MS)),
        ("during zfs.txg.sync", (1000 * MS, 1190 * MS)),
    ],
)
def test_trigger_window_bounds_are_closed(
    tmp_path: Path, clause: str, window: tuple[int, int]
) -> None:
    rules = f"rule r\n  when count(disk.io) >= 1\n  {clause}\n"
    evs = [TXG] + [disk(t) for t in PROBE_TIMES] + [disk(5 * S)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["window"] == list(window)
    assert f["ts"] == window[1]
    assert f["values"] == {"count(disk.io)": _count_in(*window)}
    assert f["trigger"] == {
        "stream": "zfs.txg.sync",
        "ts": 1000 * MS,
        "end": 1190 * MS,
        "pool": "tank",
        "txg": 8812,
    }


def test_point_trigger_within(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 2\n  within 100ms of oom.kill\n"
    evs = [
        disk(4900 * MS),
        disk(5100 * MS),
        disk(5100 * MS + 1),
        ev("oom.kill", 5 * S, pid=7, comm="java"),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["window"] == [4900 * MS, 5100 * MS]
    assert f["values"] == {"count(disk.io)": 2}
    t = f["trigger"]
    assert t["stream"] == "oom.kill" and t["ts"] == 5 * S
    assert t["pid"] == 7 and t["comm"] == "java" and t["cgroup"] == "/a"
    assert t["constraint"] == "memcg"


def test_point_trigger_carries_end_equal_to_ts(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 0\n  within 100ms of oom.kill\n"
    r = replay(tmp_path, rules, [ev("oom.kill", 5 * S)])
    assert r.rc == 0, r.err
    t = r.one["trigger"]
    assert t["ts"] == 5 * S
    assert t.get("end") == 5 * S


def test_trigger_carries_optional_fields_but_not_unknown_ones(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 0\n  before oom.kill within 1s\n"
    evs = [ev("oom.kill", 5 * S, rss=4096, bogus="x")]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    t = r.one["trigger"]
    assert t["rss"] == 4096
    assert "bogus" not in t


def test_point_trigger_before_and_after(tmp_path: Path) -> None:
    rules = """
rule b
  when count(disk.io) >= 1
  before oom.kill within 1s
rule a
  when count(disk.io) >= 1
  after oom.kill within 1s
"""
    evs = [
        disk(3999 * MS),
        disk(4 * S),
        disk(4500 * MS),
        disk(5 * S),
        disk(6 * S),
        disk(6001 * MS),
        ev("oom.kill", 5 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    (b,) = r.by_rule("b")
    (a,) = r.by_rule("a")
    assert b["window"] == [4 * S, 5 * S] and b["values"] == {"count(disk.io)": 3}
    assert a["window"] == [5 * S, 6 * S] and a["values"] == {"count(disk.io)": 2}


def test_trigger_where_filters_occurrences(tmp_path: Path) -> None:
    rules = """
rule r
  when count(disk.io) >= 1
  within 100ms of zfs.txg.sync where pool == "tank" and txg >= 10
"""
    evs = [
        ev("zfs.txg.sync", 1 * S, 1100 * MS, pool="tank", txg=10),
        ev("zfs.txg.sync", 2 * S, 2100 * MS, pool="other", txg=11),
        ev("zfs.txg.sync", 3 * S, 3100 * MS, pool="tank", txg=9),
        disk(1050 * MS),
        disk(2050 * MS),
        disk(3050 * MS),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["trigger"]["txg"] == 10
    assert f["window"] == [900 * MS, 1200 * MS]


def test_aggregate_where_and_define(tmp_path: Path) -> None:
    rules = """
define hot_write = op == "write" and bytes >= 64KiB
rule r
  when count(disk.io where hot_write) >= 1 and count(disk.io where comm matches "^kw" or comm in ("pg", "my")) >= 0
  during zfs.txg.sync
"""
    evs = [
        TXG,
        disk(1010 * MS, bytes=65536, comm="kworker/1"),
        disk(1020 * MS, bytes=65535, comm="pg"),
        disk(1030 * MS, bytes=1 << 20, op="read", comm="xkw"),
        disk(1040 * MS, bytes=1 << 20, comm="my"),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.one["values"] == {
        "count(disk.io where hot_write)": 2,
        'count(disk.io where comm matches "^kw" or comm in ("pg", "my"))': 3,
    }


def test_overlapping_triggers_each_evaluated(tmp_path: Path) -> None:
    # windows [0.8, 1.3] and [1.0, 1.5] both hold the event at 1.15s
    rules = "rule r\n  when count(disk.io) >= 1\n  within 200ms of zfs.txg.sync\n"
    evs = [
        ev("zfs.txg.sync", 1000 * MS, 1100 * MS, txg=1),
        ev("zfs.txg.sync", 1200 * MS, 1300 * MS, txg=2),
        disk(1150 * MS),
        disk(1450 * MS),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted(
        (f["trigger"]["txg"], tuple(f["window"]), f["values"]["count(disk.io)"]) for f in r.findings
    )
    assert got == [(1, (800 * MS, 1300 * MS), 1), (2, (1000 * MS, 1500 * MS), 2)]


def test_at_most_once_per_trigger_occurrence(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1\n  during zfs.txg.sync\n"
    evs = [TXG] + [disk((1000 + 10 * k) * MS) for k in range(10)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.one["values"] == {"count(disk.io)": 10}


def test_condition_false_no_finding(tmp_path: Path) -> None:
    rules = "rule r\n  when p99(disk.io.latency) > 1ms\n  within 200ms of zfs.txg.sync\n"
    evs = [TXG, disk(1050 * MS, 1 * MS), disk(1060 * MS, 500 * 1000)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.findings == []


def test_spec_example_disk_stall(tmp_path: Path) -> None:
    rules = """
rule txg_sync_disk_stall
  "Disk p99 latency rises around ZFS transaction-group syncs"
  when p99(disk.io.latency) > 1ms
  within 200ms of zfs.txg.sync
  severity warning
  cooldown 1m
"""
    evs = [
        '{"ts": 1000000000, "stream": "zfs.txg.sync", "end": 1190000000, "pool": "tank", "txg": 8812}',
        '{"ts": 1000400000, "stream": "disk.io", "dev": "sda", "op": "write", "bytes": 131072, '
        '"latency": 2300000, "pid": 411, "comm": "z_wr_iss"}',
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["rule"] == "txg_sync_disk_stall"
    assert f["severity"] == "warning"
    assert f["ts"] == 1390 * MS
    assert f["window"] == [800 * MS, 1390 * MS]
    assert f["key"] == {}
    assert f["values"] == {"p99(disk.io.latency)": 2300000}
    assert f["lost"] == 0


def _ooo_events() -> list[dict]:
    return [
        ev("zfs.txg.sync", 1 * S, 1100 * MS, txg=1),
        ev("zfs.txg.sync", 3 * S, 3100 * MS, txg=2),
        disk(900 * MS, 2 * MS),
        disk(1050 * MS, 4 * MS),
        disk(1199 * MS, 3 * MS),
        disk(2950 * MS, 1 * MS),
        disk(3200 * MS, 5 * MS),
        disk(3300 * MS, 9 * MS),
        disk(6 * S, 1 * MS),
    ]


def test_out_of_order_lines(tmp_path: Path) -> None:
    rules = """
rule r
  when max(disk.io.latency) > 0 and last(disk.io.latency) > 0
  within 200ms of zfs.txg.sync
"""
    evs = _ooo_events()
    random.Random(7).shuffle(evs)
    evs.reverse()
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted(
        (
            f["trigger"]["txg"],
            f["values"]["max(disk.io.latency)"],
            f["values"]["last(disk.io.latency)"],
        )
        for f in r.findings
    )
    # txg 1: [0.8, 1.3] holds 0.9 (2ms) 1.05 (4ms) 1.199 (3ms): max 4ms, last 3ms
    # txg 2: [2.8, 3.3] holds 2.95 (1ms) 3.2 (5ms) 3.3 (9ms): max 9ms, last 9ms
    assert got == [(1, 4 * MS, 3 * MS), (2, 9 * MS, 9 * MS)]


def test_trigger_seen_after_its_window_events(tmp_path: Path) -> None:
    # a long TXG (emitted at its end, 5s) whose window starts at 0.8s: the events
    # around its start have long been seen when the trigger arrives
    rules = "rule r\n  when count(disk.io) >= 1\n  before zfs.txg.sync within 200ms\n"
    evs = [disk(900 * MS), disk(2 * S), disk(4 * S), ev("zfs.txg.sync", 1 * S, 5 * S), disk(6 * S)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["window"] == [800 * MS, 1000 * MS]
    assert f["values"] == {"count(disk.io)": 1}


def test_trigger_stream_also_in_condition_keyed(tmp_path: Path) -> None:
    # pool on both sides: each tank TXG counts the tank TXGs within 1s of it
    rules = "rule r\n  when count(zfs.txg.sync) >= 2\n  within 1s of zfs.txg.sync\n  by pool\n"
    evs = [
        ev("zfs.txg.sync", 1000 * MS, 1010 * MS, pool="tank", txg=1),
        ev("zfs.txg.sync", 1200 * MS, 1210 * MS, pool="rpool", txg=2),
        ev("zfs.txg.sync", 1500 * MS, 1510 * MS, pool="tank", txg=3),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted(
        (f["trigger"]["txg"], f["key"]["pool"], f["values"]["count(zfs.txg.sync)"])
        for f in r.findings
    )
    assert got == [(1, "tank", 2), (3, "tank", 2)]
