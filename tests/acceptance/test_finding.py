# ruff: noqa: E501
"""The finding's pinned keys (events.md, Findings): canonical value keys, evidence
histograms and baseline, lost, period only for periodic rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import MS, S, disk, ev, pct, replay

PINNED = {
    "rule",
    "severity",
    "ts",
    "window",
    "key",
    "values",
    "trigger",
    "evidence",
    "summary",
    "lost",
}


def test_pinned_keys_present_and_types(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1 over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S)])
    f = r.one
    assert set(f) >= PINNED
    assert "period" not in f
    assert isinstance(f["ts"], int) and all(isinstance(x, int) for x in f["window"])
    assert f["trigger"] is None
    assert f["lost"] == 0


def test_canonical_value_keys(tmp_path: Path) -> None:
    rules = """
define hot_write = op == "write" and bytes >= 64KiB
rule r
  when   p90(  disk.io.latency   # the latency
             where   hot_write ) >= 0
     and percentile( disk.io.latency where op ==   "write"  over 1s ,  99.9 ) >= 0
     and count(disk.io
        where comm in ( "a" , "b" ) ) >= 0
     and predict(disk.io.latency over 2s, 5s) >= 0
  during zfs.txg.sync
"""
    evs = [
        ev("zfs.txg.sync", 1 * S, 2 * S),
        disk(1100 * MS, bytes=65536),
        disk(1200 * MS, bytes=65536),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert set(r.one["values"]) == {
        "p90(disk.io.latency where hot_write)",
        'percentile(disk.io.latency where op == "write" over 1s, 99.9)',
        'count(disk.io where comm in ("a", "b"))',
        "predict(disk.io.latency over 2s, 5s)",
    }


def test_evidence_histogram_buckets(tmp_path: Path) -> None:
    # latencies 0, 1, 3, 1000, 1500 ns: buckets [0,1) [1,2) [2,4) then the empty
    # [4,8) … [256,512) kept (only empty END buckets are left out), [512,1024) [1024,2048)
    rules = "rule r\n  when max(disk.io.latency) >= 0\n  during zfs.txg.sync\n"
    evs = [ev("zfs.txg.sync", 10 * S, 11 * S)] + [
        disk(10 * S + k * MS, lat) for k, lat in enumerate([0, 1, 3, 1000, 1500])
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    ev_ = r.one["evidence"]
    assert set(ev_) == {"disk.io.latency"}
    w = ev_["disk.io.latency"]["window"]
    expected = [[0, 1, 1], [1, 2, 1], [2, 4, 1]]
    expected += [[2**k, 2 ** (k + 1), 0] for k in range(2, 9)]
    expected += [[512, 1024, 1], [1024, 2048, 1]]
    assert w["buckets"] == expected
    assert w["count"] == 5
    assert w["min"] == 0 and w["max"] == 1500
    assert w["p50"] == pct(3)
    assert w["p90"] == pct(1500)
    assert w["p99"] == pct(1500)
    b = ev_["disk.io.latency"]["baseline"]
    assert b == {
        "count": 0,
        "min": None,
        "max": None,
        "p50": None,
        "p90": None,
        "p99": None,
        "buckets": [],
    }


def test_evidence_buckets_exact_powers(tmp_path: Path) -> None:
    # 2^20 ns goes to [2^20, 2^21), 2^20 - 1 to [2^19, 2^20)
    rules = "rule r\n  when max(disk.io.latency) >= 0\n  during zfs.txg.sync\n"
    evs = [
        ev("zfs.txg.sync", 10 * S, 11 * S),
        disk(10 * S, 2**20 - 1),
        disk(10 * S, 2**20),
        disk(10 * S, 2**20),
    ]
    r = replay(tmp_path, rules, evs)
    w = r.one["evidence"]["disk.io.latency"]["window"]
    assert w["buckets"] == [[2**19, 2**20, 1], [2**20, 2**21, 2]]


def test_evidence_baseline_leaves_out_other_trigger_windows(tmp_path: Path) -> None:
    # trigger at 5.0s: window [4.9, 5.1]; baseline 1s -> [3.9, 4.9), minus the other
    # trigger's window [4.4, 4.6]
    rules = "rule r\n  when max(disk.io.latency) >= 0\n  within 100ms of oom.kill\n  baseline 1s\n"
    evs = [
        disk(3850 * MS, 1000),  # before the baseline
        disk(3900 * MS, 2000),  # baseline (closed start)
        disk(4400 * MS, 4000),  # inside the other trigger window: left out
        disk(4500 * MS, 8000),  # inside the other trigger window: left out
        disk(4700 * MS, 16000),  # baseline
        disk(4900 * MS, 32000),  # window (baseline is open at the window start)
        disk(5000 * MS, 64000),  # window
        ev("oom.kill", 4500 * MS, pid=1),
        ev("oom.kill", 5 * S, pid=2),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    (f,) = [f for f in r.findings if f["trigger"]["pid"] == 2]
    e = f["evidence"]["disk.io.latency"]
    assert e["window"]["count"] == 2
    # 32000 in [16384, 32768), 64000 in [32768, 65536)
    assert e["window"]["buckets"] == [[16384, 32768, 1], [32768, 65536, 1]]
    b = e["baseline"]
    assert b["count"] == 2
    assert b["min"] == 2000 and b["max"] == 16000
    # 2000 in [1024, 2048); 16000 in [8192, 16384)
    assert b["buckets"] == [[1024, 2048, 1], [2048, 4096, 0], [4096, 8192, 0], [8192, 16384, 1]]
    # the trigger at 4.5s: window [4.4, 4.6] holds 4.4 and 4.5; baseline [3.4, 4.4)
    # holds 3.85 and 3.9
    (g,) = [f for f in r.findings if f["trigger"]["pid"] == 1]
    e = g["evidence"]["disk.io.latency"]
    assert e["window"]["count"] == 2 and e["window"]["min"] == 4000
    assert e["baseline"]["count"] == 2 and e["baseline"]["max"] == 2000


def test_baseline_leaves_out_later_overlapping_trigger_window(tmp_path: Path) -> None:
    # trigger A at 5s (window [4.9, 5.1], baseline [3.9, 4.9)); trigger B at 4.85s
    # (window [4.75, 4.95]) overlaps A's baseline end: 4.8 is left out of A's baseline
    rules = "rule r\n  when max(disk.io.latency) >= 0\n  within 100ms of oom.kill\n  baseline 1s\n"
    evs = [
        disk(4000 * MS, 1000),
        disk(4800 * MS, 8000),
        disk(5 * S, 64000),
        ev("oom.kill", 4850 * MS, pid=1),
        ev("oom.kill", 5 * S, pid=2),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    (f,) = [f for f in r.findings if f["trigger"]["pid"] == 2]
    b = f["evidence"]["disk.io.latency"]["baseline"]
    assert b["count"] == 1 and b["max"] == 1000


def test_evidence_baseline_same_key_and_where(tmp_path: Path) -> None:
    rules = """
