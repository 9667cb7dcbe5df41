"""One rule's AST -> plan.CompiledRule: clause combination rules, defaults, keys.

Expression-level work (names, units, aggregates) is check.ExprChecker's; this module
decides what a rule as a whole means and reports every clause that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..errors import RuleError, SourceSpan
from ..findings import SEVERITIES
from ..model import CATALOG, resolve_dotted
from ..units import Kind
from . import ast, plan
from .check import ExprChecker, kind_name, start_span
from .diag import Sources, did_you_mean
from .format import format_rule
from .summary import compile_summary

__all__ = ["SEVERITIES", "compile_rule", "pred_fields"]

T = TypeVar("T")
_CORRELATIONS = (ast.Within, ast.Before, ast.After, ast.During)
_CLAUSE_NAMES = {
    ast.When: "when",
    ast.Over: "over",
    ast.For: "for",
    ast.By: "by",
    ast.Periodic: "periodic",
    ast.Explain: "explain",
    ast.Severity: "severity",
    ast.Cooldown: "cooldown",
    ast.Evidence: "evidence",
    ast.Baseline: "baseline",
    ast.Summary: "summary",
    ast.Notify: "notify",
    ast.Labels: "labels",
}


def pred_fields(p: plan.Pred | None) -> set[str]:
    """The fields a predicate reads."""
    if p is None:
        return set()
    if isinstance(p, plan.PredBool):
        out: set[str] = set()
        for item in p.items:
            out |= pred_fields(item)
        return out
    if isinstance(p, plan.PredNot):
        return pred_fields(p.item)
    return {p.field}


class _RuleCompiler:
    def __init__(self, rule: ast.Rule, sources: Sources, defines: dict[str, ast.Define]) -> None:
        self.rule = rule
        self.sources = sources
        self.errors: list[RuleError] = []
        self.x = ExprChecker(sources, defines)

    def _sort_clauses(self) -> tuple[dict[type, ast.Clause], ast.Clause | None]:
        """Each clause by kind, and the correlation clause; repeats are errors."""
        seen: dict[type, ast.Clause] = {}
        correlation: ast.Clause | None = None
        for c in self.rule.clauses:
            if isinstance(c, _CORRELATIONS):
                if correlation is not None:
                    self._err(
                        "a rule has at most one correlation clause "
                        "(within ... of, before, after, during)",
                        c.span,
                        f"the first one is at line {correlation.span.line}",
                    )
                else:
                    correlation = c
            elif type(c) in seen:
                self._err(
                    f"a rule has one {_CLAUSE_NAMES[type(c)]!r} clause",
                    c.span,
                    f"the first one is at line {seen[type(c)].span.line}",
                )
            else:
                seen[type(c)] = c
        return seen, correlation

    def run(self) -> plan.CompiledRule | None:
        rule = self.rule
        seen, correlation_clause = self._sort_clauses()
        when = seen.get(ast.When)
        if not isinstance(when, ast.When):
            self.errors.append(
                self.sources.error(
                    f"rule {rule.name.name} has no 'when' clause",
                    rule.name.span,
                    "e.g. when p99(disk.io.latency) > 1ms",
                )
            )
            return None
        cond = self._try(lambda: self.x.cond(when.cond))

        correlation = None
        if correlation_clause is not None:
            correlation = self._try(lambda: self._correlation(correlation_clause))

        over_c = seen.get(ast.Over)
        over = None
        if isinstance(over_c, ast.Over):
            if correlation_clause is not None:
                self._err(
                    "'over' is for rules without a correlation clause; "
                    "an aggregate can take its own: p50(disk.io.latency over 5m)",
                    over_c.span,
                )
            else:
                over = self._try(lambda: self.x.duration(over_c.d, "over", positive=True))
        for_c = seen.get(ast.For)
        for_ = None
        if isinstance(for_c, ast.For):
            if over_c is None:
                self._err("'for' needs 'over': when ... over 1s for 10s", for_c.span)
            else:
                for_ = self._try(lambda: self.x.duration(for_c.d, "for", positive=False))
        periodic = None
        per_c = seen.get(ast.Periodic)
        if isinstance(per_c, ast.Periodic):
            if over_c is None or correlation_clause is not None:
                self._err(
                    "'periodic' needs 'over' (episodes are runs of steps of a sliding window)",
                    per_c.span,
                )
            else:
                periodic = self._try(lambda: self._periodic(per_c))

        # (`for` and `periodic` without `over` have said so already.)
        if (
            cond is not None
            and over_c is None
            and correlation_clause is None
            and not (for_c or per_c)
        ):
            unbounded = [a for a in self.x.aggregates if a.over is None]
            if unbounded:
                self._err(
                    f"{unbounded[0].text} has no window: give the rule 'over D' or a "
                    "correlation clause (within ... of, before, after, during)",
                    when.span,
                    f"e.g. when ... over 1s, or {unbounded[0].text[:-1]} over 1s)",
                )

        agg_streams = {a.stream for a in self.x.aggregates}
        rule_streams = set(agg_streams)
        if correlation is not None:
            rule_streams.add(correlation.trigger.stream)

        by: tuple[str, ...] = ()
        by_c = seen.get(ast.By)
        if isinstance(by_c, ast.By) and cond is not None:
            by = self._try(lambda: self._by(by_c, rule_streams)) or ()

        explain = None
        ex_c = seen.get(ast.Explain)
        if isinstance(ex_c, ast.Explain):
            explain = self._try(lambda: self._explain(ex_c))

        severity = "warning"
        sev_c = seen.get(ast.Severity)
        if isinstance(sev_c, ast.Severity):
            if sev_c.level.name in SEVERITIES:
                severity = sev_c.level.name
            else:
                self._err(
                    f"unknown severity {sev_c.level.name!r}; expected info, warning or critical",
                    sev_c.level.span,
                    did_you_mean(sev_c.level.name, SEVERITIES),
                )
        cooldown = 0
        cd_c = seen.get(ast.Cooldown)
        if isinstance(cd_c, ast.Cooldown):
            cooldown = self._try(lambda: self.x.duration(cd_c.d, "cooldown", positive=False)) or 0
        baseline = 60_000_000_000
        bl_c = seen.get(ast.Baseline)
        if isinstance(bl_c, ast.Baseline):
            baseline = (
                self._try(lambda: self.x.duration(bl_c.d, "baseline", positive=True)) or baseline
            )

        evidence: tuple[tuple[str, str], ...] = ()
        ev_c = seen.get(ast.Evidence)
        if isinstance(ev_c, ast.Evidence):
            evidence = self._try(lambda: self._evidence(ev_c)) or ()
        else:
            evidence = tuple(
                dict.fromkeys(
                    (a.stream, a.field)
                    for a in self.x.aggregates
                    if a.field is not None and a.in_cond
                )
            )

        notify = None
        no_c = seen.get(ast.Notify)
        if isinstance(no_c, ast.Notify):
            notify = tuple(n.name for n in no_c.sinks)
        labels: tuple[tuple[str, str], ...] = ()
        la_c = seen.get(ast.Labels)
        if isinstance(la_c, ast.Labels):
            labels = self._try(lambda: self._labels(la_c)) or ()

        summary = None
        su_c = seen.get(ast.Summary)
        if isinstance(su_c, ast.Summary):
            self.x.in_cond = False
            summary = self._try(lambda: compile_summary(su_c.template, self.x))
            self.x.in_cond = True

        if self.errors or cond is None:
            return None
        return plan.CompiledRule(
            name=rule.name.name,
            description=rule.description.value if rule.description else "",
            file=rule.span.file,
            line=rule.span.line,
            cond=cond,
            aggregates=tuple(self.x.aggregates),
            correlation=correlation,
            over=over,
            for_=for_,
            by=by,
            periodic=periodic,
            explain=explain,
            severity=severity,
            cooldown=cooldown,
            evidence=evidence,
            baseline=baseline,
            summary=summary,
            notify=notify,
            labels=labels,
            source=format_rule(rule),
        )

    # ---- helpers ----

    def _err(self, message: str, span: SourceSpan, hint: str = "") -> None:
        self.errors.append(self.sources.error(message, span, hint))

    def _try(self, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except RuleError as e:
            self.errors.append(e)
            return None

    def _stream(self, name: ast.Name, what: str = "a trigger is a stream") -> str:
        if name.name in CATALOG:
            return name.name
        r = resolve_dotted(name.name)
        if r is not None:
            raise self.sources.error(
                f"{name.name} is a field; {what}", name.span, f"did you mean {r[0]}?"
            )
        raise self.sources.error(
            f"unknown stream {name.name!r}", name.span, did_you_mean(name.name, CATALOG)
        )

    def _correlation(self, c: ast.Clause) -> plan.Correlation:
        assert isinstance(c, _CORRELATIONS)
        trig = c.trigger
        stream = self._stream(trig.stream)
        where = self.x.pred(trig.where, stream) if trig.where is not None else None
        interval = CATALOG[stream].interval
        trigger = plan.Trigger(stream, where, interval)
        if isinstance(c, ast.During):
            if not interval:
                raise self.sources.error(
                    f"'during' needs an interval stream; {stream} is a point stream",
                    trig.stream.span,
                    "use within D of, before or after for point streams",
                )
            return plan.Correlation("during", trigger, 0)
        kind = {ast.Within: "within", ast.Before: "before", ast.After: "after"}[type(c)]
        d = self.x.duration(c.d, kind, positive=False)
        return plan.Correlation(kind, trigger, d)

    def _periodic(self, c: ast.Periodic) -> plan.PeriodicSpec:
        every = self.x.duration(c.every, "every", positive=True) if c.every else None
        jitter = self.x.duration(c.jitter, "±", positive=False) if c.jitter else None
        at_least = 3
        if c.at_least is not None:
            n = c.at_least
            if n.kind is not Kind.NUMBER or n.value != int(n.value) or n.value < 2:
                raise self.sources.error("at least N times takes a whole number N >= 2", n.span)
            at_least = int(n.value)
        return plan.PeriodicSpec(every, jitter, at_least)

    def _by(self, c: ast.By, streams: set[str]) -> tuple[str, ...]:
        out: list[str] = []
        for n in c.fields:
            name = n.name
            r = resolve_dotted(name)
            if "." in name and r is not None and r[1] is not None:
                name = r[1]
            if not any(name in CATALOG[s].fields for s in streams):
                known = sorted({f for s in streams for f in CATALOG[s].fields})
                raise self.sources.error(
                    f"no stream of this rule ({', '.join(sorted(streams)) or 'none'}) "
                    f"has a field {n.name!r}",
                    n.span,
                    did_you_mean(name, known),
                )
            if name in out:
                raise self.sources.error(f"{name!r} is listed twice", n.span)
            out.append(name)
        return tuple(out)

    def _explain(self, c: ast.Explain) -> plan.ExplainSpec:
        streams = tuple(self._stream(n, "explain ranks streams") for n in c.streams)
        within = 1_000_000_000
        if c.within is not None:
            within = self.x.duration(c.within, "explain within", positive=False)
        return plan.ExplainSpec(streams, within)

    def _evidence(self, c: ast.Evidence) -> tuple[tuple[str, str], ...]:
        out: list[tuple[str, str]] = []
        for n in c.fields:
            r = resolve_dotted(n.name)
            if r is None:
                raise self.sources.error(
                    f"unknown stream in {n.name!r}",
                    n.span,
                    did_you_mean(n.name, [f"{s}.{f}" for s in CATALOG for f in CATALOG[s].fields]),
                )
            stream, field = r
            spec = CATALOG[stream]
            if field is None or field not in spec.fields:
                raise self.sources.error(
                    f"evidence takes fields (stream.field); {stream} has no field {field or ''!r}"
                    if field
                    else "evidence takes fields, such as disk.io.latency",
                    n.span,
                    did_you_mean(n.name, [f"{stream}.{f}" for f in spec.numeric_fields()]),
                )
            if spec.fields[field].kind is Kind.STRING:
                raise self.sources.error(
                    f"evidence needs a numeric field; {n.name} is {kind_name(Kind.STRING)}",
                    n.span,
                )
            out.append((stream, field))
        return tuple(dict.fromkeys(out))

    def _labels(self, c: ast.Labels) -> tuple[tuple[str, str], ...]:
        out: dict[str, str] = {}
        for name, value in c.pairs:
            if name.name in out:
                raise self.sources.error(f"label {name.name!r} is given twice", name.span)
            out[name.name] = value.value
        return tuple(out.items())


def compile_rule(
    rule: ast.Rule, sources: Sources, defines: dict[str, ast.Define]
) -> tuple[plan.CompiledRule | None, list[RuleError]]:
    """The compiled rule, or None with every error found in it."""
    c = _RuleCompiler(rule, sources, defines)
    try:
        compiled = c.run()
    except RecursionError:
        # The checker and formatter loop over flat chains and stacked `not`s; what is
        # left to recurse is the `when` expression (or one of its defines).
        when = next((cl for cl in rule.clauses if isinstance(cl, ast.When)), None)
        span = rule.name.span if when is None else start_span(when.cond)
        return None, [sources.error("expression nested too deeply", span)]
    return compiled, c.errors
