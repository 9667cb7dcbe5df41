"""Every clause and aggregate, compiled: the plan records the runtime will read."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dsl import compile_text
from engine.dsl.plan import (
    AggRef,
    AggSpec,
    Arith,
    BoolOp,
    Compare,
    CompiledRule,
    Correlation,
    ExplainSpec,
    Not,
    Num,
    PeriodicSpec,
    PredBool,
    PredCompare,
    PredIn,
    PredMatch,
    PredNot,
    Trigger,
)
from engine.units import Kind

MS = 1_000_000
S = 1_000_000_000


def one(text: str) -> CompiledRule:
    plan = compile_text(text, "t.rules")
    assert len(plan.rules) == 1
    return plan.rules[0]


def test_spec_first_look_examples() -> None:
    plan = compile_text(
        """
# rules/zfs.rules
rule txg_sync_disk_stall
  "Disk p99 latency rises around ZFS transaction-group syncs"
  when p99(disk.io.latency) > 1ms
  within 200ms of zfs.txg.sync
  severity warning
  cooldown 1m

rule memcg_growth_before_oom
  "A cgroup's memory charge was climbing before the OOM killer fired in it"
  when growth(memcg.usage) > 1MiB/s
  before oom.kill within 5m
  by cgroup
  severity critical

rule periodic_disk_spikes
  when p99(disk.io.latency) > 5ms over 1s
  periodic at least 3 times
  explain by zfs.txg.sync, fs.commit
  severity warning
