"""The pyparsing grammar of one `rule` or `define` item, producing ast records.

Built once at import. Every terminal records its failures, so that a syntax error
is reported at the farthest position any alternative reached (the first token that
cannot continue a valid parse) with everything that would have been accepted there,
rather than at pyparsing's choice of position. `-` (ErrorStop) after keywords stops
useless backtracking once a clause has committed.
"""

from __future__ import annotations

import bisect
import re
import string
import sys
import threading
from dataclasses import dataclass
from typing import Any

import pyparsing as pp

from ..errors import SourceSpan
from . import ast
from .lexer import KEYWORDS, NUMBER_RE, decode_string, normalize_source, parse_number

__all__ = ["CLAUSE_KEYWORDS", "ParseContext", "SyntaxFailure", "parse_expr", "parse_item"]

# Packrat is off on purpose: the grammar does not backtrack (keyword dispatch, one
# NAME-or-call atom, flat expressions), and the cache costs more than it saves
# (bench/bench_compile.py: 1,000 rules in 0.88s CPU with packrat, 0.56s without). It
# would also change every pyparsing user in the process, as the switch is global.

CLAUSE_KEYWORDS: tuple[str, ...] = tuple(
    [
        "when",
        "within",
        "before",
        "after",
        "during",
        "over",
        "for",
        "by",
        "periodic",
        "explain",
        "severity",
        "cooldown",
        "evidence",
        "baseline",
        "summary",
        "notify",
        "labels",
    ]
)


