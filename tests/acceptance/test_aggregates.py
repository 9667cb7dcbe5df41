"""Every aggregate of rules.md's table, with values worked out by hand.

Trigger windows (`during fs.commit`, closed intervals):
  T1 [1s, 2s]   disk.io latency k ms, bytes 1000*k, at 1s + k*100ms, k = 1..10
                (even k are reads); plus 50ms at 0.5s and 99ms at 2.5s (outside)
  T2 [10s, 11s] empty
  T3 [20s, 20s] zero-length, one event of 7ms at 20s
  T4 [30s, 31s] two events at the same time 30.5s: 1ms then 3ms (file order)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from .helpers import MS, S, approx, disk, ev, pct, replay, run_cli, write_trace

NONE = object()  # no value: `AGG >= 0` is false, so no finding for that window

L = "disk.io.latency"
SD = math.sqrt(8.25) * MS  # population stddev of 1..10 ms

# aggregate text -> expected value per trigger window T1..T4 (NONE: no finding)
CASES: dict[str, tuple[Any, Any, Any, Any]] = {
    "count(disk.io)": (10, 0, 1, 2),
    "rate(disk.io)": (10.0, 0.0, NONE, 2.0),
    f"sum({L})": (55 * MS, NONE, 7 * MS, 4 * MS),
    "sum(disk.io.bytes)": (55_000, NONE, 7000, 4000),
    f"avg({L})": (5.5 * MS, NONE, 7 * MS, 2 * MS),
    f"min({L})": (1 * MS, NONE, 7 * MS, 1 * MS),
    f"max({L})": (10 * MS, NONE, 7 * MS, 3 * MS),
    f"last({L})": (10 * MS, NONE, 7 * MS, 3 * MS),
    f"p50({L})": (5 * MS, NONE, 7 * MS, 1 * MS),
    f"p90({L})": (9 * MS, NONE, 7 * MS, 3 * MS),
    f"p95({L})": (10 * MS, NONE, 7 * MS, 3 * MS),
    f"p99({L})": (10 * MS, NONE, 7 * MS, 3 * MS),
    f"p999({L})": (10 * MS, NONE, 7 * MS, 3 * MS),
    f"percentile({L}, 30)": (3 * MS, NONE, 7 * MS, 1 * MS),
    f"percentile({L}, 55)": (6 * MS, NONE, 7 * MS, 3 * MS),
    f"percentile({L}, 100)": (10 * MS, NONE, 7 * MS, 3 * MS),
    f"percentile({L}, 99.9)": (10 * MS, NONE, 7 * MS, 3 * MS),
    f"stddev({L})": (SD, NONE, NONE, NONE),
    f"delta({L})": (9 * MS, NONE, 0, 2 * MS),
    f"growth({L})": (10 * MS, NONE, NONE, NONE),  # 1ms per 100ms = 10ms per second
    f"predict({L}, 1s)": (20 * MS, NONE, NONE, NONE),  # the line at 2s + 1s
    'count(disk.io where op == "read")': (5, 0, 0, 0),
    f'avg({L} where op == "read")': (6 * MS, NONE, NONE, NONE),
    "count(disk.io over 500ms)": (6, 0, 1, 2),  # [1.5s, 2s]
    f"sum({L} over 500ms)": (45 * MS, NONE, 7 * MS, 4 * MS),
    "rate(disk.io over 500ms)": (12.0, 0.0, 2.0, 4.0),
    "count(disk.io over 3s)": (11, 0, 1, 2),  # [-1s, 2s] reaches the 0.5s event
    f"max({L} over 3s)": (50 * MS, NONE, 7 * MS, 3 * MS),
}
PERCENTILES = {"p50", "p90", "p95", "p99", "p999", "percentile"}
WINDOWS = [(1 * S, 2 * S), (10 * S, 11 * S), (20 * S, 20 * S), (30 * S, 31 * S)]


def _events() -> list[dict[str, Any]]:
    evs: list[dict[str, Any]] = [disk(S // 2, 50 * MS)]
    for k in range(1, 11):
        evs.append(
            disk(S + k * 100 * MS, k * MS, bytes=1000 * k, op="read" if k % 2 == 0 else "write")
        )
    evs.append(disk(2500 * MS, 99 * MS))
    evs.append(disk(20 * S, 7 * MS, bytes=7000))
    evs.append(disk(30500 * MS, 1 * MS, bytes=1000))
    evs.append(disk(30500 * MS, 3 * MS, bytes=3000))
    for i, (a, b) in enumerate(WINDOWS):
        evs.append(ev("fs.commit", a, b, tid=i + 1))
    return evs


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    d = tmp_path_factory.mktemp("agg")
    names = {}
    rules = []
    for i, text in enumerate(CASES):
        names[text] = f"agg_{i}"
        rules.append(f"rule agg_{i}\n  when {text} >= 0\n  during fs.commit\n")
    (d / "r.rules").write_text("\n".join(rules))
    write_trace(d / "t.jsonl", _events())
    r = run_cli(["replay", str(d / "t.jsonl"), "--rules", str(d / "r.rules"), "--json"])
    assert r.rc == 0, r.err
    out: dict[str, list[dict[str, Any]]] = {}
    for text, name in names.items():
        out[text] = sorted(r.by_rule(name), key=lambda f: f["ts"])
    return out


@pytest.mark.parametrize("text", list(CASES))
def test_aggregate_values(table: dict[str, list[dict[str, Any]]], text: str) -> None:
    expected = CASES[text]
    found = {tuple(f["window"]): f for f in table[text]}
    want_windows = {w for w, e in zip(WINDOWS, expected, strict=True) if e is not NONE}
    assert set(found) == want_windows
    func = text.split("(")[0]
    for w, e in zip(WINDOWS, expected, strict=True):
        if e is NONE:
            continue
        f = found[w]
        assert f["ts"] == w[1]
        assert list(f["values"]) == [text]
        v = f["values"][text]
        if func in PERCENTILES:
            assert v == pct(e), (w, v)
        else:
            assert v == approx(e, rel=1e-6), (w, v)


EMPTY_RULE = """
rule empty
  when count(disk.io) == 0 or avg(disk.io.latency) > 0 or p99(disk.io.latency) > 0
       or sum(disk.io.bytes) > 0 or min(disk.io.latency) > 0 or max(disk.io.latency) > 0
       or last(disk.io.latency) > 0 or stddev(disk.io.latency) > 0
       or delta(disk.io.latency) > 0 or growth(disk.io.latency) > 0
       or predict(disk.io.latency, 1s) > 0 or rate(disk.io) > 1
  during fs.commit