""",
        "rules/zfs.rules",
    )
    a, b, c = plan.rules
    assert a.name == "txg_sync_disk_stall"
    assert a.description.startswith("Disk p99")
    assert (a.file, a.line) == ("rules/zfs.rules", 3)
    assert a.cond == Compare(">", AggRef(0), Num(1 * MS, Kind.DURATION))
    assert a.aggregates == (
        AggSpec(
            "percentile",
            "disk.io",
            "latency",
            None,
            None,
            Kind.DURATION,
            "p99(disk.io.latency)",
            q=99.0,
        ),
    )
    assert a.correlation == Correlation("within", Trigger("zfs.txg.sync", None, True), 200 * MS)
    assert a.cooldown == 60 * S
    assert a.severity == "warning"
    assert a.evidence == (("disk.io", "latency"),)
    assert a.baseline == 60 * S

    assert b.aggregates[0].func == "growth"
    assert b.aggregates[0].kind is Kind.SIZE_RATE
    assert b.cond == Compare(">", AggRef(0), Num(1024.0**2, Kind.SIZE_RATE))
    assert b.correlation == Correlation("before", Trigger("oom.kill", None, False), 300 * S)
    assert b.by == ("cgroup",)
    assert b.severity == "critical"

    assert c.over == 1 * S
    assert c.correlation is None
    assert c.periodic == PeriodicSpec(None, None, 3)
    assert c.explain == ExplainSpec(("zfs.txg.sync", "fs.commit"), 1 * S)
    assert plan.streams == {"disk.io", "zfs.txg.sync", "memcg", "oom.kill"}
    assert plan.fields["disk.io"] == {"latency"}
    assert plan.fields["memcg"] == {"usage", "cgroup"}


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        (
            "within 200ms of zfs.txg.sync",
            Correlation("within", Trigger("zfs.txg.sync", None, True), 200 * MS),
        ),
        (
            "before oom.kill within 5m",
            Correlation("before", Trigger("oom.kill", None, False), 300 * S),
        ),
        ("after fs.commit within 1s", Correlation("after", Trigger("fs.commit", None, True), S)),
        ("during mm.reclaim", Correlation("during", Trigger("mm.reclaim", None, True), 0)),
        (
            'within 1s of zfs.txg.sync where pool == "tank" and dirty > 1GiB',
            Correlation(
                "within",
                Trigger(
                    "zfs.txg.sync",
                    PredBool(
                        "and",
                        (PredCompare("pool", "==", "tank"), PredCompare("dirty", ">", 1024.0**3)),
                    ),
                    True,
                ),
                S,
            ),
        ),
    ],
)
def test_correlations(clause: str, expected: Correlation) -> None:
    r = one(f"rule r when count(disk.io) > 0 {clause}")
    assert r.correlation == expected


def test_over_for_periodic_every_jitter() -> None:
    r = one(
        "rule r when rate(disk.io) > 100/s over 1s for 10s periodic every 30s ± 3s at least 4 times"
    )
    assert (r.over, r.for_) == (S, 10 * S)
    assert r.periodic == PeriodicSpec(30 * S, 3 * S, 4)
    r2 = one("rule r when rate(disk.io) > 100/s over 1s periodic every 30s +- 3s")
    assert r2.periodic == PeriodicSpec(30 * S, 3 * S, 3)
    r3 = one("rule r when rate(disk.io) > 100/s over 1s periodic every 30s")
    assert r3.periodic == PeriodicSpec(30 * S, None, 3)


def test_explain_variants() -> None:
    assert one("rule r when count(disk.io) > 1 over 1s explain").explain == ExplainSpec((), S)
    r = one("rule r when count(disk.io) > 1 over 1s explain within 2s")
    assert r.explain == ExplainSpec((), 2 * S)
    # A `by` right after `explain` belongs to explain, not to the rule.
    r = one("rule r when count(disk.io) > 1 over 1s explain by zfs.txg.sync within 500ms")
    assert r.explain == ExplainSpec(("zfs.txg.sync",), 500 * MS)
    assert r.by == ()


def test_tail_clauses() -> None:
    r = one(
        """rule r "desc"
        when p99(disk.io.latency) > 1ms
        within 200ms of zfs.txg.sync
        by dev, pool
        severity info
        cooldown 30s
        evidence disk.io.latency, disk.io.queue, disk.io.latency
        baseline 5m
        summary "p99 {p99(disk.io.latency)} is {p99(disk.io.latency)/p50(disk.io.latency)}x, {{ok}}"
        notify ops, pager
        labels team = "storage", tier = "db"
        """
    )
    assert r.description == "desc"
    assert r.by == ("dev", "pool")
    assert r.severity == "info"
    assert r.cooldown == 30 * S
    assert r.evidence == (("disk.io", "latency"), ("disk.io", "queue"))
    assert r.baseline == 300 * S
    assert r.notify == ("ops", "pager")
    assert r.labels == (("team", "storage"), ("tier", "db"))
    assert r.summary == (
        "p99 ",
        AggRef(0),
        " is ",
        Arith("/", AggRef(0), AggRef(1), Kind.NUMBER),
        "x, {ok}",
    )
    assert [a.in_cond for a in r.aggregates] == [True, False]
    assert r.aggregates[1].text == "p50(disk.io.latency)"


def test_defaults() -> None:
    r = one("rule r when count(disk.io) > 1 over 1s")
    assert (r.severity, r.cooldown, r.baseline, r.notify, r.labels, r.summary) == (
        "warning",
        0,
        60 * S,
        None,
        (),
        None,
    )
    assert r.evidence == ()  # count aggregates no field
    r = one(
        "rule r when p99(disk.io.latency) > 1ms and max(memcg.usage) > 1GiB"
        " and p50(disk.io.latency) > 0 over 1s"
    )
    assert r.evidence == (("disk.io", "latency"), ("memcg", "usage"))


@pytest.mark.parametrize(
    ("agg", "func", "field", "kind", "q"),
    [
        ("count(disk.io)", "count", None, Kind.NUMBER, None),
        ("rate(disk.io)", "rate", None, Kind.RATE, None),
        ("sum(disk.io.bytes)", "sum", "bytes", Kind.SIZE, None),
        ("avg(disk.io.latency)", "avg", "latency", Kind.DURATION, None),
        ("min(disk.io.latency)", "min", "latency", Kind.DURATION, None),
        ("max(memcg.usage)", "max", "usage", Kind.SIZE, None),
        ("last(memcg.limit)", "last", "limit", Kind.SIZE, None),
        ("p50(disk.io.latency)", "percentile", "latency", Kind.DURATION, 50.0),
        ("p90(disk.io.latency)", "percentile", "latency", Kind.DURATION, 90.0),
        ("p95(disk.io.latency)", "percentile", "latency", Kind.DURATION, 95.0),
        ("p99(disk.io.latency)", "percentile", "latency", Kind.DURATION, 99.0),
        ("p999(disk.io.latency)", "percentile", "latency", Kind.DURATION, 99.9),
        ("percentile(disk.io.latency, 99.9)", "percentile", "latency", Kind.DURATION, 99.9),
        ("stddev(sched.runq.latency)", "stddev", "latency", Kind.DURATION, None),
        ("delta(memcg.usage)", "delta", "usage", Kind.SIZE, None),
        ("growth(memcg.usage)", "growth", "usage", Kind.SIZE_RATE, None),
        ("growth(disk.io.latency)", "growth", "latency", Kind.DURATION_RATE, None),
        ("growth(oom.kill.pid)", "growth", "pid", Kind.RATE, None),
        ("avg(sched.runq.cpu)", "avg", "cpu", Kind.NUMBER, None),
    ],
)
def test_aggregates(agg: str, func: str, field: str | None, kind: Kind, q: float | None) -> None:
    r = one(f"rule r when {agg} > 0 over 1s")
    (a,) = r.aggregates
    assert (a.func, a.field, a.kind, a.q, a.text) == (func, field, kind, q, agg)
    assert a.over is None and a.where is None and a.in_cond


def test_predict_where_over() -> None:
    r = one("rule r when predict(memcg.usage over 10m, 5m) > last(memcg.limit) by cgroup over 1s")
    p, last = r.aggregates
    assert (p.func, p.over, p.horizon, p.kind) == ("predict", 600 * S, 300 * S, Kind.SIZE)
    assert last.func == "last"
    r = one(
        'rule r when count(proc.exec where comm in ("a", "b") and not filename matches "^/tmp"'
        " or pid <= 10) > 3 over 1s"
    )
    assert r.aggregates[0].where == PredBool(
        "or",
        (
            PredBool("and", (PredIn("comm", ("a", "b")), PredNot(PredMatch("filename", "^/tmp")))),
            PredCompare("pid", "<=", 10.0),
        ),
    )


def test_values_key_text() -> None:
    r = one(
        """define hot_write = op == "write" and bytes >= 64KiB
