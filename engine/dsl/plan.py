"""Compiled rules: what the runtime evaluates and what decides which probes attach.

The compiler (dsl.compile) turns checked ASTs into these frozen records: names
resolved against the catalog, defines inlined, units checked and converted to base
units (ns, bytes, per second), every aggregate numbered. The runtime reads nothing
else of a rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..units import Kind

__all__ = [
    "AggRef",
    "AggSpec",
    "Arith",
    "BoolOp",
    "Compare",
    "CompiledRule",
    "Cond",
    "Correlation",
    "ExplainSpec",
    "Not",
    "Num",
    "PeriodicSpec",
    "Plan",
    "Pred",
    "PredBool",
    "PredCompare",
    "PredIn",
    "PredMatch",
    "PredNot",
    "Trigger",
    "ValueExpr",
]


# ---- per-event predicates (`where`, defines used there): fields of one stream ----


@dataclass(frozen=True, slots=True)
class PredCompare:
    field: str
    op: str  # == != < <= > >=
    value: float | str  # numbers in the field's base unit


@dataclass(frozen=True, slots=True)
class PredIn:
    field: str
    values: tuple[float | str, ...]


@dataclass(frozen=True, slots=True)
class PredMatch:
    field: str
    pattern: str  # Python `re`, searched anywhere in the string


@dataclass(frozen=True, slots=True)
class PredBool:
    op: str  # "and" | "or"
    items: tuple[Pred, ...]


@dataclass(frozen=True, slots=True)
class PredNot:
    item: Pred


Pred = PredCompare | PredIn | PredMatch | PredBool | PredNot


# ---- aggregates and value expressions ----


@dataclass(frozen=True, slots=True)
class AggSpec:
    """One aggregate of a rule.

    func is one of: count rate sum avg min max last percentile stddev delta growth
    predict (p50/p90/p95/p99/p999 compile to percentile with q 50/90/95/99/99.9).
    """

    func: str
    stream: str
    field: str | None  # None for count and rate
    where: Pred | None
    over: int | None  # ns; None = the rule's window
    kind: Kind  # of the result
    text: str  # canonical source text: the key of this value in a finding's `values`
    q: float | None = None  # percentile, 0 < q <= 100
    horizon: int | None = None  # predict: ns past the window's end
    in_cond: bool = True  # False for aggregates only the summary uses


@dataclass(frozen=True, slots=True)
class Num:
    value: float  # in the base unit of `kind`
    kind: Kind


@dataclass(frozen=True, slots=True)
class AggRef:
    index: int  # into CompiledRule.aggregates


@dataclass(frozen=True, slots=True)
class Arith:
    op: str  # + - * /
    left: ValueExpr
    right: ValueExpr
    kind: Kind


ValueExpr = Num | AggRef | Arith


# ---- conditions ----


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # > >= < <= == !=
    left: ValueExpr
    right: ValueExpr


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Cond, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Cond


Cond = Compare | BoolOp | Not


# ---- clauses ----


@dataclass(frozen=True, slots=True)
class Trigger:
    stream: str
    where: Pred | None
    interval: bool  # the stream's events are intervals


@dataclass(frozen=True, slots=True)
class Correlation:
    """kind: within | before | after | during. `d` in ns (0 for during).

    Window per trigger occurrence:
      within: [start - d, end + d]; before: [start - d, start];
      after: [end, end + d];        during: [start, end].
    """

    kind: str
    trigger: Trigger
    d: int


@dataclass(frozen=True, slots=True)
class PeriodicSpec:
    every: int | None  # ns
    jitter: int | None  # ns; None = 10% of the mean interval
    at_least: int = 3


@dataclass(frozen=True, slots=True)
class ExplainSpec:
    streams: tuple[str, ...]  # empty: every stream seen except those in the condition
    within: int = 1_000_000_000  # ns


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    description: str
    file: str
    line: int
    cond: Cond
    aggregates: tuple[AggSpec, ...]
    correlation: Correlation | None = None
    over: int | None = None  # ns, sliding window length
    for_: int | None = None  # ns
    by: tuple[str, ...] = ()
    periodic: PeriodicSpec | None = None
    explain: ExplainSpec | None = None
    severity: str = "warning"
    cooldown: int = 0  # ns
    evidence: tuple[tuple[str, str], ...] = ()  # (stream, field)
    baseline: int = 60_000_000_000  # ns
    # Parts of the summary template: literal text, or an expression with its kind.
    summary: tuple[str | ValueExpr, ...] | None = None
    notify: tuple[str, ...] | None = None  # None: every configured sink
    labels: tuple[tuple[str, str], ...] = ()
    source: str = ""  # the rule's canonical text (dsl.format), for explain/listing

    @property
    def streams(self) -> frozenset[str]:
        """Every stream the rule reads: aggregates, trigger, evidence."""
        s = {a.stream for a in self.aggregates}
        s.update(st for st, _ in self.evidence)
        if self.correlation is not None:
            s.add(self.correlation.trigger.stream)
        return frozenset(s)


@dataclass(frozen=True, slots=True)
class Plan:
    rules: tuple[CompiledRule, ...]
    # Streams and fields the rules read: what sources must provide and probes attach.
    fields: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def streams(self) -> frozenset[str]:
        out: set[str] = set()
        for r in self.rules:
            out |= r.streams
        return frozenset(out)
