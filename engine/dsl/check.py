"""The semantic pass over expressions: names, units, aggregates -> plan records.

Conditions, value expressions and per-event predicates share one syntax tree; this
pass decides which is which from context, resolves stream/field names against the
catalog (with suggestions), inlines defines, checks units, and numbers every
aggregate of a rule. Each problem raises a RuleError at the offending token.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TypeVar

from ..errors import RuleError, SourceSpan
from ..model import CATALOG, FieldSpec, resolve_dotted
from ..units import Kind, compatible
from . import ast, plan
from .diag import Sources, did_you_mean

__all__ = ["AGGREGATES", "ExprChecker", "kind_name", "start_span"]

_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
AGGREGATES: tuple[str, ...] = tuple(
    [
        "count",
        "rate",
        "sum",
        "avg",
        "min",
        "max",
        "last",
        "p50",
        "p90",
        "p95",
        "p99",
        "p999",
        "percentile",
        "stddev",
        "delta",
        "growth",
        "predict",
    ]
)

_KIND_NAMES = {
    Kind.NUMBER: "a plain number",
    Kind.DURATION: "a duration",
    Kind.SIZE: "a size",
    Kind.RATE: "a rate (per second)",
    Kind.SIZE_RATE: "a size per second",
    Kind.DURATION_RATE: "a duration per second",
    Kind.STRING: "a string",
}
_EXAMPLE_UNIT = {
    Kind.DURATION: "ms",
    Kind.SIZE: "MiB",
    Kind.SIZE_RATE: "MiB/s",
    Kind.DURATION_RATE: "ms/s",
    Kind.RATE: "/s",
}
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}

T = TypeVar("T")


def kind_name(kind: Kind) -> str:
    return _KIND_NAMES[kind]


def start_span(node: ast.Expr) -> SourceSpan:
    """Where an expression begins in the source (operators record their own position)."""
    while isinstance(node, ast.Binary | ast.Compare | ast.In | ast.Match):
        node = node.left
    return node.span


# Value expressions are evaluated recursively at run time: a chain of operations on
# aggregates longer than this is an error at compile time (constant parts are folded).
MAX_VALUE_DEPTH = 200
MAX_DEFINE_DEPTH = 64  # a define using a define using a define …


def _strip_nots(node: ast.Not) -> tuple[ast.Expr, bool]:
    """The operand under a stack of `not`s, and whether their number is odd
    (`not not c` is c: the runtime's conditions are plain booleans)."""
    odd = False
    item: ast.Expr = node
    while isinstance(item, ast.Not):
        item = item.item
        odd = not odd
    return item, odd


def _arith(op: str, a: plan.ValueExpr, b: plan.ValueExpr, kind: Kind) -> plan.ValueExpr:
    """`a op b`; folded to a number when both are numbers and the result is one (the
    same float operation the runtime would do, so the same value; x/0 and NaN, which
    mean "no value" at run time, are left to it)."""
    if isinstance(a, plan.Num) and isinstance(b, plan.Num):
        x, y = a.value, b.value
        v = x + y if op == "+" else x - y if op == "-" else x * y if op == "*" else None
        if op == "/" and y != 0:
            v = x / y
        if v is not None and not math.isnan(v):
            return plan.Num(v, kind)
    return plan.Arith(op, a, b, kind)


def _depth(v: plan.ValueExpr) -> int:
    """How deeply operations nest in a value expression (without recursion)."""
    best = 0
    stack: list[tuple[plan.ValueExpr, int]] = [(v, 0)]
    while stack:
        e, d = stack.pop()
        if isinstance(e, plan.Arith):
            stack.append((e.left, d + 1))
            stack.append((e.right, d + 1))
        else:
            best = max(best, d)
    return best


def _is_zero(node: ast.Expr) -> bool:
    return isinstance(node, ast.Num) and node.value == 0


def _all_fields() -> list[str]:
    return [f"{s}.{f}" for s, spec in CATALOG.items() for f in spec.fields]


_STREAM_AND_FIELDS = [*CATALOG, *_all_fields()]


class ExprChecker:
    """Lowers one rule's expressions; collects its aggregates in order of appearance."""

    def __init__(self, sources: Sources, defines: dict[str, ast.Define]) -> None:
        self.sources = sources
        self.defines = defines
        self.aggregates: list[plan.AggSpec] = []
        self._by_text: dict[str, int] = {}
        self._stack: list[str] = []
        self.in_cond = True

    def error(self, message: str, span: SourceSpan, hint: str = "") -> RuleError:
        return self.sources.error(message, span, hint)

    # ---- defines ----

    def _inline(self, name: ast.Name, lower: Callable[[ast.Expr], T]) -> T:
        define = self.defines[name.name]
        if name.name in self._stack:
            raise self.error(f"define {name.name} refers to itself", name.span)
        if len(self._stack) >= MAX_DEFINE_DEPTH:
            raise self.error(
                f"defines nested too deeply (more than {MAX_DEFINE_DEPTH} levels)", name.span
            )
        self._stack.append(name.name)
        try:
            return lower(define.body)
        except RuleError as e:
            if len(self._stack) > 1:
                raise
            raise self.error(
                f"in define {name.name} ({e.span}): {e.message}", name.span, e.hint
            ) from None
        finally:
            self._stack.pop()

    # ---- conditions ----

    def cond(self, node: ast.Expr) -> plan.Cond:
        if isinstance(node, ast.Compare):
            left, lk = self.value(node.left)
            right, rk = self.value(node.right)
            self._check_mix(node.op, node.left, lk, node.right, rk, compare=True)
            return plan.Compare(node.op, left, right)
        if isinstance(node, ast.BoolExpr):
            return plan.BoolOp(node.op, tuple(self.cond(i) for i in node.items))
        if isinstance(node, ast.Not):
            item, odd = _strip_nots(node)
            inner = self.cond(item)
            return plan.Not(inner) if odd else inner
        if isinstance(node, ast.Name) and node.name in self.defines:
            return self._inline(node, self.cond)
        if isinstance(node, ast.In | ast.Match):
            what = "in" if isinstance(node, ast.In) else "matches"
            raise self.error(
                f"'{what}' compares fields of single events; use it in a where clause",
                node.span,
                'e.g. count(proc.exec where comm matches "^kworker") > 10',
            )
        raise self.error(
            "expected a condition, such as p99(disk.io.latency) > 1ms", start_span(node)
        )

    def _check_mix(
        self, op: str, ln: ast.Expr, lk: Kind, rn: ast.Expr, rk: Kind, compare: bool
    ) -> Kind:
        """The kind of `ln op rn`, or an error when the units do not mix."""
        if op in ("*", "/"):
            if op == "*" and lk is Kind.NUMBER:
                return rk
            if rk is Kind.NUMBER:
                return lk
            if op == "/" and lk is rk:
                return Kind.NUMBER
            verb = "multiply" if op == "*" else "divide"
            raise self.error(
                f"cannot {verb} {kind_name(lk)} by {kind_name(rk)}",
                start_span(rn),
                "plain numbers multiply and divide any unit",
            )
        if compatible(lk, rk):
            return rk if lk is Kind.NUMBER else lk
        if _is_zero(ln):
            return rk
        if _is_zero(rn):
            return lk
        verb = "compare" if compare else ("add" if op == "+" else "subtract")
        hint = ""
        lit, other = (rn, lk) if isinstance(rn, ast.Num) else (ln, rk)
        if isinstance(lit, ast.Num) and lit.kind is Kind.NUMBER and other in _EXAMPLE_UNIT:
            hint = f"write the unit, e.g. {lit.text}{_EXAMPLE_UNIT[other]}"
        raise self.error(
            f"cannot {verb} {kind_name(lk)} with {kind_name(rk)}", start_span(rn), hint
        )

    # ---- value expressions ----

    def value(self, node: ast.Expr) -> tuple[plan.ValueExpr, Kind]:
        if isinstance(node, ast.Num):
            return plan.Num(node.value, node.kind), node.kind
        if isinstance(node, ast.Call):
            return self.aggregate(node)
        if isinstance(node, ast.Binary):
            # A flat chain `a + b - c …` is a left-deep tree: walk its left spine in a
            # loop (only right operands, parenthesized or of higher precedence,
            # recurse), so that a long chain is no deeper for Python than a short one.
            spine: list[ast.Binary] = []
            leaf: ast.Expr = node
            while isinstance(leaf, ast.Binary):
                spine.append(leaf)
                leaf = leaf.left
            acc, ak = self.value(leaf)
            for b in reversed(spine):
                right, rk = self.value(b.right)
                ak = self._check_mix(b.op, b.left, ak, b.right, rk, compare=False)
                acc = _arith(b.op, acc, right, ak)
            if _depth(acc) > MAX_VALUE_DEPTH:
                raise self.error(
                    f"expression nested too deeply (more than {MAX_VALUE_DEPTH} operations "
                    "on aggregates in a row)",
                    start_span(node),
                )
            return acc, ak
        if isinstance(node, ast.Name):
            if node.name in self.defines:
                return self._inline(node, self.value)
            r = resolve_dotted(node.name)
            if r is not None and r[1] is not None and r[1] in CATALOG[r[0]].fields:
                raise self.error(
                    f"{node.name} is a field of single events; aggregate it",
                    node.span,
                    f"e.g. p99({node.name}) or max({node.name})",
                )
            if r is not None and r[1] is None:
                raise self.error(
                    f"{node.name} is a stream; aggregate it",
                    node.span,
                    f"e.g. count({node.name}) or rate({node.name})",
                )
            raise self.error(
                f"unknown name {node.name!r}",
                node.span,
                did_you_mean(node.name, [*self.defines, *_STREAM_AND_FIELDS]),
            )
        if isinstance(node, ast.Str):
            raise self.error("a string is not a value here", node.span)
        raise self.error("expected a value, found a condition", start_span(node))

    def aggregate(self, call: ast.Call) -> tuple[plan.AggRef, Kind]:
        func = call.func
        if func not in AGGREGATES:
            raise self.error(
                f"unknown aggregate {func!r}", call.span, did_you_mean(func, AGGREGATES)
            )
        target = call.target
        r = resolve_dotted(target.name)
        if r is None:
            raise self.error(
                f"unknown stream {target.name!r}",
                target.span,
                did_you_mean(target.name, _STREAM_AND_FIELDS),
            )
        stream, fname = r
        spec = CATALOG[stream]
        field: FieldSpec | None = None
        if func in ("count", "rate"):
            if fname is not None:
                raise self.error(
                    f"{func} counts events of a stream, not a field",
                    target.span,
                    f"did you mean {func}({stream})?",
                )
        else:
            numeric = [f"{stream}.{f}" for f in spec.numeric_fields()]
            if fname is None:
                raise self.error(
                    f"{func} needs a field of {stream}",
                    target.span,
                    f"e.g. {func}({numeric[0]})" if numeric else "",
                )
            field = spec.fields.get(fname)
            if field is None:
                raise self.error(
                    f"stream {stream} has no field {fname!r}",
                    target.span,
                    did_you_mean(target.name, [f"{stream}.{f}" for f in spec.fields]),
                )
            if field.kind is Kind.STRING:
                raise self.error(
                    f"{func} needs a numeric field; {target.name} is a string", target.span
                )
        where = self.pred(call.where, stream) if call.where is not None else None
        over = None
        if call.over is not None:
            over = self.duration(call.over, "over", positive=True)
        q = horizon = None
        if func == "percentile":
            if call.arg is None:
                raise self.error(
                    "percentile needs the percentile last: percentile(F, 99.9)", call.span
                )
            if call.arg.kind is not Kind.NUMBER or not 0 < call.arg.value <= 100:
                raise self.error("a percentile is a plain number with 0 < Q <= 100", call.arg.span)
            q = call.arg.value
        elif func == "predict":
            if call.arg is None:
                raise self.error(
                    "predict needs how far ahead, last: predict(memcg.usage, 5m)", call.span
                )
            horizon = self.duration(call.arg, "predict", positive=False)
        elif call.arg is not None:
            raise self.error(f"{func} takes no second argument", call.arg.span)
        if func in _PERCENTILES:
            q = _PERCENTILES[func]
        if func == "count":
            kind = Kind.NUMBER
        elif func == "rate":
            kind = Kind.RATE
        elif func == "growth":
            assert field is not None
            kind = field.kind.per_second()
        else:
            assert field is not None
            kind = field.kind
        text = call.text
        index = self._by_text.get(text)
        if index is None:
            index = len(self.aggregates)
            self._by_text[text] = index
            self.aggregates.append(
                plan.AggSpec(
                    func="percentile" if func in _PERCENTILES else func,
                    stream=stream,
                    field=fname,
                    where=where,
                    over=over,
                    kind=kind,
                    text=text,
                    q=q,
                    horizon=horizon,
                    in_cond=self.in_cond,
                )
            )
        return plan.AggRef(index), kind

    def duration(self, num: ast.Num, what: str, positive: bool) -> int:
        if num.kind is not Kind.DURATION and not (num.value == 0 and not positive):
            raise self.error(
                f"{what} takes a duration, such as 200ms or 5m",
                num.span,
                f"write the unit, e.g. {num.text}s" if num.kind is Kind.NUMBER else "",
            )
        if num.value < 0 or (positive and num.value == 0):
            raise self.error(
                f"{what} takes a {'positive' if positive else 'non-negative'} duration",
                num.span,
            )
        return round(num.value)

    # ---- per-event predicates ----

    def pred(self, node: ast.Expr, stream: str) -> plan.Pred:
        if isinstance(node, ast.BoolExpr):
            return plan.PredBool(node.op, tuple(self.pred(i, stream) for i in node.items))
        if isinstance(node, ast.Not):
            item, odd = _strip_nots(node)
            inner = self.pred(item, stream)
            return plan.PredNot(inner) if odd else inner
        if isinstance(node, ast.Name) and node.name in self.defines:
            return self._inline(node, lambda body: self.pred(body, stream))
        if isinstance(node, ast.Compare):
            return self._pred_compare(node, stream)
        if isinstance(node, ast.In):
            field = self._field(node.left, stream)
            values = tuple(self._literal_for(field, v, "==", stream) for v in node.values)
            return plan.PredIn(field.name, values)
        if isinstance(node, ast.Match):
            field = self._field(node.left, stream)
            if field.kind is not Kind.STRING:
                raise self.error(
                    f"matches needs a string field; {field.name} is {kind_name(field.kind)}",
                    start_span(node.left),
                )
            try:
                re.compile(node.pattern.value)
            except (re.error, RecursionError, OverflowError) as e:
                raise self.error(f"bad regular expression: {e}", node.pattern.span) from None
            return plan.PredMatch(field.name, node.pattern.value)
        if isinstance(node, ast.Name):
            field = self._field(node, stream)
            raise self.error(
                f"{field.name} alone is not a predicate; compare it",
                node.span,
                f'e.g. {field.name} == "..."'
                if field.kind is Kind.STRING
                else f"e.g. {field.name} > 0",
            )
        raise self.error(
            f'expected a predicate on fields of {stream}, such as op == "write"',
            start_span(node),
        )

    def _pred_compare(self, node: ast.Compare, stream: str) -> plan.Pred:
        left, right, op = node.left, node.right, node.op
        if not self._is_field_ref(left, stream) and self._is_field_ref(right, stream):
            left, right, op = right, left, _FLIP[op]
        field = self._field(left, stream)
        value = self._literal_for(field, right, op, stream)
        return plan.PredCompare(field.name, op, value)

    def _is_field_ref(self, node: ast.Expr, stream: str) -> bool:
        if not isinstance(node, ast.Name):
            return False
        if node.name in CATALOG[stream].fields:
            return True
        r = resolve_dotted(node.name)
        return r is not None and r[0] == stream and r[1] is not None

    def _field(self, node: ast.Expr, stream: str) -> FieldSpec:
        spec = CATALOG[stream]
        if not isinstance(node, ast.Name):
            raise self.error(
                f"expected a field of {stream} here",
                start_span(node),
                "a predicate compares a field with a literal: bytes >= 64KiB",
            )
        name = node.name
        if name in spec.fields:
            return spec.fields[name]
        r = resolve_dotted(name)
        if r is not None and r[0] == stream and r[1] in spec.fields:
            return spec.fields[r[1]]
        raise self.error(
            f"stream {stream} has no field {name!r}",
            node.span,
            did_you_mean(name.rsplit(".", 1)[-1], list(spec.fields)),
        )

    def _literal_for(self, field: FieldSpec, node: ast.Expr, op: str, stream: str) -> float | str:
        if isinstance(node, ast.Name) and node.name in self.defines:
            body = self.defines[node.name].body
            if isinstance(body, ast.Num | ast.Str):
                node = body
        if field.kind is Kind.STRING:
            if not isinstance(node, ast.Str):
                raise self.error(
                    f"{field.name} is a string; compare it with a string literal",
                    start_span(node),
                    f'did you mean "{node.name}"?' if isinstance(node, ast.Name) else "",
                )
            if op not in ("==", "!="):
                raise self.error(f"strings compare only with == and !=, not {op}", start_span(node))
            return node.value
        if not isinstance(node, ast.Num):
            example = {Kind.DURATION: "5ms", Kind.SIZE: "64KiB"}.get(field.kind, "0")
            raise self.error(
                f"compare {field.name} with a literal, such as {example}", start_span(node)
            )
        if not (compatible(field.kind, node.kind) or node.value == 0):
            hint = ""
            if node.kind is Kind.NUMBER and field.kind in _EXAMPLE_UNIT:
                hint = f"write the unit, e.g. {node.text}{_EXAMPLE_UNIT[field.kind]}"
            raise self.error(
                f"cannot compare {stream}.{field.name} ({kind_name(field.kind)}) with "
                f"{kind_name(node.kind)}",
                node.span,
                hint,
            )
        return node.value