rule r when percentile(  disk.io.latency   where op ==  "read"   # a comment
    over 1s ,  99.9 ) > 5 * p50( disk.io.latency over 5m )
  and p90(disk.io.latency where hot_write) > 1ms
  over 1s
"""
    )
    texts = [a.text for a in r.aggregates]
    assert texts == [
        'percentile(disk.io.latency where op == "read" over 1s, 99.9)',
        "p50(disk.io.latency over 5m)",
        "p90(disk.io.latency where hot_write)",
    ]
    # The define is kept as written in the text but inlined in the predicate.
    assert r.aggregates[2].where == PredBool(
        "and", (PredCompare("op", "==", "write"), PredCompare("bytes", ">=", 65536.0))
    )


def test_same_aggregate_shared() -> None:
    r = one("rule r when p99(disk.io.latency) > 1ms and p99(disk.io.latency) < 1s over 1s")
    assert len(r.aggregates) == 1
    assert r.cond == BoolOp(
        "and",
        (
            Compare(">", AggRef(0), Num(1e6, Kind.DURATION)),
            Compare("<", AggRef(0), Num(1e9, Kind.DURATION)),
        ),
    )


def test_arithmetic_precedence_and_booleans() -> None:
    r = one(
        "rule r when not (p99(disk.io.latency) > 5 * p50(disk.io.latency over 5m) + 1ms"
        " or count(disk.io) < 3) and rate(net.drop) >= 10 over 1s"
    )
    p99, p50, count, rate = (AggRef(i) for i in range(4))
    assert r.cond == BoolOp(
        "and",
        (
            Not(
                BoolOp(
                    "or",
                    (
                        Compare(
                            ">",
                            p99,
                            Arith(
                                "+",
                                Arith("*", Num(5.0, Kind.NUMBER), p50, Kind.DURATION),
                                Num(1e6, Kind.DURATION),
                                Kind.DURATION,
                            ),
                        ),
                        Compare("<", count, Num(3.0, Kind.NUMBER)),
                    ),
                )
            ),
            Compare(">=", rate, Num(10.0, Kind.NUMBER)),
        ),
    )


@pytest.mark.parametrize(
    ("lit", "value", "kind"),
    [
        ("12", 12.0, Kind.NUMBER),
        ("0.5", 0.5, Kind.NUMBER),
        ("1e6", 1e6, Kind.NUMBER),
        ("50%", 0.5, Kind.NUMBER),
        ("5ns", 5.0, Kind.DURATION),
        ("5us", 5e3, Kind.DURATION),
        ("5µs", 5e3, Kind.DURATION),
        ("5μs", 5e3, Kind.DURATION),
        ("5ms", 5e6, Kind.DURATION),
        ("5s", 5e9, Kind.DURATION),
        ("1m", 60e9, Kind.DURATION),
        ("1h", 3600e9, Kind.DURATION),
        ("1B", 1.0, Kind.SIZE),
        ("1KB", 1e3, Kind.SIZE),
        ("1MB", 1e6, Kind.SIZE),
        ("1GB", 1e9, Kind.SIZE),
        ("1KiB", 1024.0, Kind.SIZE),
        ("1MiB", 1024.0**2, Kind.SIZE),
        ("1GiB", 1024.0**3, Kind.SIZE),
        ("2MiB/s", 2 * 1024.0**2, Kind.SIZE_RATE),
        ("2KB/s", 2e3, Kind.SIZE_RATE),
        ("100/s", 100.0, Kind.RATE),
        ("-5", -5.0, Kind.NUMBER),
    ],
)
def test_number_literals(lit: str, value: float, kind: Kind) -> None:
    r = one(f'rule r when count(disk.io) > 0 over 1s summary "{{{lit}}}"')
    assert r.summary == (Num(value, kind),)


def test_units_mix_allowed() -> None:
    # count/rate compare with plain numbers; 0 compares with anything; ratios of a kind.
    one("rule r when rate(disk.io) > 100 and count(disk.io) > 10 over 1s")
    one("rule r when p99(disk.io.latency) > 0 and growth(memcg.usage) > 0 over 1s")
    one("rule r when p99(disk.io.latency) / p50(disk.io.latency) > 5 over 1s")
    one("rule r when growth(disk.io.latency) > 1ms/s over 1s")
    one("rule r when sum(disk.io.bytes) - 1MiB > 4KiB over 1s")


def test_defines_across_files_and_order(tmp_path: Path) -> None:
    from engine.dsl import compile_paths

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "10-defs.rules").write_text(
        'define writes = op == "write"\ndefine big_write = writes and bytes >= 1MiB\n'
    )
    (tmp_path / "a" / "20-use.rules").write_text(
        "rule uses_big when count(disk.io where big_write) > 3 over 1s\n"
        "rule later when lat_p99 > 1ms over 1s\n"
        "define lat_p99 = p99(disk.io.latency)\n"
    )
    (tmp_path / "a" / "notes.txt").write_text("not a rule file")
    plan = compile_paths([str(tmp_path)])
    assert [r.name for r in plan.rules] == ["uses_big", "later"]
    assert plan.rules[0].aggregates[0].where == PredBool(
        "and", (PredCompare("op", "==", "write"), PredCompare("bytes", ">=", 1024.0**2))
    )
    assert plan.rules[1].aggregates[0].text == "p99(disk.io.latency)"


def test_source_is_canonical() -> None:
    r = one("rule r   when count(disk.io)>1   over 1s # c\n")
    assert r.source == "rule r\n  when count(disk.io) > 1\n  over 1s\n"


_KEY_TOKENS = [
    "percentile",
    "(",
    "disk.io.latency",
    " ",
    "where",
    " ",
    "op",
    " ",
    "==",
    " ",
    '"a  b"',
    " ",
    "and",
    " ",
    "bytes",
    " ",
    ">=",
    " ",
    "4KiB",
    " ",
    "over",
    " ",
    "1s",
    ",",
    " ",
    "99.9",
    ")",
]
_CANONICAL = "".join(_KEY_TOKENS)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_values_key_normalizes_any_layout(data: st.DataObject) -> None:
    ws = st.lists(
        st.sampled_from([" ", "\t", "\n", "  ", " # note (x, y)\n"]), min_size=1, max_size=3
    ).map("".join)
    out = []
    for i, tok in enumerate(_KEY_TOKENS):
        nxt = _KEY_TOKENS[i + 1] if i + 1 < len(_KEY_TOKENS) else ""
        if tok == " ":
            out.append(data.draw(ws))
            continue
        out.append(tok)
        # Whitespace is optional after `(` and before `)` and `,`, and dropped there.
        if (tok == "(" or nxt in (")", ",")) and data.draw(st.booleans()):
            out.append(data.draw(ws))
    r = one(f"rule r when {''.join(out)} > 1ms over 1s")
    assert r.aggregates[0].text == _CANONICAL
