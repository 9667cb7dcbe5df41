"""Sliding `over` rules: steps, closed windows, once-until-false, `for`, keys, finish."""

from __future__ import annotations

from rt_helpers import MS, S, agg, batch, gt, plan, rule

from engine.runtime import Evaluator
from engine.units import Kind

COUNT = agg("count", "disk.io", kind=Kind.NUMBER)
TICK = 100 * MS


def over_rule(threshold: float = 0, over: int = 1 * S, **kw):
    return rule("r", gt(0, threshold, Kind.NUMBER), [COUNT], over=over, **kw)


def test_window_is_closed_at_both_ends() -> None:
    ev = Evaluator(plan(over_rule(1, over=300 * MS)))
    # count is 2 only at step 10.3s, whose window [10.0s, 10.3s] holds both events.
    ev.push(batch("disk.io", {"ts": 10 * S}, {"ts": 10 * S + 300 * MS}))
    (f,) = ev.advance(20 * S)
    assert f.window == (10 * S, 10 * S + 300 * MS)
    assert f.ts == 10 * S + 300 * MS
    assert f.values == {"count(disk.io)": 2.0}
    assert f.trigger is None


def test_steps_start_at_first_tick_after_first_event() -> None:
    ev = Evaluator(plan(over_rule(0, over=300 * MS)))
    ev.push(batch("disk.io", {"ts": 1000 * S + 50 * MS}))
    (f,) = ev.finish()
    assert f.ts == 1000 * S + 100 * MS
    assert ev.stats()["evaluations"] == 1


def test_step_waits_for_watermark() -> None:
    ev = Evaluator(plan(over_rule(0)))
    ev.push(batch("disk.io", {"ts": 5 * S + 1}))
    assert ev.advance(5 * S + 99 * MS) == []
    (f,) = ev.advance(5 * S + 100 * MS)
    assert f.ts == 5 * S + 100 * MS


def test_fires_once_until_condition_is_false() -> None:
    ev = Evaluator(plan(over_rule(0, over=200 * MS)))
    # Busy 1.0-1.5s, quiet, busy again from 3.0s.
    ts = [1 * S + i * 50 * MS for i in range(11)] + [3 * S + i * 50 * MS for i in range(5)]
    ev.push(batch("disk.io", *({"ts": t} for t in ts)))
    found = ev.finish()
    assert [f.ts for f in found] == [1 * S, 3 * S]


def test_for_requires_condition_at_every_step_of_d() -> None:
    ev = Evaluator(plan(over_rule(0, over=100 * MS, for_=300 * MS)))
    # Holds at steps 1.0..1.2 (broken at 1.3, window [1.2,1.3] has nothing), then 2.0..2.5.
    ts = [1 * S, 1 * S + 100 * MS, 1 * S + 150 * MS] + [2 * S + i * 100 * MS for i in range(6)]
    ev.push(batch("disk.io", *({"ts": t} for t in ts)))
    found = ev.finish()
    assert [f.ts for f in found] == [2 * S + 300 * MS]
    assert found[0].window == (2 * S + 200 * MS, 2 * S + 300 * MS)


def test_finish_evaluates_up_to_first_tick_after_last_event() -> None:
    ev = Evaluator(plan(over_rule(1)))
    ev.push(batch("disk.io", {"ts": 7 * S}, {"ts": 7 * S + 150 * MS}))
    assert ev.advance(7 * S + 150 * MS) == []
    (f,) = ev.finish()
    assert f.ts == 7 * S + 200 * MS
    # Nothing past that step is evaluated (no step at +inf).
    assert ev.stats()["evaluations"] <= 3


def test_aggregate_over_ends_at_rule_window_end() -> None:
    # count over 1s of the rule's 100ms window end, compared with count in the window.
    long = agg("count", "disk.io", over=1 * S, kind=Kind.NUMBER, text="count(disk.io over 1s)")
    r = rule("r", gt(1, 2, Kind.NUMBER), [COUNT, long], over=100 * MS)
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", {"ts": 1 * S}, {"ts": 1 * S + 500 * MS}, {"ts": 2 * S}))
    (f,) = ev.finish()
    assert f.ts == 2 * S
    assert f.values == {"count(disk.io)": 1.0, "count(disk.io over 1s)": 3.0}


def test_keyed_over_rule_one_finding_per_key() -> None:
    p99 = agg("percentile", "disk.io", "latency", q=99, text="p99(disk.io.latency)")
    r = rule("r", gt(0, 1 * MS), [p99], over=1 * S, by=("dev", "op"))
    ev = Evaluator(plan(r))
    ev.push(
        batch(
            "disk.io",
            {"ts": 1 * S, "dev": "sda", "op": "read", "latency": 2 * MS},
            {"ts": 1 * S + 1, "dev": "sda", "op": "write", "latency": 10},
            {"ts": 1 * S + 2, "dev": "sdb", "op": "read", "latency": 10},
            {"ts": 1 * S + 3, "dev": "sdb", "op": "write", "latency": 3 * MS},
            {"ts": 1 * S + 4, "dev": None, "op": "write", "latency": 9 * MS},
        )
    )
    found = ev.finish()
    assert sorted((f.key["dev"], f.key["op"], f.values["p99(disk.io.latency)"]) for f in found) == [
        ("sda", "read", 2 * MS),
        ("sdb", "write", 3 * MS),
    ]


