"""Trigger windows (within/before/after/during), keys, cooldown, lost and evidence."""

from __future__ import annotations

import pytest
from rt_helpers import MS, S, agg, batch, gt, plan, rule, within

from engine.dsl.plan import BoolOp, PredCompare
from engine.runtime import Evaluator
from engine.units import Kind

P99 = agg("percentile", "disk.io", "latency", q=99, text="p99(disk.io.latency)")
COUNT = agg("count", "disk.io", kind=Kind.NUMBER)


def count_rule(kind: str = "within", d: int = 200 * MS, trig: str = "zfs.txg.sync", **kw):
    return rule("r", gt(0, 0, Kind.NUMBER), [COUNT], correlation=within(trig, d, kind=kind), **kw)


SYNC = {"ts": 10 * S, "end": 10 * S + 190 * MS, "txg": 8812}


@pytest.mark.parametrize(
    ("kind", "lo", "hi"),
    [
        ("within", 10 * S - 200 * MS, 10 * S + 390 * MS),
        ("before", 10 * S - 200 * MS, 10 * S),
        ("after", 10 * S + 190 * MS, 10 * S + 390 * MS),
        ("during", 10 * S, 10 * S + 190 * MS),
    ],
)
def test_window_is_closed_interval(kind: str, lo: int, hi: int) -> None:
    ev = Evaluator(plan(count_rule(kind)))
    ev.push(batch("disk.io", *({"ts": t} for t in (lo - 1, lo, (lo + hi) // 2, hi, hi + 1))))
    ev.push(batch("zfs.txg.sync", SYNC))
    assert ev.advance(hi - 1) == []
    (f,) = ev.advance(hi)
    assert f.window == (lo, hi)
    assert f.ts == hi
    assert f.values == {"count(disk.io)": 3.0}
    assert f.trigger == {
        "stream": "zfs.txg.sync",
        "ts": SYNC["ts"],
        "end": SYNC["end"],
        "pool": "tank",
        "txg": 8812,
    }
    assert f.key == {}


def test_point_trigger_has_end_equal_ts() -> None:
    r = count_rule("within", 1 * S, "oom.kill")
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", {"ts": 4 * S}, {"ts": 6 * S}, {"ts": 6 * S + 1}))
    ev.push(batch("oom.kill", {"ts": 5 * S}))
    (f,) = ev.finish()
    assert f.window == (4 * S, 6 * S)
    assert f.values["count(disk.io)"] == 2.0


def test_trigger_where_filters_trigger_events() -> None:
    r = rule(
        "r",
        gt(0, 0, Kind.NUMBER),
        [COUNT],
        correlation=within("zfs.txg.sync", 100 * MS, PredCompare("pool", "==", "tank")),
    )
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", {"ts": 1 * S}, {"ts": 3 * S}))
    ev.push(
        batch(
            "zfs.txg.sync",
            {"ts": 1 * S, "end": 1 * S, "pool": "other"},
            {"ts": 3 * S, "end": 3 * S, "pool": "tank"},
        )
    )
    found = ev.finish()
    assert [f.trigger["pool"] for f in found if f.trigger] == ["tank"]


def test_no_events_count_zero_and_no_value_comparisons_false() -> None:
    # count < 1 holds on an empty window; p99 > 0 has no value and is false.
    cond = BoolOp("or", (gt(0, 1, Kind.NUMBER, "<"), gt(1, 0)))
    r = rule("r", cond, [COUNT, P99], correlation=within("zfs.txg.sync", 100 * MS))
    ev = Evaluator(plan(r))
    ev.push(batch("zfs.txg.sync", SYNC))
    (f,) = ev.finish()
    assert f.values == {"count(disk.io)": 0.0, "p99(disk.io.latency)": None}
    r2 = rule("r2", gt(0, 0), [P99], correlation=within("zfs.txg.sync", 100 * MS))
    ev2 = Evaluator(plan(r2))
    ev2.push(batch("zfs.txg.sync", SYNC))
    assert ev2.finish() == []


def test_overlapping_triggers_each_fire_once() -> None:
    ev = Evaluator(plan(count_rule("within", 1 * S)))
    ev.push(batch("disk.io", {"ts": 10 * S}))
    ev.push(
        batch(
            "zfs.txg.sync",
            {"ts": 9 * S + 500 * MS, "end": 9 * S + 600 * MS},
            {"ts": 10 * S, "end": 10 * S + 100 * MS},
        )
    )
    first = ev.advance(20 * S)
    assert [f.window for f in first] == [
        (8 * S + 500 * MS, 10 * S + 600 * MS),
        (9 * S, 11 * S + 100 * MS),
    ]
    assert ev.advance(30 * S) == [] and ev.finish() == []


def test_late_trigger_evaluated_against_history() -> None:
    ev = Evaluator(
        plan(rule("r", gt(0, 1 * MS), [P99], correlation=within("zfs.txg.sync", 200 * MS)))
    )
    ev.push(batch("disk.io", {"ts": 10 * S, "latency": 5 * MS}, {"ts": 12 * S, "latency": 9 * MS}))
    assert ev.advance(15 * S) == []
    # The poller learns of the sync 5s after it ended.
    ev.push(batch("zfs.txg.sync", {"ts": 9 * S + 900 * MS, "end": 10 * S + 50 * MS}))
    (f,) = ev.advance(15 * S)
    assert f.values["p99(disk.io.latency)"] == 5 * MS
    assert ev.stats()["late_triggers"] == 1


def test_by_field_only_condition_carries_groups_per_dev() -> None:
    r = rule("r", gt(0, 1 * MS), [P99], correlation=within("zfs.txg.sync", 200 * MS), by=("dev",))
    ev = Evaluator(plan(r))
    ev.push(
        batch(
            "disk.io",
            {"ts": 10 * S, "dev": "sda", "latency": 2 * MS},
            {"ts": 10 * S + 1, "dev": "sdb", "latency": 10_000},
            {"ts": 10 * S + 2, "dev": "nvme0n1", "latency": 3 * MS},
        )
    )
    ev.push(batch("zfs.txg.sync", SYNC, {**SYNC, "ts": 20 * S, "end": 20 * S, "txg": 2}))
    found = ev.finish()
    assert sorted((f.key["dev"], f.values["p99(disk.io.latency)"]) for f in found) == [
        ("nvme0n1", 3 * MS),
        ("sda", 2 * MS),
    ]
    assert all(f.trigger and f.trigger["txg"] == 8812 for f in found)
    # Each key's evidence holds its own rows only.
    for f in found:
        h = f.evidence["disk.io.latency"].window
        assert (h.count, h.max) == (1, f.values["p99(disk.io.latency)"])


def test_field_both_sides_carry_must_match() -> None:
    usage = agg("max", "memcg", "usage", kind=Kind.SIZE)
    r = rule(
        "r",
        gt(0, 100, Kind.SIZE),
        [usage],
        correlation=within("oom.kill", 5 * S, kind="before"),
        by=("cgroup",),
    )
    ev = Evaluator(plan(r))
    ev.push(
        batch(
            "memcg",
            {"ts": 1 * S, "cgroup": "/a", "usage": 50},
            {"ts": 2 * S, "cgroup": "/b", "usage": 500},
            {"ts": 3 * S, "cgroup": "/a", "usage": 80},
        )
    )
    ev.push(batch("oom.kill", {"ts": 4 * S, "cgroup": "/a"}, {"ts": 4 * S + 1, "cgroup": "/b"}))
    (f,) = ev.finish()
    assert f.key == {"cgroup": "/b"}
    assert f.values == {"max(memcg.usage)": 500.0}


def test_events_lacking_key_value_are_left_out() -> None:
    # Keyed on an optional numeric field of the condition stream.
    r = rule(
        "r",
        gt(0, 0, Kind.NUMBER),
        [COUNT],
        correlation=within("zfs.txg.sync", 1 * S),
        by=("queue",),
    )
    ev = Evaluator(plan(r))
    ev.push(
        batch(
            "disk.io",
            {"ts": 10 * S, "queue": 5},
            {"ts": 10 * S + 1, "queue": None},
            {"ts": 10 * S + 2, "queue": 5},
        )
    )
    ev.push(batch("zfs.txg.sync", SYNC))
    (f,) = ev.finish()
    assert f.key == {"queue": 5} and isinstance(f.key["queue"], int)
    assert f.values["count(disk.io)"] == 2.0


def test_cooldown_suppresses_within_d_of_previous_finding() -> None:
    ev = Evaluator(plan(count_rule("within", 0, "oom.kill", cooldown=10 * S)))
    ev.push(batch("disk.io", *({"ts": t * S} for t in (1, 5, 11, 12, 22))))
    ev.push(batch("oom.kill", *({"ts": t * S} for t in (1, 5, 11, 12, 22))))
    found = ev.finish()
    # 1 fires; 5 is 4s later (suppressed); 11 is 10s later (fires); 12 suppressed; 22 fires
    assert [f.ts // S for f in found] == [1, 11, 22]
    assert ev.stats()["suppressed"] == 2


def test_lost_events_inside_window_are_summed() -> None:
    ev = Evaluator(plan(count_rule("within", 1 * S, "oom.kill")))
    ev.push(batch("disk.io", {"ts": 5 * S}))
    ev.push(
        batch(
            "lost",
            {"ts": 3 * S, "count": 100},
            {"ts": 4 * S, "count": 7},
            {"ts": 6 * S, "count": 3},
            {"ts": 6 * S + 1, "count": 50},
        )
    )
    ev.push(batch("oom.kill", {"ts": 5 * S}))
    (f,) = ev.finish()
    assert f.lost == 10


def test_evidence_window_and_baseline_exclude_other_trigger_windows() -> None:
    r = rule("r", gt(0, 1 * MS), [P99], correlation=within("oom.kill", 100 * MS), baseline=10 * S)
    ev = Evaluator(plan(r))
    ev.push(
        batch(
            "disk.io",
            {"ts": 1 * S, "latency": 40_000},  # before the baseline: out
            {"ts": 12 * S, "latency": 50_000},  # baseline
            {"ts": 15 * S, "latency": 9 * MS},  # inside the other trigger's window
            {"ts": 19 * S, "latency": 60_000},  # baseline
            {"ts": 20 * S, "latency": 2 * MS},  # window
        )
    )
    ev.push(batch("oom.kill", {"ts": 15 * S}, {"ts": 20 * S}))
    found = ev.finish()
    f = next(f for f in found if f.ts == 20 * S + 100 * MS)
    e = f.evidence["disk.io.latency"]
    assert e.window.count == 1 and e.window.max == 2 * MS
    assert e.baseline.count == 2
    assert (e.baseline.min, e.baseline.max) == (50_000, 60_000)


def test_summary_default_sentence() -> None:
    r = rule("r", gt(0, 1 * MS), [P99], correlation=within("zfs.txg.sync", 200 * MS))
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", {"ts": 10 * S, "latency": 1_800_000}))
    ev.push(batch("zfs.txg.sync", SYNC))
    (f,) = ev.finish()
    assert f.summary == (
        "p99(disk.io.latency) = 1.8ms (> 1ms) within 200ms of zfs.txg.sync pool=tank txg=8812"
    )


def test_unread_streams_are_ignored() -> None:
    ev = Evaluator(plan(count_rule()))
    ev.push(batch("net.drop", {"ts": 1}))
    assert ev.stats()["ignored_events"] == 1
    assert ev.stats()["rows_retained"] == 0


def test_trigger_lacking_a_shared_key_field_matches_no_rows() -> None:
    usage = agg("count", "memcg", kind=Kind.NUMBER)
    r = rule(
        "r",
        gt(0, 0, Kind.NUMBER, ">="),
        [usage],
        correlation=within("oom.kill", 5 * S, kind="before"),
        by=("cgroup",),
    )
    ev = Evaluator(plan(r))
    ev.push(batch("memcg", {"ts": 1 * S, "cgroup": "/a"}))
    ev.push(batch("oom.kill", {"ts": 2 * S, "cgroup": "/zzz"}))
    (f,) = ev.finish()
    # The group is the trigger's: no memcg row of /zzz, so the count is 0.
    assert f.key == {"cgroup": "/zzz"}
    assert f.values == {"count(memcg)": 0.0}