rule r
  when p99(disk.io.latency where op == "write") > 1ms
  after fs.commit within 1s
  by dev
"""
    evs = [
        disk(5500 * MS, 3000, dev="sda", op="write"),  # baseline of sda
        disk(5600 * MS, 3000, dev="sda", op="read"),  # other filter
        disk(5700 * MS, 3000, dev="sdb", op="write"),  # other key
        ev("fs.commit", 6 * S, 6 * S, dev="sda"),
        disk(6500 * MS, 2 * MS, dev="sda", op="write"),
        disk(6600 * MS, 9 * MS, dev="sda", op="read"),
        disk(6700 * MS, 9 * MS, dev="sdb", op="write"),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {"dev": "sda"}
    e = f["evidence"]["disk.io.latency"]
    assert e["window"]["count"] == 1 and e["window"]["max"] == 2 * MS
    assert e["baseline"]["count"] == 1 and e["baseline"]["buckets"] == [[2048, 4096, 1]]


def test_evidence_clause_selects_fields(tmp_path: Path) -> None:
    rules = """
rule r
  when count(disk.io) >= 1 and max(disk.io.latency) > 0
  during zfs.txg.sync
  evidence disk.io.bytes, disk.io.queue
"""
    evs = [ev("zfs.txg.sync", 1 * S, 2 * S), disk(1500 * MS, bytes=4096, queue=3)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    e = r.one["evidence"]
    assert set(e) == {"disk.io.bytes", "disk.io.queue"}
    assert e["disk.io.bytes"]["window"]["buckets"] == [[4096, 8192, 1]]
    assert e["disk.io.queue"]["window"]["buckets"] == [[2, 4, 1]]


def test_count_only_condition_has_no_evidence_fields(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1\n  during zfs.txg.sync\n"
    evs = [ev("zfs.txg.sync", 1 * S, 2 * S), disk(1500 * MS)]
    r = replay(tmp_path, rules, evs)
    assert r.one["evidence"] == {}


def test_default_evidence_every_aggregated_field(tmp_path: Path) -> None:
    rules = """
