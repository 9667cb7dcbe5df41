"""Rule errors keep their position on undecodable bytes and very deep expressions;
long flat chains and stacked `not`s are not deep at all: they compile."""

from __future__ import annotations

from functools import reduce
from pathlib import Path

import numpy as np
import pytest

from engine.dsl import check as dsl_check
from engine.dsl import compile_paths, compile_text, format_rule, parse_text
from engine.dsl import parse as dsl_parse
from engine.dsl.check import MAX_DEFINE_DEPTH, MAX_VALUE_DEPTH
from engine.dsl.plan import AggRef, Arith, Compare, Not, Num, PredCompare, PredNot
from engine.errors import RuleError, RuleErrors
from engine.runtime.scope import eval_cond
from engine.units import Kind


def errors_of(text: str) -> list[RuleError]:
    with pytest.raises(RuleErrors) as info:
        compile_text(text, "f.rules")
    return info.value.errors


def only(text: str) -> RuleError:
    errs = errors_of(text)
    assert len(errs) == 1, [e.render() for e in errs]
    return errs[0]


# ---- bytes that are not UTF-8 ----


@pytest.mark.parametrize(
    ("data", "line", "col", "byte"),
    [
        (b'rule r\n  when count(disk.io) > 1 over 1s\n  summary "\xff\xfe"\n', 3, 12, "0xff"),
        (b"rule r\xff when count(disk.io) > 1 over 1s\n", 1, 7, "0xff"),
        # columns count characters: two 2-byte characters before the bad byte
        ('rule r\n  summary "\u00e9\u00e9 '.encode() + b'\xc3"\n', 2, 15, "0xc3"),
        # a byte-order mark is not a column
        (b"\xef\xbb\xbfrule \x80r\n", 1, 6, "0x80"),
        (b"rule r\r\n  when \xe2\x82 > 1\r\n", 2, 8, "0xe2"),
    ],
)
def test_invalid_utf8_names_line_and_column(
    tmp_path: Path, data: bytes, line: int, col: int, byte: str
) -> None:
    p = tmp_path / "f.rules"
    p.write_bytes(data)
    with pytest.raises(RuleErrors) as info:
        compile_paths([str(p)])
    (err,) = info.value.errors
    assert (err.span.file, err.span.line, err.span.col) == (str(p), line, col)
    assert err.message == f"invalid UTF-8 byte {byte}"
    assert err.text and "\r" not in err.text
    assert err.text[col - 1] == "\ufffd"  # the caret points at the bad byte
    assert err.render().startswith(f"{p}:{line}:{col}: error: invalid UTF-8 byte {byte}\n")


def test_valid_utf8_and_bom_still_read(tmp_path: Path) -> None:
    p = tmp_path / "f.rules"
    p.write_bytes(b'\xef\xbb\xbfrule r when count(disk.io) > 1 over 1s summary "\xc3\xa9"\n')
    (r,) = compile_paths([str(p)]).rules
    assert r.summary == ("\u00e9",)


# ---- long flat chains ----


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_long_flat_constant_chain_compiles_and_folds_left_to_right(op: str) -> None:
    terms = [f"{1 + k % 7}" for k in range(3000)]
    text = f"rule r\n  when count(disk.io) > {f' {op} '.join(terms)} over 1s\n"
    (r,) = compile_text(text, "f.rules").rules
    assert isinstance(r.cond, Compare)
    fold = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": lambda a, b: a / b,
    }[op]
    want = reduce(fold, (float(t) for t in terms))  # `*` overflows to inf, as at run time
    assert r.cond.right == Num(want, Kind.NUMBER)


def test_folding_keeps_units_and_division_by_zero() -> None:
    (r,) = compile_text("rule r when max(disk.io.latency) > 1ms + 2ms * 3 over 1s").rules
    assert isinstance(r.cond, Compare)
    assert r.cond.right == Num(7_000_000.0, Kind.DURATION)
    # x / 0 has no value at run time: not folded into a number
    (r,) = compile_text("rule r when count(disk.io) > 1 / 0 over 1s").rules
    assert isinstance(r.cond, Compare)
    assert r.cond.right == Arith("/", Num(1.0, Kind.NUMBER), Num(0.0, Kind.NUMBER), Kind.NUMBER)


def test_long_chain_of_aggregates_compiles_and_evaluates() -> None:
    n = MAX_VALUE_DEPTH  # n terms: n - 1 operations
    chain = " + ".join(["count(disk.io)"] * n)
    (r,) = compile_text(f"rule r\n  when {chain} > 5 over 1s\n").rules
    assert len(r.aggregates) == 1
    got = eval_cond(r.cond, [np.array([0.0, 1.0])], 2)
    assert got.tolist() == [False, True]


