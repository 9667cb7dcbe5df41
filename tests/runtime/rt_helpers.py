"""Hand-built plans and batches for the runtime tests (no compiler needed)."""

from __future__ import annotations

from typing import Any

from engine.batch import Batch
from engine.dsl.plan import (
    AggRef,
    AggSpec,
    Compare,
    CompiledRule,
    Correlation,
    Num,
    Plan,
    Pred,
    Trigger,
)
from engine.model import CATALOG
from engine.units import Kind

MS = 1_000_000
S = 1_000_000_000

_DEFAULTS: dict[str, dict[str, Any]] = {
    "disk.io": {
        "dev": "sda",
        "op": "write",
        "bytes": 4096,
        "latency": 100_000,
        "pid": 1,
        "comm": "x",
    },
    "zfs.txg.sync": {"pool": "tank", "txg": 1},
    "fs.commit": {"dev": "sda", "tid": 1},
    "memcg": {"cgroup": "/a", "usage": 0},
    "oom.kill": {"pid": 1, "comm": "x", "cgroup": "/a", "constraint": "memcg"},
    "lost": {"probe": "disk.io", "count": 1},
    "sched.runq": {"pid": 1, "comm": "x", "cpu": 0, "latency": 1000},
    "net.drop": {"reason": "x", "protocol": 6},
}


def batch(stream: str, *rows: dict[str, Any]) -> Batch:
    """Rows with the stream's defaults filled in, sorted in emission order."""
    full = [{**_DEFAULTS.get(stream, {}), **r} for r in rows]
    key = "end" if CATALOG[stream].interval else "ts"
    full.sort(key=lambda r: r[key])
    return Batch.from_rows(stream, full)


def agg(
    func: str,
    stream: str,
    field: str | None = None,
    *,
    where: Pred | None = None,
    over: int | None = None,
    q: float | None = None,
    horizon: int | None = None,
    kind: Kind = Kind.DURATION,
    text: str | None = None,
    in_cond: bool = True,
) -> AggSpec:
    if text is None:
        arg = f"{stream}.{field}" if field else stream
        text = f"{func}({arg})"
    return AggSpec(func, stream, field, where, over, kind, text, q, horizon, in_cond)


def gt(index: int, value: float, kind: Kind = Kind.DURATION, op: str = ">") -> Compare:
    return Compare(op, AggRef(index), Num(value, kind))


def rule(
    name: str, cond: Any, aggs: tuple[AggSpec, ...] | list[AggSpec], **kw: Any
) -> CompiledRule:
    return CompiledRule(name, "", "t.rules", 1, cond, tuple(aggs), **kw)


def within(stream: str, d: int, where: Pred | None = None, kind: str = "within") -> Correlation:
    return Correlation(kind, Trigger(stream, where, CATALOG[stream].interval), d)


def plan(*rules: CompiledRule) -> Plan:
    return Plan(tuple(rules))
