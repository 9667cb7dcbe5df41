"""`over D` sliding windows and `for D` (rules.md, "When rules are evaluated")."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import MS, S, disk, replay


def ts_windows(r):  # type: ignore[no-untyped-def]
    return [(f["ts"], tuple(f["window"])) for f in r.findings]


def test_fires_at_first_step_where_condition_holds(tmp_path: Path) -> None:
    # events at 1.05, 1.25, 1.45s: three in [t - 1s, t] first at step 1.5s
    rules = "rule r\n  when count(disk.io) >= 3 over 1s\n"
    r = replay(tmp_path, rules, [disk(1050 * MS), disk(1250 * MS), disk(1450 * MS)])
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == 1500 * MS
    assert f["window"] == [500 * MS, 1500 * MS]
    assert f["values"] == {"count(disk.io)": 3}
    assert f["trigger"] is None
    assert f["key"] == {}


def test_window_is_closed_at_both_ends(tmp_path: Path) -> None:
    # events exactly at 1.0, 1.5, 2.0s: step 2.0 covers [1.0, 2.0] and holds all three
    rules = "rule r\n  when count(disk.io) >= 3 over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S), disk(1500 * MS), disk(2 * S)])
    assert r.rc == 0, r.err
    assert ts_windows(r) == [(2 * S, (1 * S, 2 * S))]


def test_event_just_outside_window_does_not_count(tmp_path: Path) -> None:
    # 0.999999999s is outside [1.0, 2.0]; by step 1.9 the 2.0 event is not there yet
    rules = "rule r\n  when count(disk.io) >= 3 over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S - 1), disk(1500 * MS), disk(2 * S)])
    assert r.rc == 0, r.err
    assert r.findings == []


def test_steps_are_multiples_of_the_tick(tmp_path: Path) -> None:
    # a lone event at 1.05s: first step at or after it is 1.1s (steps up to the first
    # tick at or after the last event are evaluated at the end of a replay)
    rules = "rule r\n  when count(disk.io) >= 1 over 1s\n"
    r = replay(tmp_path, rules, [disk(1050 * MS)])
    assert r.rc == 0, r.err
    assert ts_windows(r) == [(1100 * MS, (100 * MS, 1100 * MS))]


def test_not_again_until_after_a_step_where_it_does_not_hold(tmp_path: Path) -> None:
    # 1.05 1.25 1.45 1.65 1.85 2.05: >= 3 in [t - 1s, t] at every step 1.5 … 2.6
    # (step 2.7 sees 1.85, 2.05 only); then 5.0 5.1 5.2 -> fires again at 5.2
    rules = "rule r\n  when count(disk.io) >= 3 over 1s\n"
    evs = [disk(t * MS) for t in (1050, 1250, 1450, 1650, 1850, 2050, 5000, 5100, 5200)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1500 * MS, 5200 * MS]


def test_fires_again_after_single_false_step(tmp_path: Path) -> None:
    # over 100ms: events at 1.05 and 1.15 hold at steps 1.1 and 1.2; step 1.3 sees
    # [1.2, 1.3] empty; the event at 1.35 holds again at 1.4 -> second finding
    rules = "rule r\n  when count(disk.io) >= 1 over 100ms\n"
    evs = [disk(t * MS) for t in (1050, 1150, 1350)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1100 * MS, 1200 * MS + 200 * MS]


def test_for_requires_every_step_of_the_last_d(tmp_path: Path) -> None:
    # one event at 1.0s, over 500ms: holds at steps 1.0 … 1.5 (six steps).
    # for 300ms: first t with all steps of [t-300ms, t] holding is 1.3s.
    # (A later event at 10s keeps the replay stepping past 1.5s: at the end only
    # steps up to the first tick at or after the last event are evaluated.)
    rules = "rule r\n  when count(disk.io) >= 1 over 500ms\n  for 300ms\n"
    r = replay(tmp_path, rules, [disk(1 * S), disk(10 * S)])
    assert r.rc == 0, r.err
    assert ts_windows(r) == [(1300 * MS, (800 * MS, 1300 * MS))]


def test_for_exactly_the_length_of_the_run(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1 over 500ms\n  for 500ms\n"
    r = replay(tmp_path, rules, [disk(1 * S), disk(10 * S)])
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1500 * MS]


def test_for_longer_than_the_run_never_fires(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 1 over 500ms\n  for 600ms\n"
    r = replay(tmp_path, rules, [disk(1 * S), disk(10 * S)])
    assert r.rc == 0, r.err
    assert r.findings == []


def test_steps_stop_at_first_tick_at_or_after_last_event(tmp_path: Path) -> None:
    # a lone event at 1.0s: the replay evaluates steps up to 1.0s only, so
    # `for 100ms` (needing steps 1.0 and 1.1 to hold) never completes
    rules = "rule r\n  when count(disk.io) >= 1 over 500ms\n  for 100ms\n"
    r = replay(tmp_path, rules, [disk(1 * S)])
    assert r.rc == 0, r.err
    assert r.findings == []


def test_for_interrupted_run_restarts(tmp_path: Path) -> None:
    # over 100ms: events at 1.05 1.15 (steps 1.1, 1.2 hold), gap at 1.3,
    # then 1.35 1.45 1.55 1.65 (steps 1.4 … 1.7 hold). for 200ms -> fires at 1.6
    rules = "rule r\n  when count(disk.io) >= 1 over 100ms\n  for 200ms\n"
    evs = [disk(t * MS) for t in (1050, 1150, 1350, 1450, 1550, 1650)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1600 * MS]


def test_sliding_by_key_fires_per_key(tmp_path: Path) -> None:
    rules = "rule r\n  when max(disk.io.latency) > 1ms over 1s\n  by dev\n"
    evs = [
        disk(1050 * MS, 2 * MS, dev="sda"),
        disk(1150 * MS, 500_000, dev="sdb"),
        disk(1250 * MS, 5 * MS, dev="sdb"),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted(
        (f["key"]["dev"], f["ts"], f["values"]["max(disk.io.latency)"]) for f in r.findings
    )
    assert got == [("sda", 1100 * MS, 2 * MS), ("sdb", 1300 * MS, 5 * MS)]


def test_aggregate_over_shorter_than_rule_window(tmp_path: Path) -> None:
    # rule window 1s, aggregate over 200ms ends where the rule's window ends.
    # Events at 1.0, 1.05 (latency 1ms), then 1.5 with 9ms.
    # Step 1.5: p50 over [1.3,1.5] = 9ms, p50 over [0.5,1.5] = 1ms -> 9 > 5*1 fires
    rules = "rule r\n  when p50(disk.io.latency over 200ms) > 5 * p50(disk.io.latency)\n  over 1s\n"
    evs = [disk(1000 * MS, 1 * MS), disk(1050 * MS, 1 * MS), disk(1500 * MS, 9 * MS)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == 1500 * MS
    assert f["window"] == [500 * MS, 1500 * MS]
    assert f["values"]["p50(disk.io.latency over 200ms)"] == 9 * MS
    assert f["values"]["p50(disk.io.latency)"] == 1 * MS


def test_window_not_a_multiple_of_the_tick(tmp_path: Path) -> None:
    # over 150ms: an event at 1.0s is in the windows of steps 1.0 and 1.1 only
    rules = "rule r\n  when count(disk.io) >= 1 over 150ms\n  for 100ms\n"
    r = replay(tmp_path, rules, [disk(1 * S), disk(5 * S)])
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1100 * MS]
    rules = "rule r\n  when count(disk.io) >= 1 over 150ms\n  for 200ms\n"
    r = replay(tmp_path, rules, [disk(1 * S), disk(5 * S)])
    assert r.findings == []


def test_window_shorter_than_the_tick(tmp_path: Path) -> None:
    # over 50ms: step 1.1 sees [1.05, 1.1]; an event at 1.03s is seen by no step
    rules = "rule r\n  when count(disk.io) >= 1 over 50ms\n"
    r = replay(tmp_path, rules, [disk(1030 * MS), disk(1060 * MS), disk(2030 * MS), disk(3 * S)])
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1100 * MS, 3 * S]


def test_zero_latency_and_huge_values(tmp_path: Path) -> None:
    rules = "rule r\n  when max(disk.io.latency) >= 0 and sum(disk.io.bytes) > 1GiB\n  over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S, 0, bytes=2**40), disk(1 * S, 0, bytes=2**40)])
    assert r.rc == 0, r.err
    f = r.one
    assert f["values"] == {"max(disk.io.latency)": 0, "sum(disk.io.bytes)": 2**41}
    w = f["evidence"]["disk.io.latency"]["window"]
    assert w["buckets"] == [[0, 1, 2]]


@pytest.mark.parametrize(
    "for_, fires_ms",
    [
        ("250ms", [1200]),
        # for 50ms: step 10.0 holds and is the only step in [9.95, 10.0], so the lone
        # event at 10s fires too.
        ("50ms", [1000, 10000]),
        ("199ms", [1100]),
    ],
)
def test_for_not_a_multiple_of_the_tick(tmp_path: Path, for_: str, fires_ms: list[int]) -> None:
    # one event at 1.0s, over 500ms: holds at steps 1.0 … 1.5. With for 250ms, the
    # steps in [0.95, 1.2] are 1.0, 1.1, 1.2: all hold, so it fires at 1.2
    rules = f"rule r\n  when count(disk.io) >= 1 over 500ms\n  for {for_}\n"
    r = replay(tmp_path, rules, [disk(1 * S), disk(10 * S)])
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [ms * MS for ms in fires_ms]
