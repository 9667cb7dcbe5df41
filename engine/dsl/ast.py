"""The rule language's syntax tree: frozen records, each with where it was written.

Spans (and derived source text) are left out of equality, so a formatted rule that
is parsed again compares equal to the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SourceSpan
from ..units import Kind

__all__ = [
    "After",
    "Baseline",
    "Before",
    "Binary",
    "BoolExpr",
    "By",
    "Call",
    "Clause",
    "Compare",
    "Cooldown",
    "Define",
    "During",
    "Evidence",
    "Explain",
    "Expr",
    "File",
    "For",
    "In",
    "Item",
    "Labels",
    "Match",
    "Name",
    "Not",
    "Notify",
    "Num",
    "Over",
    "Periodic",
    "Rule",
    "Severity",
    "Str",
    "Summary",
    "TriggerRef",
    "When",
    "Within",
]

NOWHERE = SourceSpan("<none>", 0, 0)


# ---- expressions (one tree for conditions, value expressions and predicates) ----


@dataclass(frozen=True, slots=True)
class Num:
    value: float  # in the base unit of `kind`
    kind: Kind
    text: str  # as written: `1ms`, `64KiB`, `-5`
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Str:
    value: str  # escapes resolved
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Name:
    name: str  # possibly dotted: `disk.io.latency`, `op`, `hot_write`
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    target: Name
    where: Expr | None = None
    over: Num | None = None
    arg: Num | None = None
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)
    text: str = field(default="", compare=False)  # normalized source: the `values` key


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * /
    left: Expr
    right: Expr
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)  # of the operator


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # > >= < <= == !=
    left: Expr
    right: Expr
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)  # of the operator


@dataclass(frozen=True, slots=True)
class In:
    left: Expr
    values: tuple[Expr, ...]
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Match:
    left: Expr
    pattern: Str
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class BoolExpr:
    op: str  # and | or
    items: tuple[Expr, ...]
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


Expr = Num | Str | Name | Call | Binary | Compare | In | Match | BoolExpr | Not


# ---- clauses ----


@dataclass(frozen=True, slots=True)
class TriggerRef:
    stream: Name
    where: Expr | None = None


@dataclass(frozen=True, slots=True)
class When:
    cond: Expr
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Within:
    d: Num
    trigger: TriggerRef
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Before:
    trigger: TriggerRef
    d: Num
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class After:
    trigger: TriggerRef
    d: Num
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class During:
    trigger: TriggerRef
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Over:
    d: Num
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class For:
    d: Num
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class By:
    fields: tuple[Name, ...]
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Periodic:
    every: Num | None = None
    jitter: Num | None = None
    at_least: Num | None = None
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Explain:
    streams: tuple[Name, ...] = ()
    within: Num | None = None
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Severity:
    level: Name
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Cooldown:
    d: Num
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Evidence:
    fields: tuple[Name, ...]
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Baseline:
    d: Num
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Summary:
    template: Str
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Notify:
    sinks: tuple[Name, ...]
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Labels:
    pairs: tuple[tuple[Name, Str], ...]
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


Clause = (
    When
    | Within
    | Before
    | After
    | During
    | Over
    | For
    | By
    | Periodic
    | Explain
    | Severity
    | Cooldown
    | Evidence
    | Baseline
    | Summary
    | Notify
    | Labels
)


# ---- top level ----


@dataclass(frozen=True, slots=True)
class Rule:
    name: Name
    description: Str | None
    clauses: tuple[Clause, ...]
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Define:
    name: Name
    body: Expr
    span: SourceSpan = field(default=NOWHERE, compare=False, repr=False)


Item = Rule | Define


@dataclass(frozen=True, slots=True)
class File:
    items: tuple[Item, ...]
    file: str = field(default="<string>", compare=False)
