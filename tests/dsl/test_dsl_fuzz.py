"""No input makes the compiler raise anything but RuleErrors (and never 'internal error')."""

from __future__ import annotations

from pathlib import Path

from dsl_samples import VALID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dsl import compile_text, parse_text
from engine.dsl.lexer import KEYWORDS
from engine.errors import RuleErrors

TOKENS = [
    *KEYWORDS,
    "(",
    ")",
    ",",
    "=",
    "==",
    "<",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "±",
    "+-",
    '"',
    '"x"',
    "{",
    "}",
    "#",
    "\n",
    " ",
    "1ms",
    "0",
    "5",
    "99.9",
    "1e6",
    "64KiB",
    "1MiB/s",
    "100/s",
    "50%",
    "5µs",
    "disk.io",
    "disk.io.latency",
    "zfs.txg.sync",
    "p99",
    "count",
    "percentile",
    "predict",
    "x",
    ".",
    "\\",
    "\t",
    "ms",
    "é",
    "\x00",
]


def _check(text: str) -> None:
    for fn in (compile_text, parse_text):
        try:
            fn(text, "f.rules")
        except RuleErrors as e:
            assert e.errors
            for err in e.errors:
                assert "internal error" not in err.message, err.render()
                assert err.span.line >= 1 and err.span.col >= 1
                err.render()


def test_valid_compiles() -> None:
    plan = compile_text(VALID, "f.rules")
    assert len(plan.rules) == 4


_ROOT = Path(__file__).resolve().parents[2]
SEEDS = [VALID, *(p.read_text() for p in sorted((_ROOT / "rules").glob("*.rules")))]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "token", "cut"]))
        if action == "insert":
            text = text[:pos] + draw(st.characters()) + text[pos:]
        elif action == "delete":
            n = draw(st.integers(1, 12))
            text = text[:pos] + text[pos + n :]
        elif action == "replace":
            text = text[:pos] + draw(st.characters()) + text[pos + 1 :]
        elif action == "token":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        else:
            text = text[:pos]
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_only_raise_rule_errors(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_random_token_soup(tokens: list[str]) -> None:
    _check(" ".join(tokens))
    _check("rule r when " + " ".join(tokens))


def test_deep_nesting_is_a_rule_error() -> None:
    for text in (
        "rule r when " + "(" * 500 + "count(disk.io) > 1" + ")" * 500 + " over 1s",
        "rule r when " + "not " * 3000 + "count(disk.io) > 1 over 1s",
        "rule r when count(disk.io) > 1" + " + 1" * 3000 + " over 1s",
        'rule r when count(disk.io) > 0 over 1s summary "{' + "(" * 300 + "1" + ")" * 300 + '}"',
    ):
        _check(text)
