# ruff: noqa: E501
"""`by` keys (rules.md, Keys), cooldown, severity, labels, summary templates."""

from __future__ import annotations

import re
from pathlib import Path

from .helpers import MS, S, disk, ev, replay, run_cli


def test_key_field_on_both_sides_must_match(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1\n  during fs.commit\n  by dev\n"
    evs = [
        disk(1500 * MS, dev="sda"),
        disk(1500 * MS, dev="sdb"),
        disk(1600 * MS, dev="sdb"),
        ev("fs.commit", 1 * S, 2 * S, dev="sda", tid=3),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {"dev": "sda"}
    assert f["values"] == {"count(disk.io)": 1}
    assert f["trigger"]["dev"] == "sda"


def test_key_field_on_both_sides_two_triggers(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1\n  during fs.commit\n  by dev\n"
    evs = [
        disk(1500 * MS, dev="sda"),
        disk(1500 * MS, dev="sdb"),
        disk(1600 * MS, dev="sdb"),
        ev("fs.commit", 1 * S, 2 * S, dev="sda", tid=3),
        ev("fs.commit", 1 * S, 2 * S, dev="sdb", tid=4),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted(
        (f["key"]["dev"], f["trigger"]["tid"], f["values"]["count(disk.io)"]) for f in r.findings
    )
    assert got == [("sda", 3, 1), ("sdb", 4, 2)]


def test_key_field_on_condition_side_only(tmp_path: Path) -> None:
    # p99 per device, each against the (unkeyed) TXG
    rules = "rule r\n  when p99(disk.io.latency) > 1ms\n  within 200ms of zfs.txg.sync\n  by dev\n"
    evs = [
        ev("zfs.txg.sync", 1 * S, 1100 * MS, txg=5),
        disk(1010 * MS, 2 * MS, dev="sda"),
        disk(1020 * MS, 3 * MS, dev="sdb"),
        disk(1030 * MS, 500_000, dev="sdc"),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted(
        (f["key"]["dev"], f["values"]["p99(disk.io.latency)"], f["trigger"]["txg"])
        for f in r.findings
    )
    assert got == [("sda", 2 * MS, 5), ("sdb", 3 * MS, 5)]
    for f in r.findings:
        assert f["key"] == {"dev": f["key"]["dev"]}


def test_key_field_on_trigger_side_only(tmp_path: Path) -> None:
    # pool only on the trigger: it constrains only the trigger side, the disk event
    # at 1.02s counts toward both pools' windows
    rules = "rule r\n  when count(disk.io) >= 1\n  within 100ms of zfs.txg.sync\n  by pool\n"
    evs = [
        ev("zfs.txg.sync", 1 * S, 1 * S, pool="tank"),
        ev("zfs.txg.sync", 1050 * MS, 1050 * MS, pool="other"),
        disk(1020 * MS),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted((f["key"]["pool"], f["values"]["count(disk.io)"]) for f in r.findings)
    assert got == [("other", 1), ("tank", 1)]


def test_two_key_fields(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 2 over 1s\n  by dev, op\n"
    evs = [
        disk(1010 * MS, dev="sda", op="read"),
        disk(1020 * MS, dev="sda", op="write"),
        disk(1030 * MS, dev="sda", op="read"),
        disk(1040 * MS, dev="sdb", op="read"),
        disk(1050 * MS, dev="sdb", op="write"),
        disk(1060 * MS, dev="sdb", op="write"),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted((f["key"]["dev"], f["key"]["op"], f["ts"]) for f in r.findings)
    assert got == [("sda", "read", 1100 * MS), ("sdb", "write", 1100 * MS)]
    for f in r.findings:
        assert set(f["key"]) == {"dev", "op"}


def test_events_lacking_the_key_field_are_left_out(tmp_path: Path) -> None:
    # `queue` is optional in disk.io; the event without it joins no group
    rules = "rule r\n  when count(disk.io) >= 1 over 1s\n  by queue\n"
    evs = [disk(1010 * MS, queue=5000), disk(1020 * MS, queue=5000), disk(1030 * MS)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {"queue": 5000}
    assert f["values"] == {"count(disk.io)": 2}


def test_by_field_no_stream_carries_is_compile_error(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1 over 1s\n  by pool\n"
    r = replay(tmp_path, rules, [disk(1 * S)])
    assert r.rc == 2
    assert r.out == ""
    assert f"{tmp_path / 'r.rules'}:3:" in r.err
    assert "Traceback" not in r.err


def test_cooldown_suppresses_within_d_of_previous_ts(tmp_path: Path) -> None:
    # windows end at 2s, 31s, 62s: 31s is < 1m after 2s (suppressed); 62s is exactly
    # 1m after 2s, not less (fires)
    rules = "rule r\n  when count(disk.io) >= 0\n  after oom.kill within 1s\n  cooldown 1m\n"
    evs = [ev("oom.kill", 1 * S), ev("oom.kill", 30 * S), ev("oom.kill", 61 * S)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [2 * S, 62 * S]


def test_cooldown_measured_from_last_reported_finding(tmp_path: Path) -> None:
    # 2s fires, 31s suppressed, 61.5s: 59.5s after 2s -> suppressed,
    # 63s: 61s after 2s -> fires (the suppressed ones do not restart the cooldown)
    rules = "rule r\n  when count(disk.io) >= 0\n  after oom.kill within 1s\n  cooldown 1m\n"
    evs = [ev("oom.kill", t) for t in (1 * S, 30 * S, 60500 * MS, 62 * S)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [2 * S, 63 * S]


def test_cooldown_is_per_key(tmp_path: Path) -> None:
    rules = (
        "rule r\n  when count(memcg) >= 0\n  after oom.kill within 1s\n  by cgroup\n  cooldown 1m\n"
    )
    evs = [
        ev("oom.kill", 1 * S, cgroup="/a"),
        ev("oom.kill", 2 * S, cgroup="/b"),
        ev("oom.kill", 3 * S, cgroup="/a"),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted((f["key"]["cgroup"], f["ts"]) for f in r.findings)
    assert got == [("/a", 2 * S), ("/b", 3 * S)]


def test_cooldown_on_sliding_rule(tmp_path: Path) -> None:
    # over 100ms: runs start at 1.1, 1.6, 2.2; cooldown 1s suppresses 1.6 only
    rules = "rule r\n  when count(disk.io) >= 1 over 100ms\n  cooldown 1s\n"
    evs = [disk(1050 * MS), disk(1550 * MS), disk(2150 * MS)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1100 * MS, 2200 * MS]


def test_severity_default_and_explicit(tmp_path: Path) -> None:
    rules = """
rule d
  when count(disk.io) >= 1 over 1s
rule i
  when count(disk.io) >= 1 over 1s
  severity info
rule c
  severity critical
  when count(disk.io) >= 1 over 1s
"""
    r = replay(tmp_path, rules, [disk(1 * S)])
    assert r.rc == 0, r.err
    assert {f["rule"]: f["severity"] for f in r.findings} == {
        "d": "warning",
        "i": "info",
        "c": "critical",
    }


def test_labels_copied_into_finding(tmp_path: Path) -> None:
    rules = 'rule r\n  when count(disk.io) >= 1 over 1s\n  labels team = "storage", tier = "db \\"1\\""\n'
    r = replay(tmp_path, rules, [disk(1 * S)])
    assert r.rc == 0, r.err
    assert r.one["labels"] == {"team": "storage", "tier": 'db "1"'}


def test_summary_template_with_units(tmp_path: Path) -> None:
    rules = """
rule r
  when p99(disk.io.latency) > 1ms
  within 200ms of zfs.txg.sync
  summary "p99 {p99(disk.io.latency)} over {count(disk.io)} IOs, half {p99(disk.io.latency) / 2}, max {max(disk.io.latency)}"
"""
    evs = [
        ev("zfs.txg.sync", 1 * S, 1100 * MS),
        disk(1010 * MS, 2300 * 1000),
        disk(1020 * MS, 1 * MS),
        disk(1030 * MS, 2 * MS),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    # the value with its unit; the exact number format is the project's
    m = re.fullmatch(r"p99 (\S+) over (\S+) IOs, half (\S+), max (\S+)", f["summary"])
    assert m, f["summary"]
    assert [_ns(x) for x in (m.group(1), m.group(3), m.group(4))] == [
        2_300_000,
        1_150_000,
        2_300_000,
    ]
    assert float(m.group(2)) == 3
    # values carry the condition's aggregates only
    assert f["values"] == {"p99(disk.io.latency)": 2300 * 1000}


def test_default_summary_is_a_sentence(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1 over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S)])
    f = r.one
    assert isinstance(f["summary"], str) and f["summary"].strip()


def test_define_visible_in_later_files(tmp_path: Path) -> None:
    (tmp_path / "a.rules").write_text("define slow = latency > 1ms\n")
    (tmp_path / "b.rules").write_text("rule r\n  when count(disk.io where slow) >= 2 over 1s\n")
    from .helpers import write_trace

    tp = write_trace(tmp_path / "t.jsonl", [disk(1 * S, 2 * MS), disk(1 * S, 3 * MS), disk(1 * S)])
    r = run_cli(["replay", str(tp), "--rules", str(tmp_path), "--json"])
    assert r.rc == 0, r.err
    assert r.one["values"] == {"count(disk.io where slow)": 2}


def test_integer_key_values_stay_integers(tmp_path: Path) -> None:
    # pid on both sides (oom.kill and disk.io): must match; key value an integer
    rules = "rule r\n  when count(disk.io) >= 1\n  before oom.kill within 1s\n  by pid\n"
    evs = [disk(9500 * MS, pid=411), disk(9600 * MS, pid=412), ev("oom.kill", 10 * S, pid=411)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {"pid": 411} and type(f["key"]["pid"]) is int
    assert type(f["trigger"]["pid"]) is int
    assert '"key":{"pid":411}' in r.out.replace(" ", "")


def test_by_order_kept_in_key(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1 over 1s\n  by op, dev\n"
    r = replay(tmp_path, rules, [disk(1 * S, dev="sdz", op="read")])
    assert r.rc == 0, r.err
    assert list(r.one["key"]) == ["op", "dev"]


_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def _ns(text: str) -> int:
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|μs|ms|s)", text)
    assert m, text
    return round(float(m.group(1)) * _UNITS[m.group(2)])


def test_key_fields_split_across_condition_streams(tmp_path: Path) -> None:
    # dev only on disk.io, cgroup only on memcg: one group per combination seen,
    # each aggregate keyed by the fields its stream carries
    rules = (
        "rule r\n  when count(disk.io) >= 1 and max(memcg.usage) > 0 over 1s\n  by dev, cgroup\n"
    )
    evs = [
        disk(1 * S, dev="sda"),
        disk(1 * S, dev="sdb"),
        disk(1 * S, dev="sdb"),
        ev("memcg", 1 * S, cgroup="/a", usage=10),
        ev("memcg", 1 * S, cgroup="/b", usage=20),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted(
        (
            f["key"]["dev"],
            f["key"]["cgroup"],
            f["values"]["count(disk.io)"],
            f["values"]["max(memcg.usage)"],
        )
        for f in r.findings
    )
    assert got == [
        ("sda", "/a", 1, 10),
        ("sda", "/b", 1, 20),
        ("sdb", "/a", 2, 10),
        ("sdb", "/b", 2, 20),
    ]