rule r
  when count(disk.io) >= 1 and max(disk.io.latency) > 0 and sum(disk.io.bytes) > 0
  during zfs.txg.sync
"""
    evs = [ev("zfs.txg.sync", 1 * S, 2 * S), disk(1500 * MS, bytes=4096)]
    r = replay(tmp_path, rules, evs)
    assert set(r.one["evidence"]) == {"disk.io.latency", "disk.io.bytes"}


def test_lost_sums_lost_events_inside_window(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1\n  within 100ms of oom.kill\n"
    evs = [
        ev("lost", 4899 * MS, count=100),
        ev("lost", 4900 * MS, count=3),
        ev("lost", 5050 * MS, count=4, probe="oom"),
        ev("lost", 5100 * MS, count=5),
        ev("lost", 5101 * MS, count=1000),
        disk(5 * S),
        ev("oom.kill", 5 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.one["lost"] == 12


def test_ts_is_window_end(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1\n  after zfs.txg.sync within 300ms\n"
    evs = [ev("zfs.txg.sync", 1 * S, 1500 * MS), disk(1600 * MS)]
    r = replay(tmp_path, rules, evs)
    f = r.one
    assert f["window"] == [1500 * MS, 1800 * MS]
    assert f["ts"] == 1800 * MS


@pytest.mark.parametrize(
    "lat,unit_text",
    [
        (1500 * 1000, "1500us"),
        (1500 * 1000, "1.5ms"),
        (1500 * 1000, "1500µs"),
        (1500 * 1000, "1500μs"),
        (1500 * 1000, "1500000ns"),
    ],
)
def test_duration_units(tmp_path: Path, lat: int, unit_text: str) -> None:
    rules = f"rule r\n  when max(disk.io.latency) >= {unit_text} and max(disk.io.latency) <= {unit_text}\n  over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S, lat)])
    assert r.rc == 0, r.err
    assert len(r.findings) == 1


@pytest.mark.parametrize(
    "text,ok",
    [
        ("1MB", 1_000_000),
        ("1MiB", 1 << 20),
        ("64KiB", 65536),
        ("2KB", 2000),
        ("1GB", 10**9),
        ("1GiB", 1 << 30),
        ("12B", 12),
    ],
)
def test_size_units(tmp_path: Path, text: str, ok: int) -> None:
    rules = f"rule r\n  when sum(disk.io.bytes) == {text}\n  over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S, bytes=ok), disk(5 * S, bytes=ok + 1)])
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1 * S]


def test_rate_and_percent_units(tmp_path: Path) -> None:
    rules = """
rule r
  when rate(disk.io) >= 20/s and rate(disk.io) > 19 and count(disk.io where op == "read") / count(disk.io) >= 50%
  over 500ms
"""
    evs = [disk(1 * S + k * MS, op="read" if k % 2 else "write") for k in range(10)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["values"]["rate(disk.io)"] == 20.0


def test_default_baseline_is_one_minute_half_open(tmp_path: Path) -> None:
    # window [99.9s, 100.1s]; baseline [39.9s, 99.9s)
    rules = "rule r\n  when max(disk.io.latency) >= 0\n  within 100ms of oom.kill\n"
    evs = [
        disk(39900 * MS - 1, 1),
        disk(39900 * MS, 2),
        disk(99900 * MS - 1, 4),
        disk(99900 * MS, 8),
        disk(100100 * MS, 16),
        disk(100100 * MS + 1, 32),
        ev("oom.kill", 100 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    e = r.one["evidence"]["disk.io.latency"]
    assert e["baseline"]["buckets"] == [[2, 4, 1], [4, 8, 1]]
    assert e["window"]["buckets"] == [[8, 16, 1], [16, 32, 1]]


def test_matches_is_a_search_and_in_takes_numbers(tmp_path: Path) -> None:
    rules = """
rule r
  when count(disk.io where comm matches "wr_i") == 1 and count(disk.io where pid in (7, 9)) == 2
  during fs.commit
"""
    evs = [
        ev("fs.commit", 1 * S, 2 * S),
        disk(1100 * MS, comm="z_wr_iss", pid=7),
        disk(1200 * MS, comm="wr", pid=9),
        disk(1300 * MS, comm="x", pid=8),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert len(r.findings) == 1


def test_number_with_exponent_and_unit(tmp_path: Path) -> None:
    rules = "rule r\n  when max(disk.io.latency) == 1e6ns and max(disk.io.latency) == 0.001s\n  over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S, 1 * MS)])
    assert r.rc == 0, r.err
    assert len(r.findings) == 1