def test_unkeyed_aggregate_in_keyed_rule_is_shared() -> None:
    lat = agg("max", "disk.io", "latency")
    drops = agg("count", "net.drop", kind=Kind.NUMBER)
    from engine.dsl.plan import BoolOp

    cond = BoolOp("and", (gt(0, 1 * MS), gt(1, 0, Kind.NUMBER)))
    r = rule("r", cond, [lat, drops], over=1 * S, by=("dev",))
    ev = Evaluator(plan(r))
    ev.push(
        batch(
            "disk.io",
            {"ts": 1 * S, "dev": "a", "latency": 2 * MS},
            {"ts": 1 * S, "dev": "b", "latency": 3 * MS},
        )
    )
    ev.push(batch("net.drop", {"ts": 1 * S}))
    found = ev.finish()
    assert sorted(f.key["dev"] for f in found) == ["a", "b"]
    assert all(f.values["count(net.drop)"] == 1.0 for f in found)


def test_idle_gaps_are_skipped_but_decide_the_same() -> None:
    # count < 1 fires on the first empty step after activity, once per quiet run.
    r = rule("r", gt(0, 1, Kind.NUMBER, "<"), [COUNT], over=1 * S)
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", {"ts": 1 * S}, {"ts": 3600 * S}))
    found = ev.finish()
    assert [f.ts for f in found] == [2 * S + 100 * MS]
    assert ev.stats()["evaluations"] < 200


def test_where_filters_per_event() -> None:
    from engine.dsl.plan import PredBool, PredIn, PredMatch

    where = PredBool("and", (PredIn("op", ("write", "flush")), PredMatch("comm", "^kw")))
    c = agg("count", "disk.io", where=where, kind=Kind.NUMBER)
    ev = Evaluator(plan(rule("r", gt(0, 0, Kind.NUMBER), [c], over=1 * S)))
    ev.push(
        batch(
            "disk.io",
            {"ts": 1 * S, "op": "write", "comm": "kworker/1"},
            {"ts": 1 * S, "op": "read", "comm": "kworker/1"},
            {"ts": 1 * S, "op": "flush", "comm": "xkw"},
            {"ts": 1 * S, "op": "flush", "comm": "kw"},
        )
    )
    (f,) = ev.finish()
    assert f.values["count(disk.io)"] == 2.0


def test_advance_to_int64_max_means_end_of_input() -> None:
    # The pipeline advances to the clock's INFINITY before finish(): no step past the
    # first tick after the last event may be evaluated (count < 2 would hold there).
    r = rule("r", gt(0, 2, Kind.NUMBER, "<"), [COUNT], over=1 * S)
    ev = Evaluator(plan(r))
    ev.push(batch("disk.io", *({"ts": 7 * S + 50 * MS + i * MS} for i in range(5))))
    assert ev.advance(2**63 - 1) == []
    assert ev.finish() == []


def test_groups_are_combinations_when_no_stream_carries_every_field() -> None:
    disk = agg("max", "disk.io", "latency")
    runq = agg("max", "sched.runq", "latency", text="max(sched.runq.latency)")
    from engine.dsl.plan import BoolOp

    cond = BoolOp("and", (gt(0, 1 * MS), gt(1, 1 * MS)))
    r = rule("r", cond, [disk, runq], over=1 * S, by=("dev", "cpu"))
    ev = Evaluator(plan(r))
    ev.push(
        batch(
            "disk.io",
            {"ts": 1 * S, "dev": "a", "latency": 2 * MS},
            {"ts": 1 * S, "dev": "b", "latency": 10},
        )
    )
    ev.push(
        batch(
            "sched.runq",
            {"ts": 1 * S, "cpu": 0, "latency": 5 * MS},
            {"ts": 1 * S, "cpu": 1, "latency": 3 * MS},
            {"ts": 1 * S, "cpu": 2, "latency": 10},
        )
    )
    found = ev.finish()
    assert sorted((f.key["dev"], f.key["cpu"]) for f in found) == [("a", 0), ("a", 1)]
    by_key = {(f.key["dev"], f.key["cpu"]): f.values for f in found}
    assert by_key[("a", 1)] == {"max(disk.io.latency)": 2 * MS, "max(sched.runq.latency)": 3 * MS}


def test_late_events_are_counted_and_finish_is_idempotent() -> None:
    ev = Evaluator(plan(over_rule(0)))
    ev.push(batch("disk.io", {"ts": 5 * S}))
    first = ev.advance(6 * S)
    assert [f.ts for f in first] == [5 * S]
    ev.push(batch("disk.io", {"ts": 5 * S + 500 * MS}, {"ts": 7 * S}))
    assert ev.stats()["late_events"] == 1
    assert [f.ts for f in ev.finish()] == [7 * S]
    assert ev.finish() == []
