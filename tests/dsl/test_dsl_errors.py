"""Every class of rule error: exact line and column, message and suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.dsl import compile_text
from engine.errors import RuleError, RuleErrors

R = "rule a when count(disk.io) > 1 over 1s "  # 39 characters: clauses start at col 40


def errors(text: str) -> list[RuleError]:
    with pytest.raises(RuleErrors) as info:
        compile_text(text, "f.rules")
    return info.value.errors


def only(text: str) -> RuleError:
    errs = errors(text)
    assert len(errs) == 1, [e.render() for e in errs]
    return errs[0]


CASES = [
    # --- syntax: the first token that cannot continue, and what was expected ---
    ("rule a\n  when p99(disk.io.latency > 1ms\n", 2, 28, "unexpected '>'", ""),
    (
        "rule a\n  when p99(disk.io.latency) > 1ms\n  severty warning\n",
        3,
        3,
        "unexpected 'severty'; expected a clause keyword",
        "did you mean severity?",
    ),
    (
        "rule a when count(disk.io) > 1\n  cooldwn 1m",
        2,
        3,
        "unexpected 'cooldwn'",
        "did you mean cooldown?",
    ),
    (
        "rule a\n  when (count(disk.io) > 1\n  severity warning\n",
        2,
        8,
        "unclosed '(': expected ')' before 'severity' on line 3",
        "",
    ),
    (
        "rule a\n  when (count(disk.io) > 1",
        2,
        27,
        "unexpected end of file; expected an operator or ')'",
        "",
    ),
    ('rule a when count(disk.io where op = "x") > 1', 1, 36, "unexpected '='", "use == to compare"),
    ("rule a when count(disk.io) > 5 ms", 1, 32, "unexpected 'ms'", "no space: 5ms"),
    (R + "by when", 1, 43, "unexpected 'when'; expected a name", "'when' is a keyword"),
    (R + "by", 1, 42, "unexpected end of file; expected a name", ""),
    (R + "Severity info", 1, 40, "unexpected 'Severity'", "keywords are lower case: severity"),
    ("rule when count(disk.io) > 1", 1, 6, "expected a name", "keyword"),
    ("  when count(disk.io) > 1", 1, 3, "expected 'rule' or 'define'", ""),
    ("rul a when count(disk.io) > 1", 1, 1, "expected 'rule' or 'define'", "did you mean rule?"),
    (R + "periodic every 30s ± ", 1, 61, "unexpected end of file; expected a number", ""),
    (R + "explain by", 1, 50, "expected a name", ""),
    (R + "labels a = 3", 1, 51, "expected a string", ""),
    (
        "rule a when count(disk.io) >\nrule b when count(disk.io) > 1 over 1s",
        2,
        1,
        "unexpected 'rule'; expected an expression",
        "",
    ),
    # --- lexical ---
    ("rule a when count(disk.io) > 5xs over 1s", 1, 31, "unknown unit 'xs'", "units:"),
    ('rule a when count(disk.io where comm == "abc) > 1', 1, 41, "unterminated string", ""),
    (R + "$", 1, 40, "unexpected character '$'", ""),
    (
        "rule a when " + "(" * 40 + "count(disk.io) > 1" + ")" * 40,
        1,
        45,
        "parentheses nested deeper than 32",
        "",
    ),
    # --- names, with suggestions ---
    (
        "rule a when p99(disk.io.latncy) > 1ms over 1s",
        1,
        17,
        "stream disk.io has no field 'latncy'",
        "did you mean disk.io.latency?",
    ),
    (
        "rule a when p99(dsk.io.latency) > 1ms over 1s",
        1,
        17,
        "unknown stream 'dsk.io.latency'",
        "did you mean disk.io.latency?",
    ),
    (
        "rule a when count(disk.iox) > 1 over 1s",
        1,
        19,
        "unknown stream 'disk.iox'",
        "did you mean disk.io?",
    ),
    (
        "rule a when p98(disk.io.latency) > 1ms over 1s",
        1,
        13,
        "unknown aggregate 'p98'",
        "did you mean p99?",
    ),
    (
        'rule a when count(disk.io where pool == "a") > 1 over 1s',
        1,
        33,
        "stream disk.io has no field 'pool'",
        "",
    ),
    (
        "rule a when count(disk.io) > 1 within 1s of zfs.txg.sink",
        1,
        45,
        "unknown stream 'zfs.txg.sink'",
        "did you mean zfs.txg.sync?",
    ),
    (
        "rule a when count(disk.io) > 1 within 1s of disk.io.latency",
        1,
        45,
        "disk.io.latency is a field; a trigger is a stream",
        "did you mean disk.io?",
    ),
    (
        R + "explain by zfs.txg.snc",
        1,
        51,
        "unknown stream 'zfs.txg.snc'",
        "did you mean zfs.txg.sync?",
    ),
    (R + "severity critcal", 1, 49, "unknown severity 'critcal'", "did you mean critical?"),
    (
        "rule a when hot_wrte > 1 over 1s\ndefine hot_write = 1",
        1,
        13,
        "unknown name 'hot_wrte'",
        "did you mean hot_write?",
    ),
    (
        "rule a when p99(disk.io.latency) > 1ms over 1s by pool",
        1,
        51,
        "no stream of this rule (disk.io) has a field 'pool'",
        "",
    ),
    (
        "rule a when p99(disk.io.latency) > 1ms within 1s of zfs.txg.sync by devv",
        1,
        69,
        "has a field 'devv'",
        "did you mean dev?",
    ),
    # --- aggregates ---
    ("rule a when p99(disk.io.comm) > 1 over 1s", 1, 17, "p99 needs a numeric field", ""),
    ("rule a when p99(disk.io) > 1ms over 1s", 1, 17, "p99 needs a field of disk.io", ""),
    (
        "rule a when count(disk.io.latency) > 1 over 1s",
        1,
        19,
        "count counts events of a stream",
        "did you mean count(disk.io)?",
    ),
    ("rule a when percentile(disk.io.latency, 101) > 1ms over 1s", 1, 41, "0 < Q <= 100", ""),
    ("rule a when percentile(disk.io.latency, 0) > 1ms over 1s", 1, 41, "0 < Q <= 100", ""),
    ("rule a when percentile(disk.io.latency) > 1ms over 1s", 1, 13, "percentile needs", ""),
    ("rule a when predict(memcg.usage) > 1GiB over 1s", 1, 13, "predict needs", ""),
    ("rule a when predict(memcg.usage, 5) > 1GiB over 1s", 1, 34, "takes a duration", ""),
    (
        "rule a when p99(disk.io.latency, 5) > 1ms over 1s",
        1,
        34,
        "p99 takes no second argument",
        "",
    ),
    ("rule a when p99(disk.io.latency over 0s) > 1ms over 1s", 1, 38, "positive duration", ""),
    (
        'rule a when count(disk.io where comm matches "a(") > 1 over 1s',
        1,
        46,
        "bad regular expression",
        "",
    ),
    (
        'rule a when count(disk.io where latency matches "a") > 1 over 1s',
        1,
        33,
        "matches needs a string field",
        "",
    ),
    # --- units ---
    (
        "rule a when p99(disk.io.latency) > 1MiB over 1s",
        1,
        36,
        "cannot compare a duration with a size",
        "",
    ),
    (
        "rule a when p99(disk.io.latency) > 5 over 1s",
        1,
        36,
        "cannot compare a duration with a plain number",
        "write the unit, e.g. 5ms",
    ),
    (
        "rule a when max(memcg.usage) > 5 over 1s",
        1,
        32,
        "cannot compare a size with a plain",
        "5MiB",
    ),
    (
        "rule a when rate(disk.io) > 1MiB/s over 1s",
        1,
        29,
        "cannot compare a rate (per second) with a size per second",
        "",
    ),
    (
        "rule a when p99(disk.io.latency) + 1MiB > 0 over 1s",
        1,
        36,
        "cannot add a duration with a size",
        "",
    ),
    (
        "rule a when p99(disk.io.latency) * p99(disk.io.latency) > 1 over 1s",
        1,
        36,
        "cannot multiply a duration by a duration",
        "",
    ),
    (
        "rule a when sum(disk.io.bytes) / p50(disk.io.latency) > 1 over 1s",
        1,
        34,
        "cannot divide a size by a duration",
        "",
    ),
    (
        "rule a when count(disk.io where latency > 5) > 1 over 1s",
        1,
        43,
        "cannot compare disk.io.latency (a duration) with a plain number",
        "5ms",
    ),
    (
        'rule a when count(disk.io where comm > "a") > 1 over 1s',
        1,
        40,
        "strings compare only with == and !=",
        "",
    ),
    ("rule a when count(disk.io where comm == 5) > 1 over 1s", 1, 41, "comm is a string", ""),
    (
        "rule a when count(disk.io where op == write) > 1 over 1s",
        1,
        39,
        "op is a string",
        'did you mean "write"?',
    ),
    (
        R + "explain by disk.io.latency",
        1,
        51,
        "disk.io.latency is a field; explain ranks streams",
        "did you mean disk.io?",
    ),
    (
        "rule a when p99(disk.io.latency) > 1ms within 200ms zfs.txg.sync",
        1,
        53,
        "unexpected 'zfs.txg.sync'; expected 'of'",
        "",
    ),
    (
        "rule a when count(mm.reclaim) > 1 before oom.kill 5m",
        1,
        51,
        "unexpected '5m'; expected 'where' or 'within'",
        "",
    ),
    (
        "rule a when count(disk.io where bytes in (1KiB, 5ms)) > 1 over 1s",
        1,
        49,
        "cannot compare disk.io.bytes (a size) with a duration",
        "",
    ),
    ('rule a when count(disk.io) > "x" over 1s', 1, 30, "a string is not a value here", ""),
    # --- conditions vs values vs predicates ---
    (
        "rule a when disk.io.latency > 1ms over 1s",
        1,
        13,
        "disk.io.latency is a field",
        "p99(disk.io.latency)",
    ),
    ("rule a when disk.io > 1 over 1s", 1, 13, "disk.io is a stream", "count(disk.io)"),
    ("rule a when count(disk.io) over 1s", 1, 13, "expected a condition", ""),
    (
        'rule a when count(disk.io) > 1 and comm matches "x" over 1s',
        1,
        41,
        "'matches' compares fields of single events",
        "",
    ),
    (
        "rule a when (count(disk.io) > 1) > 2 over 1s",
        1,
        14,
        "expected a value, found a condition",
        "",
    ),
    (
        "rule a when count(disk.io where comm) > 1 over 1s",
        1,
        33,
        "comm alone is not a predicate",
        "",
    ),
    (
        "rule a when count(disk.io where count(disk.io) > 1) > 1 over 1s",
        1,
        33,
        "expected a field of disk.io",
        "",
    ),
    # --- clause combinations ---
    ("rule a\n  over 1s", 1, 6, "rule a has no 'when' clause", ""),
    (
        "rule a when count(disk.io) > 1 when count(disk.io) > 2 over 1s",
        1,
        32,
        "a rule has one 'when' clause",
        "line 1",
    ),
    (
        "rule a when count(disk.io) > 1 within 1s of zfs.txg.sync before oom.kill within 1s",
        1,
        58,
        "at most one correlation clause",
        "",
    ),
    (
        "rule a when count(disk.io) > 1 within 1s of zfs.txg.sync over 1s",
        1,
        58,
        "'over' is for rules without a correlation clause",
        "",
    ),
    ("rule a when count(disk.io) > 1 for 1s", 1, 32, "'for' needs 'over'", ""),
    ("rule a when count(disk.io) > 1 periodic", 1, 32, "'periodic' needs 'over'", ""),
    (
        "rule a when count(disk.io) > 1 during oom.kill",
        1,
        39,
        "'during' needs an interval stream; oom.kill is a point stream",
        "",
    ),
    (R + "severity warning severity info", 1, 57, "a rule has one 'severity' clause", ""),
    (R + 'labels a = "x", a = "y"', 1, 56, "label 'a' is given twice", ""),
    (R + "cooldown -1s", 1, 49, "non-negative duration", ""),
    ("rule a when count(disk.io) > 1 over 5", 1, 37, "over takes a duration", "5s"),
    ("rule a when count(disk.io) > 1 over 0s", 1, 37, "positive duration", ""),
    (R + "periodic at least 1 times", 1, 58, "whole number N >= 2", ""),
    (R + "periodic every 1MiB", 1, 55, "every takes a duration", ""),
    (R + "evidence disk.io.comm", 1, 49, "evidence needs a numeric field", ""),
    (R + "evidence disk.io", 1, 49, "evidence takes fields", ""),
    (R + "by dev, dev", 1, 48, "'dev' is listed twice", ""),
    # --- summary templates: positions inside the string ---
    (R + 'summary "p99 {p99(disk.io.latncy)} x"', 1, 58, "no field 'latncy'", ""),
    (R + 'summary "p99 {p99(disk.io.latency x"', 1, 53, "'{' without '}'", ""),
    (R + 'summary "a } b"', 1, 51, "'}' without '{'", ""),
    (R + 'summary "a {} b"', 1, 51, "empty {}", ""),
    (R + 'summary "a {count(disk.io) >} b"', 1, 68, "expected an expression", ""),
    # --- duplicates and defines ---
    (
        "rule a when count(disk.io) > 1 over 1s\nrule a when count(disk.io) > 1 over 1s",
        2,
        6,
        "rule a is already defined",
        "first defined at f.rules:1:6",
    ),
    ("define op = 1", 1, 8, "a define cannot be named like a field: op", ""),
    ("define d = 1\ndefine d = 2", 2, 8, "define d is already defined", "f.rules:1:8"),
    (
        'define w = op == "write"\nrule a when count(net.drop where w) > 1 over 1s',
        2,
        34,
        "in define w (f.rules:1:12): stream net.drop has no field 'op'",
        "",
    ),
]


@pytest.mark.parametrize(("text", "line", "col", "message", "hint"), CASES)
def test_error_position_and_message(
    text: str, line: int, col: int, message: str, hint: str
) -> None:
    e = only(text)
    assert (e.span.line, e.span.col) == (line, col), e.render()
    assert message in e.message, e.render()
    assert hint in e.hint, e.render()
    assert e.span.file == "f.rules"
    assert e.text == text.split("\n")[line - 1]


def test_define_cycle() -> None:
    errs = errors("define x = y\ndefine y = x\nrule a when count(disk.io where x) > 1 over 1s")
    assert [(e.span.line, e.span.col) for e in errs] == [(1, 8), (2, 8), (3, 33)]
    assert "x -> y -> x" in errs[0].message
    assert "refers to itself" in errs[2].message


def test_every_bad_rule_reported() -> None:
    errs = errors(
        "rule a when p99(disk.io.latency > 1ms\n"
        "rule ok when count(disk.io) > 1 over 1s\n"
        "rule b when p99(disk.io.latncy) > 1ms over 1s\n"
        "rule c when count(disk.io) > 1 severty info\n"
        "rule d when count(disk.io) > 1 for 1s severity bad\n"
    )
    assert [(e.span.line, e.span.col) for e in errs] == [
        (1, 33),
        (3, 17),
        (4, 32),
        (5, 32),
        (5, 48),
    ]


def test_render_format() -> None:
    e = only("rule a\n  when p99(disk.io.latncy) > 1ms over 1s")
    assert e.render() == (
        "f.rules:2:12: error: stream disk.io has no field 'latncy'\n"
        "    when p99(disk.io.latncy) > 1ms over 1s\n"
        "             ^\n"
        "  did you mean disk.io.latency?"
    )


def test_tab_counts_as_one_column_and_is_kept() -> None:
    e = only("rule a\n\twhen p99(disk.io.latncy) > 1ms over 1s")
    assert (e.span.line, e.span.col) == (2, 11)
    assert e.render().splitlines()[2] == "  \t         ^"


def test_crlf_and_form_feed_are_whitespace() -> None:
    plan = compile_text("rule a\r\n  when count(disk.io) > 1\r\n\f over 1s\r\n", "f.rules")
    assert plan.rules[0].over == 1_000_000_000
    e = only("rule a\r\n  when p99(disk.io.latncy) > 1ms over 1s\r\n")
    assert (e.span.line, e.span.col, e.text) == (2, 12, "  when p99(disk.io.latncy) > 1ms over 1s")


def test_bom_and_missing_paths(tmp_path: Path) -> None:
    from engine.dsl import compile_paths

    f = tmp_path / "bom.rules"
    f.write_bytes("\ufeffrule a when count(disk.io) > 1 over 1s\n".encode())
    assert [r.name for r in compile_paths([str(f)]).rules] == ["a"]
    with pytest.raises(RuleErrors) as info:
        compile_paths([str(tmp_path / "missing.rules")])
    assert "no such file or directory" in info.value.errors[0].message


def test_nothing_cascades_from_a_bad_condition() -> None:
    # The `by` is not reported: the condition's error is the one that matters.
    e = only("rule a when p99(disk.io.latncy) > 1ms over 1s by dev")
    assert "latncy" in e.message


def test_misspelled_keyword_inside_clause() -> None:
    e = only("rule a when count(disk.io) > 1 within 1s off zfs.txg.sync")
    assert (e.span.col, e.hint) == (42, "did you mean of?")


def test_a_rule_needs_a_window() -> None:
    e = only("rule a\n  when p99(disk.io.latency) > 1ms")
    assert (e.span.line, e.span.col) == (2, 3)
    assert e.message.startswith("p99(disk.io.latency) has no window")
    assert e.hint == "e.g. when ... over 1s, or p99(disk.io.latency over 1s)"
    # Aggregates that carry their own window need none from the rule.
    assert compile_text("rule a when p99(disk.io.latency over 1s) > 1ms").rules