"""


def test_empty_window_values(tmp_path: Path) -> None:
    r = replay(tmp_path, EMPTY_RULE, [disk(0), ev("fs.commit", 5 * S, 6 * S)])
    assert r.rc == 0, r.err
    v = r.one["values"]
    assert v["count(disk.io)"] == 0
    assert v["rate(disk.io)"] == 0
    for k in [
        "avg(disk.io.latency)",
        "p99(disk.io.latency)",
        "sum(disk.io.bytes)",
        "min(disk.io.latency)",
        "max(disk.io.latency)",
        "last(disk.io.latency)",
        "stddev(disk.io.latency)",
        "delta(disk.io.latency)",
        "growth(disk.io.latency)",
        "predict(disk.io.latency, 1s)",
    ]:
        assert v[k] is None, k
    assert len(v) == 12


@pytest.mark.parametrize("op", ["<", "<=", "==", "!=", ">", ">="])
def test_comparison_with_no_value_is_false(tmp_path: Path, op: str) -> None:
    rules = f"rule r\n  when avg(disk.io.latency) {op} 1ms\n  during fs.commit\n"
    r = replay(tmp_path, rules, [disk(0), ev("fs.commit", 5 * S, 6 * S)])
    assert r.rc == 0, r.err
    assert r.findings == []


def test_not_of_comparison_with_no_value_is_true(tmp_path: Path) -> None:
    # the comparison is false, so `not` of it holds
    rules = "rule r\n  when not (avg(disk.io.latency) > 1ms)\n  during fs.commit\n"
    r = replay(tmp_path, rules, [disk(0), ev("fs.commit", 5 * S, 6 * S)])
    assert r.rc == 0, r.err
    assert r.one["values"] == {"avg(disk.io.latency)": None}


def test_interval_events_count_at_their_start(tmp_path: Path) -> None:
    rules = "rule r\n  when count(mm.reclaim) >= 0\n  during fs.commit\n"
    evs = [
        ev("mm.reclaim", 500 * MS, 1500 * MS),  # starts before the window: out
        ev("mm.reclaim", 1200 * MS, 1400 * MS),  # in
        ev("mm.reclaim", 1900 * MS, 1950 * MS),  # in
        ev("mm.reclaim", 2 * S, 2 * S),  # on the closed end: in
        ev("fs.commit", 1 * S, 2 * S),
        ev("mm.reclaim", 2100 * MS, 2200 * MS),  # after: out
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.one["values"] == {"count(mm.reclaim)": 3}


def test_interval_event_counts_at_start_in_sliding_window(tmp_path: Path) -> None:
    # starts at 1.05s, ends at 2s: counted at 1.05s only, so the first step whose
    # window [t - 500ms, t] holds it is 1.1s
    rules = "rule r\n  when count(mm.reclaim) >= 1 over 500ms\n"
    r = replay(tmp_path, rules, [ev("mm.reclaim", 1050 * MS, 2 * S)])
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == 1100 * MS
    assert f["window"] == [600 * MS, 1100 * MS]


def test_growth_of_memcg_usage_before_oom(tmp_path: Path) -> None:
    # usage grows 2 MiB every second: growth = 2 MiB/s = 2097152 bytes/s
    rules = """
rule memcg_growth_before_oom
  when growth(memcg.usage) > 1MiB/s
  before oom.kill within 5s
  by cgroup
  severity critical
"""
    mib = 1024 * 1024
    evs = [ev("memcg", k * S, cgroup="/app", usage=100 * mib + 2 * mib * k) for k in range(0, 11)]
    evs += [ev("memcg", k * S, cgroup="/other", usage=100 * mib) for k in range(0, 11)]
    evs.append(ev("oom.kill", 10 * S, cgroup="/app"))
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {"cgroup": "/app"}
    assert f["window"] == [5 * S, 10 * S]
    assert f["values"]["growth(memcg.usage)"] == approx(2 * mib, rel=1e-6)
    assert f["severity"] == "critical"


def test_predict_against_last_limit(tmp_path: Path) -> None:
    # usage 0, 1, 2 … 10 MiB over 0..10s; predict 5s past the window end (10s) = 15 MiB
    rules = """
rule r
  when predict(memcg.usage, 5s) > last(memcg.limit)
  before oom.kill within 10s
"""
    mib = 1024 * 1024
    evs = [ev("memcg", k * S, usage=k * mib, limit=12 * mib) for k in range(0, 11)]
    evs.append(ev("oom.kill", 10 * S))
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    v = r.one["values"]
    assert v["predict(memcg.usage, 5s)"] == approx(15 * mib, rel=1e-6)
    assert v["last(memcg.limit)"] == 12 * mib
