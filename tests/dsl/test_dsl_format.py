"""format then parse gives the same AST (spans aside), for written and generated rules."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from dsl_samples import VALID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dsl import CompiledRule, ast, compile_text, format_file, format_rule, parse_text
from engine.dsl.format import format_string
from engine.dsl.lexer import KEYWORDS, decode_string, parse_number


def reparse(file: ast.File) -> ast.File:
    return parse_text(format_file(file), "again.rules")


def test_valid_file_round_trips() -> None:
    f = parse_text(VALID)
    assert reparse(f) == f
    # And the canonical text is a fixed point.
    assert format_file(reparse(f)) == format_file(f)


def test_spans_do_not_matter_but_values_do() -> None:
    a = parse_text("rule r when count(disk.io) > 1")
    b = parse_text("\n\n rule   r\n when count( disk.io )>1")
    assert a == b
    assert a.items[0].span.line == 1 and b.items[0].span.line == 3
    c = parse_text("rule r when count(disk.io) > 2")
    assert a != c


def test_parentheses_kept_where_needed() -> None:
    text = (
        "rule r\n"
        "  when (count(a.b) > 1 or count(c) > 2) and not (count(d) - (1 - 2)) * 3 > 0"
        " and (count(x) > 1 and count(y) > 1)\n"
    )
    f = parse_text(text)
    assert format_rule(f.items[0]) == text  # type: ignore[arg-type]


def test_string_escapes() -> None:
    for value in ['a"b', "a\\b", "a\\", '\\"', "^kworker\\d+$", "", "\\\\"]:
        lit = format_string(value)
        assert decode_string(lit)[0] == value
    # Only \" and \\ are escapes; other backslashes are kept as written.
    f = parse_text(r'rule r when count(disk.io where comm matches "^k\d\\x\"") > 1')
    where = f.items[0].clauses[0].cond.left.where  # type: ignore[union-attr]
    assert isinstance(where, ast.Match)
    assert where.pattern.value == '^k\\d\\x"'


# ---- generated ASTs ----

_IDENT = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
_NAME = st.lists(_IDENT, min_size=1, max_size=3).map(lambda p: ast.Name(".".join(p)))
_PLAIN = _IDENT.map(ast.Name)
_NUM_TEXTS = [
    "0",
    "1",
    "12",
    "0.5",
    "1e6",
    "-3",
    "5ms",
    "200ms",
    "1m",
    "64KiB",
    "1MiB/s",
    "100/s",
    "50%",
    "5µs",
    "2GB",
    "1ms/s",
    ".5s",
]


def _num(text: str) -> ast.Num:
    value, kind = parse_number(text)
    return ast.Num(value, kind, text)


_NUMS = st.sampled_from(_NUM_TEXTS).map(_num)
_STRS = st.text(
    st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]), max_size=8
).map(ast.Str)


def _call(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    return st.builds(
        ast.Call,
        func=_IDENT,
        target=_NAME,
        where=st.none() | children,
        over=st.none() | _NUMS,
        arg=st.none() | _NUMS,
    )


def _extend(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    return st.one_of(
        st.builds(ast.Binary, op=st.sampled_from("+-*/"), left=children, right=children),
        st.builds(
            ast.Compare,
            op=st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
            left=children,
            right=children,
        ),
        st.builds(
            ast.BoolExpr,
            op=st.sampled_from(["and", "or"]),
            items=st.lists(children, min_size=2, max_size=3).map(tuple),
        ),
        st.builds(ast.Not, item=children),
        st.builds(
            ast.In, left=children, values=st.lists(_NUMS | _STRS, min_size=1, max_size=3).map(tuple)
        ),
        st.builds(ast.Match, left=children, pattern=_STRS),
        _call(children),
    )


EXPRS = st.recursive(_NUMS | _STRS | _NAME, _extend, max_leaves=8)
_NAMES = st.lists(_NAME, min_size=1, max_size=3).map(tuple)
_TRIGGER = st.builds(ast.TriggerRef, stream=_NAME, where=st.none() | EXPRS)


@st.composite
def _periodic(draw: st.DrawFn) -> ast.Periodic:
    every = draw(st.none() | _NUMS)
    jitter = draw(st.none() | _NUMS) if every is not None else None
    return ast.Periodic(every, jitter, draw(st.none() | _NUMS))


CLAUSES = st.one_of(
    st.builds(ast.When, cond=EXPRS),
    st.builds(ast.Within, d=_NUMS, trigger=_TRIGGER),
    st.builds(ast.Before, trigger=_TRIGGER, d=_NUMS),
    st.builds(ast.After, trigger=_TRIGGER, d=_NUMS),
    st.builds(ast.During, trigger=_TRIGGER),
    st.builds(ast.Over, d=_NUMS),
    st.builds(ast.For, d=_NUMS),
    st.builds(ast.By, fields=_NAMES),
    _periodic(),
    st.builds(ast.Explain, streams=st.just(()) | _NAMES, within=st.none() | _NUMS),
    st.builds(ast.Severity, level=_NAME),
    st.builds(ast.Cooldown, d=_NUMS),
    st.builds(ast.Evidence, fields=_NAMES),
    st.builds(ast.Baseline, d=_NUMS),
    st.builds(ast.Summary, template=_STRS),
    st.builds(ast.Notify, sinks=_NAMES),
    st.builds(
        ast.Labels, pairs=st.lists(st.tuples(_PLAIN, _STRS), min_size=1, max_size=2).map(tuple)
    ),
)


def _parseable(clauses: list[ast.Clause]) -> bool:
    """An `explain` swallows a `by`/`within` right after it, as the language says."""
    for a, b in itertools.pairwise(clauses):
        if isinstance(a, ast.Explain) and (
            (not a.streams and a.within is None and isinstance(b, ast.By))
            or (a.within is None and isinstance(b, ast.Within))
        ):
            return False
    return True


RULES = st.builds(
    ast.Rule,
    name=_NAME,
    description=st.none() | _STRS,
    clauses=st.lists(CLAUSES, max_size=5).filter(_parseable).map(tuple),
)
ITEMS = st.one_of(RULES, st.builds(ast.Define, name=_PLAIN, body=EXPRS))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ITEMS, min_size=1, max_size=3))
def test_generated_round_trip(items: list[ast.Item]) -> None:
    f = ast.File(tuple(items))
    text = format_file(f)
    assert parse_text(text, "gen.rules") == f, text


def _strip(rule: CompiledRule) -> CompiledRule:
    return dataclasses.replace(rule, file="", line=0)


def test_canonical_text_compiles_to_the_same_plan() -> None:
    root = Path(__file__).resolve().parents[2]
    texts = [VALID, *(p.read_text() for p in sorted((root / "rules").glob("*.rules")))]
    for text in texts:
        plan = compile_text(text)
        again = compile_text(format_file(parse_text(text)))
        assert [_strip(r) for r in again.rules] == [_strip(r) for r in plan.rules]
        assert again.fields == plan.fields