class ParseContext:
    """Where the text being parsed lives in its file; turns offsets into spans."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self.line_starts = [0]
        self.line_starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
        self.base = 0
        # Maps offsets of a decoded sub-text (a summary template) back to the file.
        self.remap: list[int] | None = None

    def offset(self, loc: int) -> int:
        if self.remap is not None:
            loc = self.remap[min(loc, len(self.remap) - 1)] if self.remap else 0
        return self.base + loc

    def span_at(self, offset: int) -> SourceSpan:
        line = bisect.bisect_right(self.line_starts, offset)
        return SourceSpan(self.file, line, offset - self.line_starts[line - 1] + 1)

    def span(self, loc: int) -> SourceSpan:
        return self.span_at(self.offset(loc))


class _Tracker:
    """The farthest failure of any terminal in the current parse."""

    loc = -1
    expected: set[str] = set()  # noqa: RUF012 - reset per parse


_T = _Tracker()
_CTX: ParseContext = ParseContext("<string>", "")


def _record(loc: int, name: str) -> None:
    if loc > _T.loc:
        _T.loc = loc
        _T.expected = {name}
    elif loc == _T.loc:
        _T.expected.add(name)


def _fail(s: str, loc: int, expr: pp.ParserElement, err: Exception) -> None:
    _record(loc, expr.customName or str(expr))


def _term(e: pp.ParserElement, name: str) -> pp.ParserElement:
    e.set_name(name)
    e.set_fail_action(_fail)
    return e


def _drop(s: str, loc: int, t: pp.ParseResults) -> list[Any]:
    """Drops a matched token; cheaper than Suppress, which costs a parse call of its own."""
    return []


def _kw(word: str) -> pp.ParserElement:
    kw = pp.Keyword(word, ident_chars=pp.alphanums + "_")
    return _term(kw, f"'{word}'").set_parse_action(_drop)


def _punct(sym: str) -> pp.ParserElement:
    return _term(pp.Literal(sym), f"'{sym}'").set_parse_action(_drop)


class _Dispatch(pp.Token):
    """Chooses an alternative by the word or character at the current position.

    A MatchFirst over many keywords tries each in turn (and builds an exception per
    miss); looking the next word up in a table is what keeps compiling fast.
    """

    def __init__(
        self, key: str, table: dict[str, pp.ParserElement], expected: list[str], name: str
    ) -> None:
        super().__init__()
        self._key = re.compile(key)
        self._table = table
        self._expected = expected
        self.mayReturnEmpty = False
        self.mayIndexError = False
        self.set_name(name)

    def streamline(self) -> pp.ParserElement:
        # pyparsing flattens nested Ands only in elements it can see; show it ours.
        if not self.streamlined:
            super().streamline()
            for element in self._table.values():
                element.streamline()
        return self

    def parseImpl(self, instring: str, loc: int, do_actions: bool = True) -> Any:
        m = self._key.match(instring, loc)
        element = self._table.get(m.group(0)) if m is not None else None
        if element is None:
            for name in self._expected:
                _record(loc, name)
            raise pp.ParseException(instring, loc, self.errmsg, self)
        return element._parse(instring, loc, do_actions)


@dataclass(frozen=True, slots=True)
class _Tag:
    """A marked optional part, so that a parse action knows which parts are present."""

    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class _Op:
    op: str
    loc: int


@dataclass(frozen=True, slots=True)
class _End:
    loc: int


def _tag(name: str) -> Any:
    def action(t: pp.ParseResults) -> _Tag:
        items = t.as_list()
        return _Tag(name, items[0] if len(items) == 1 else tuple(items))

    return action


_KW_ALT = "|".join(KEYWORDS)
_NOT_KW = rf"(?!(?:{_KW_ALT})(?![A-Za-z0-9_]))"
NAME = _term(
    pp.Regex(rf"{_NOT_KW}[A-Za-z_][A-Za-z0-9_]*(?:\.{_NOT_KW}[A-Za-z_][A-Za-z0-9_]*)*"),
    "a name",
)
NAME.set_parse_action(lambda s, loc, t: ast.Name(t[0], _CTX.span(loc)))
PLAIN_NAME = _term(pp.Regex(rf"{_NOT_KW}[A-Za-z_][A-Za-z0-9_]*(?![.A-Za-z0-9_])"), "a name")
PLAIN_NAME.set_parse_action(lambda s, loc, t: ast.Name(t[0], _CTX.span(loc)))


def _number(s: str, loc: int, t: pp.ParseResults) -> ast.Num:
    value, kind = parse_number(t[0])
    return ast.Num(value, kind, t[0], _CTX.span(loc))


NUMBER = _term(pp.Regex(NUMBER_RE), "a number")
NUMBER.set_parse_action(_number)
STRING = _term(pp.Regex(r'"(?:[^"\\\n]|\\[^\n])*"'), "a string")
STRING.set_parse_action(lambda s, loc, t: ast.Str(decode_string(t[0])[0], _CTX.span(loc)))

LPAR = _punct("(")
RPAR = _punct(")")
COMMA = _punct(",")
END_MARK = pp.Empty().leave_whitespace().set_parse_action(lambda s, loc, t: _End(loc))


def _op(e: pp.ParserElement) -> pp.ParserElement:
    return e.set_parse_action(lambda s, loc, t: _Op(t[0], loc))


EXPR = pp.Forward()


def _name_or_call(s: str, loc: int, t: pp.ParseResults) -> Any:
    items = t.as_list()
    if len(items) == 1:
        return items[0]
    func: ast.Name = items[0]
    target: ast.Name = items[1]
    end: _End = items[-1]
    parts = {x.name: x.value for x in items[2:-1]}
    return ast.Call(
        func.name,
        target,
        parts.get("where"),
        parts.get("over"),
        parts.get("arg"),
        func.span,
        normalize_source(s[loc : end.loc]),
    )


NAME_OR_CALL = (
    NAME
    + pp.Opt(
        LPAR
        - NAME
        + pp.Opt((_kw("where") - EXPR).set_parse_action(_tag("where")))
        + pp.Opt((_kw("over") - NUMBER).set_parse_action(_tag("over")))
        + pp.Opt((COMMA - NUMBER).set_parse_action(_tag("arg")))
        - RPAR
        + END_MARK
    )
).set_parse_action(_name_or_call)
PAREN = LPAR - EXPR - RPAR
_ATOM_TABLE: dict[str, pp.ParserElement] = {'"': STRING, "(": PAREN}
_ATOM_TABLE.update({c: NUMBER for c in "0123456789.-"})
_ATOM_TABLE.update({c: NAME_OR_CALL for c in string.ascii_letters + "_"})
ATOM = _Dispatch(r".", _ATOM_TABLE, ["a name", "a number", "a string", "'('"], "an expression")


@dataclass(frozen=True, slots=True)
class _NotMark:
    loc: int


@dataclass(frozen=True, slots=True)
class _Tail:
    """A postfix `in (...)` or `matches "..."`, at comparison precedence."""

    kind: str
    loc: int
    value: Any


# Expressions are parsed flat (operand, operator, operand, ...) and the tree is built
# by precedence climbing in one parse action: one pyparsing level per operand instead
# of one per precedence level, which is most of the compile time.
_PREC = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4}
_PREC.update({"+": 5, "-": 5, "*": 6, "/": 6})
_NOT_PREC = 3
_CMP_PREC = 4


def _climb(s: str, loc: int, t: pp.ParseResults) -> Any:
    items = t.as_list()
    pos = 0

    def primary() -> Any:
        nonlocal pos
        # Stacked `not`s are wrapped in a loop, not by recursion: `not not … x` has no
        # depth limit (the operand of the innermost takes every operator binding
        # tighter than `not`, so the outer ones have nothing left to take).
        marks: list[_NotMark] = []
        while isinstance(items[pos], _NotMark):
            marks.append(items[pos])
            pos += 1
        if not marks:
            pos += 1
            return items[pos - 1]
        node = expr(_NOT_PREC)
        for mark in reversed(marks):
            node = ast.Not(node, _CTX.span(mark.loc))
        return node

    def expr(min_prec: int) -> Any:
        nonlocal pos
        lhs = primary()
        while pos < len(items):
            tok = items[pos]
            if isinstance(tok, _Tail):
                if min_prec > _CMP_PREC:
                    break
                pos += 1
                span = _CTX.span(tok.loc)
                lhs = (
                    ast.In(lhs, tok.value, span)
                    if tok.kind == "in"
                    else ast.Match(lhs, tok.value, span)
                )
                continue
            op: _Op = tok
            p = _PREC[op.op]
            if p < min_prec:
                break
            pos += 1
            if op.op in ("and", "or"):
                parts = [lhs, expr(p + 1)]
                while pos < len(items) and isinstance(items[pos], _Op) and items[pos].op == op.op:
                    pos += 1
                    parts.append(expr(p + 1))
                lhs = ast.BoolExpr(op.op, tuple(parts), _CTX.span(op.loc))
            elif p == _CMP_PREC:
                lhs = ast.Compare(op.op, lhs, expr(p + 1), _CTX.span(op.loc))
            else:
                lhs = ast.Binary(op.op, lhs, expr(p + 1), _CTX.span(op.loc))
        return lhs

    return expr(1)


NOT_MARK = _term(pp.Keyword("not", ident_chars=pp.alphanums + "_"), "'not'").set_parse_action(
    lambda s, loc, t: _NotMark(loc)
)
UNARY = pp.ZeroOrMore(NOT_MARK) + ATOM
BINOP = _op(
    _term(pp.Regex(r"==|!=|<=|>=|<|>|\+(?!-)|-|\*|/|(?:and|or)(?![A-Za-z0-9_])"), "an operator")
)
LITERAL = NUMBER | STRING
_BINARY = BINOP - UNARY
_IN = (_kw("in") - LPAR - LITERAL + pp.ZeroOrMore(COMMA - LITERAL) - RPAR).set_parse_action(
    lambda s, loc, t: _Tail("in", loc, tuple(t.as_list()))
)
_MATCHES = (_kw("matches") - STRING).set_parse_action(lambda s, loc, t: _Tail("matches", loc, t[0]))
_TAIL_TABLE: dict[str, pp.ParserElement] = dict.fromkeys(_PREC, _BINARY)
_TAIL_TABLE.update({"in": _IN, "matches": _MATCHES})
TAIL = _Dispatch(
    r"==|!=|<=|>=|<|>|\+(?!-)|-|\*|/|[a-z]+",
    _TAIL_TABLE,
    ["an operator", "'and'", "'or'", "'in'", "'matches'"],
    "an operator",
)
EXPR <<= (UNARY + pp.ZeroOrMore(TAIL)).set_parse_action(_climb)

# ---- clauses ----

NAMES = (NAME + pp.ZeroOrMore(COMMA - NAME)).set_parse_action(lambda t: _Tag("names", tuple(t)))
TRIGGER = (NAME + pp.Opt(_kw("where") - EXPR)).set_parse_action(
    lambda t: ast.TriggerRef(t[0], t[1] if len(t) > 1 else None)
)


def _clause(e: pp.ParserElement, build: Any) -> pp.ParserElement:
    def action(s: str, loc: int, t: pp.ParseResults) -> Any:
        return build(t.as_list(), _CTX.span(loc))

    return e.set_parse_action(action)


def _periodic(items: list[Any], span: SourceSpan) -> ast.Periodic:
    parts = {x.name: x.value for x in items}
    every = parts.get("every")
    if isinstance(every, tuple):
        return ast.Periodic(every[0], every[1], parts.get("at"), span)
    return ast.Periodic(every, None, parts.get("at"), span)


def _explain(items: list[Any], span: SourceSpan) -> ast.Explain:
    parts = {x.name: x.value for x in items}
    return ast.Explain(parts.get("names", ()), parts.get("within"), span)


def _labels(items: list[Any], span: SourceSpan) -> ast.Labels:
    pairs = tuple((items[k], items[k + 1]) for k in range(0, len(items), 2))
    return ast.Labels(pairs, span)


PM = _term(pp.Regex(r"±|\+-"), "'±'").set_parse_action(_drop)
_CLAUSES = [
    _clause(_kw("when") - EXPR, lambda t, sp: ast.When(t[0], sp)),
    _clause(_kw("within") - NUMBER - _kw("of") - TRIGGER, lambda t, sp: ast.Within(t[0], t[1], sp)),
    _clause(
        _kw("before") - TRIGGER - _kw("within") - NUMBER,
        lambda t, sp: ast.Before(t[0], t[1], sp),
    ),
    _clause(
        _kw("after") - TRIGGER - _kw("within") - NUMBER,
        lambda t, sp: ast.After(t[0], t[1], sp),
    ),
    _clause(_kw("during") - TRIGGER, lambda t, sp: ast.During(t[0], sp)),
    _clause(_kw("over") - NUMBER, lambda t, sp: ast.Over(t[0], sp)),
    _clause(_kw("for") - NUMBER, lambda t, sp: ast.For(t[0], sp)),
    _clause(_kw("by") - NAMES, lambda t, sp: ast.By(t[0].value, sp)),
    _clause(
        _kw("periodic")
        + pp.Opt((_kw("every") - NUMBER + pp.Opt(PM - NUMBER)).set_parse_action(_tag("every")))
        + pp.Opt((_kw("at") - _kw("least") - NUMBER - _kw("times")).set_parse_action(_tag("at"))),
        _periodic,
    ),
    _clause(
        _kw("explain")
        + pp.Opt((_kw("by") - NAMES).set_parse_action(lambda t: _Tag("names", t[0].value)))
        + pp.Opt((_kw("within") - NUMBER).set_parse_action(_tag("within"))),
        _explain,
    ),
    _clause(_kw("severity") - NAME, lambda t, sp: ast.Severity(t[0], sp)),
    _clause(_kw("cooldown") - NUMBER, lambda t, sp: ast.Cooldown(t[0], sp)),
    _clause(_kw("evidence") - NAMES, lambda t, sp: ast.Evidence(t[0].value, sp)),
    _clause(_kw("baseline") - NUMBER, lambda t, sp: ast.Baseline(t[0], sp)),
    _clause(_kw("summary") - STRING, lambda t, sp: ast.Summary(t[0], sp)),
    _clause(_kw("notify") - NAMES, lambda t, sp: ast.Notify(t[0].value, sp)),
    _clause(
        _kw("labels")
        - PLAIN_NAME
        - _punct("=")
        - STRING
        + pp.ZeroOrMore(COMMA - PLAIN_NAME - _punct("=") - STRING),
        _labels,
    ),
]
CLAUSE = _Dispatch(
    r"[a-z]+",
    dict(zip(CLAUSE_KEYWORDS, _CLAUSES, strict=True)),
    [f"'{k}'" for k in CLAUSE_KEYWORDS],
    "a clause",
)
END = _term(pp.StringEnd(), "end")


def _rule(s: str, loc: int, t: pp.ParseResults) -> ast.Rule:
    items = t.as_list()
    name = items[0]
    desc = None
    rest = items[1:]
    if rest and isinstance(rest[0], ast.Str):
        desc = rest[0]
        rest = rest[1:]
    return ast.Rule(name, desc, tuple(rest), _CTX.span(loc))


RULE = (_kw("rule") - NAME + pp.Opt(STRING) + pp.ZeroOrMore(CLAUSE) + END).set_parse_action(_rule)
DEFINE = (_kw("define") - PLAIN_NAME - _punct("=") - EXPR + END).set_parse_action(
    lambda s, loc, t: ast.Define(t[0], t[1], _CTX.span(loc))
)
# Tabs stay tabs: pyparsing would otherwise expand them, moving columns and strings.
ITEM = (RULE | DEFINE).parse_with_tabs()
EXPR_ONLY = (EXPR + END).parse_with_tabs()


_RECURSION_ROOM = 2000


def _stack_depth() -> int:
    n = 0
    f = sys._getframe()
    while f is not None:
        n += 1
        f = f.f_back  # type: ignore[assignment]
    return n


@dataclass(frozen=True, slots=True)
class SyntaxFailure:
    """Where a parse could not continue (offset into the parsed text) and what would have."""

    loc: int
    expected: frozenset[str]


_LOCK = threading.RLock()  # the parse context and failure tracker are module state


def _run(element: pp.ParserElement, text: str, ctx: ParseContext) -> Any:
    with _LOCK:
        return _run_locked(element, text, ctx)


def _run_locked(element: pp.ParserElement, text: str, ctx: ParseContext) -> Any:
    global _CTX
    _CTX = ctx
    _T.loc = -1
    _T.expected = set()
    # Each nesting level costs ~25 pyparsing frames: make room for MAX_DEPTH levels
    # however deep the caller's stack already is.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RECURSION_ROOM + _stack_depth()))
    try:
        return element.parse_string(text, parse_all=False)[0]
    except pp.ParseBaseException as e:
        # Every terminal records its failures; pyparsing's own position can be past
        # the token (a Keyword reports the end of `of` in `off`).
        if _T.loc >= 0:
            return SyntaxFailure(_T.loc, frozenset(_T.expected))
        element_name = getattr(e.parser_element, "customName", None)
        return SyntaxFailure(e.loc, frozenset({element_name or "something else"}))
    finally:
        sys.setrecursionlimit(limit)


def parse_item(text: str, ctx: ParseContext) -> ast.Rule | ast.Define | SyntaxFailure:
    """Parse one `rule` or `define` (text starts at its keyword; ctx.base is its offset)."""
    return _run(ITEM, text, ctx)


def parse_expr(text: str, ctx: ParseContext) -> ast.Expr | SyntaxFailure:
    """Parse a lone expression (the `{EXPR}` of a summary template)."""
    return _run(EXPR_ONLY, text, ctx)