def test_too_long_chain_of_aggregates_is_an_error_at_its_start() -> None:
    chain = " + ".join(["count(disk.io)"] * (MAX_VALUE_DEPTH + 2))
    e = only(f"rule r\n  when 1 < {chain} over 1s\n")
    assert (e.span.line, e.span.col) == (2, 12)
    assert "expression nested too deeply" in e.message
    assert e.text.startswith("  when 1 < count(disk.io) +")


def test_long_chain_is_formatted_back() -> None:
    text = "rule r\n  when count(disk.io) > " + " - ".join(["1"] * 2000) + " over 1s"
    (rule,) = parse_text(text).items
    out = format_rule(rule)  # type: ignore[arg-type]
    assert "count(disk.io) > " + " - ".join(["1"] * 2000) in out
    assert "1 - (1" not in out


# ---- stacked `not`s ----


@pytest.mark.parametrize("n", [1, 2, 3, 2999, 3000])
def test_stacked_nots_compile(n: int) -> None:
    text = f"rule r\n  when {'not ' * n}count(disk.io) > 1 over 1s\n"
    (r,) = compile_text(text, "f.rules").rules
    if n % 2:
        assert isinstance(r.cond, Not) and isinstance(r.cond.item, Compare)
    else:
        assert isinstance(r.cond, Compare)
    (rule,) = parse_text(text).items
    assert f"when {'not ' * n}count(disk.io) > 1" in format_rule(rule)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [2, 3, 3000, 3001])
def test_stacked_nots_in_a_predicate(n: int) -> None:
    text = f'rule r when count(disk.io where {"not " * n}op == "w") > 1 over 1s'
    (r,) = compile_text(text).rules
    where = r.aggregates[0].where
    if n % 2:
        assert isinstance(where, PredNot) and isinstance(where.item, PredCompare)
    else:
        assert isinstance(where, PredCompare)


def test_not_binds_as_before() -> None:
    (r,) = compile_text(
        "rule r when not not count(disk.io) > 1 and not count(disk.io) < 2 + 1 over 1s"
    ).rules
    (rule,) = parse_text("rule r when not not a > 1 + 2 and not b").items
    assert "when not not a > 1 + 2 and not b" in format_rule(rule)  # type: ignore[arg-type]
    assert r.cond.items[0] == Compare(">", AggRef(0), Num(1.0, Kind.NUMBER))  # type: ignore[union-attr]
    assert isinstance(r.cond.items[1], Not)  # type: ignore[union-attr]


# ---- defines ----


def test_long_define_chain_is_an_error_at_the_use() -> None:
    n = 1200
    lines = ["define d0 = count(disk.io)"]
    lines += [f"define d{i} = d{i - 1} + 1" for i in range(1, n)]
    text = "\n".join(lines) + f"\nrule r\n  when d{n - 1} > 1 over 1s\n"
    e = only(text)
    assert (e.span.line, e.span.col) == (n + 2, 8)
    assert f"defines nested too deeply (more than {MAX_DEFINE_DEPTH} levels)" in e.message


def test_define_chain_within_the_limit_compiles() -> None:
    n = MAX_DEFINE_DEPTH
    lines = ["define d0 = count(disk.io) > 1"]
    lines += [f"define d{i} = not d{i - 1}" for i in range(1, n)]
    (r,) = compile_text("\n".join(lines) + f"\nrule r when d{n - 1} over 1s").rules
    assert isinstance(r.cond, Not if (n - 1) % 2 else Compare)


def test_cycle_at_the_end_of_a_long_define_chain() -> None:
    n = 1200  # deeper than Python's default recursion limit
    lines = [f"define d{i} = d{i + 1} + 1" for i in range(n)]
    lines.append(f"define d{n} = d{n - 1}")
    errs = errors_of("\n".join(lines))
    assert [e.span.line for e in errs] == [n, n + 1]
    assert errs[-1].message == f"define d{n} refers to itself: d{n} -> d{n - 1} -> d{n}"


# ---- what is still too deep for Python names the expression, not the rule ----


def test_recursion_in_the_parser_points_at_the_expression(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def deep(*args: object) -> None:
        raise RecursionError

    monkeypatch.setattr(dsl_parse, "parse_item", deep)
    e = only("rule r\n  when count(disk.io) > 1 over 1s\n")
    assert (e.span.line, e.span.col, e.message) == (2, 8, "expression nested too deeply")
    e = only("define x =\n  count(disk.io) > 1\n")
    assert (e.span.line, e.span.col) == (2, 3)


def test_recursion_in_the_checker_points_at_the_when_expression(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def deep(*args: object) -> None:
        raise RecursionError

    monkeypatch.setattr(dsl_check.ExprChecker, "cond", deep)
    e = only("rule r\n  over 1s\n  when not count(disk.io) > 1\n")
    assert (e.span.line, e.span.col, e.message) == (3, 8, "expression nested too deeply")
