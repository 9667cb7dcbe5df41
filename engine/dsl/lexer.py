"""A small tokenizer for rule files: exact positions, lexical errors, rule splitting.

pyparsing does the parsing proper; this pass exists so that lexical mistakes
(unterminated strings, unknown units, stray characters, runaway nesting) are
reported precisely, so that a file can be split into independent `rule`/`define`
chunks (one bad rule does not hide the next), and so that aggregate source text can
be normalized into the `values` key of a finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..units import DURATION_UNITS, SIZE_UNITS, Kind, unit_factor

__all__ = [
    "KEYWORDS",
    "MAX_DEPTH",
    "NUMBER_RE",
    "LexError",
    "Token",
    "decode_string",
    "normalize_source",
    "parse_number",
    "split_items",
    "tokenize",
    "tokenize_with_comments",
]

KEYWORDS: tuple[str, ...] = tuple(
    [
        "rule",
        "define",
        "when",
        "within",
        "of",
        "before",
        "after",
        "during",
        "over",
        "for",
        "by",
        "periodic",
        "every",
        "at",
        "least",
        "times",
        "explain",
        "severity",
        "cooldown",
        "evidence",
        "baseline",
        "summary",
        "notify",
        "labels",
        "where",
        "and",
        "or",
        "not",
        "in",
        "matches",
    ]
)

MAX_DEPTH = 32  # nested parentheses; deeper is an error, not a RecursionError

# Duration per second (the unit of `growth` of a duration field): an addition to
# the units of units.py, handled here so that `growth(disk.io.latency) > 1ms/s` reads.
_DURATION_RATE_UNITS = [f"{u}/s" for u in DURATION_UNITS if u in ("ns", "us", "µs", "μs", "ms")]
_UNITS = sorted(
    [
        *(f"{u}/s" for u in SIZE_UNITS),
        *_DURATION_RATE_UNITS,
        "/s",
        "%",
        *DURATION_UNITS,
        *SIZE_UNITS,
    ],
    key=len,
    reverse=True,
)
UNIT_ALTERNATION = "|".join(re.escape(u) for u in _UNITS)
_NUM_BODY = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
# A number, its unit (longest first), never followed by a name character.
NUMBER_RE = rf"-?{_NUM_BODY}(?:{UNIT_ALTERNATION})?(?![A-Za-z0-9_µμ])"
_NUMBER = re.compile(rf"(?P<neg>-?)(?P<num>{_NUM_BODY})(?P<unit>{UNIT_ALTERNATION})?\Z")

_TOKEN = re.compile(
    r"""
    (?P<nl>\n)
    |(?P<ws>[ \t\r\f\v]+)
    |(?P<comment>\#[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\[^\n])*")
    |(?P<badstring>"[^\n]*)
    |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    |(?P<op>±|\+-|==|!=|<=|>=|[<>=+\-*/(),{}])
    |(?P<bad>.)
    """,
    re.VERBOSE,
)
_UNIT_AT = re.compile(rf"(?:{UNIT_ALTERNATION})(?![A-Za-z0-9_µμ])")
_NAME_TAIL = re.compile(r"[A-Za-z0-9_µμ/%]+")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # string number name op
    text: str
    start: int  # offset in the text
    space_before: bool  # whitespace or a comment separates it from the previous token


@dataclass(frozen=True, slots=True)
class LexError:
    offset: int
    message: str
    hint: str = ""


def tokenize(text: str) -> tuple[list[Token], list[LexError]]:
    """Tokens (comments and whitespace dropped) and lexical errors, in order."""
    tokens, errors, _ = tokenize_with_comments(text)
    return tokens, errors


def tokenize_with_comments(text: str) -> tuple[list[Token], list[LexError], list[tuple[int, int]]]:
    """As `tokenize`, plus the (start, end) offsets of every comment (and of \\f \\v runs)."""
    comments: list[tuple[int, int]] = []
    tokens: list[Token] = []
    errors: list[LexError] = []
    pos = 0
    n = len(text)
    space = False
    depth = 0
    deep_reported = False
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        assert m is not None  # `.` matches anything but a newline, which `nl` takes
        kind = m.lastgroup or "bad"
        end = m.end()
        if kind in ("nl", "ws", "comment"):
            # Comments, and whitespace pyparsing would not skip, are blanked for it.
            if kind == "comment" or (kind == "ws" and ("\f" in m.group(0) or "\v" in m.group(0))):
                comments.append((pos, end))
            space = True
            pos = end
            continue
        if kind == "number":
            u = _UNIT_AT.match(text, end)
            if u is not None:
                end = u.end()
            elif end < n and (text[end].isalnum() or text[end] in "_µμ"):
                tail = _NAME_TAIL.match(text, end)
                unit = tail.group(0) if tail else text[end]
                errors.append(
                    LexError(
                        end,
                        f"unknown unit {unit!r}",
                        "units: ns us ms s m h, B KB MB GB KiB MiB GiB, /s, MiB/s, %"
                        " (no space between number and unit)",
                    )
                )
                end = tail.end() if tail else end + 1
        elif kind == "badstring":
            errors.append(LexError(pos, "unterminated string", 'close it with "'))
        elif kind == "bad":
            ch = m.group(0)
            hint = "use == to compare" if ch == "=" else ""
            if ch in "µμ":
                hint = "a unit follows its number with no space: 5µs"
            errors.append(LexError(pos, f"unexpected character {ch!r}", hint))
        elif kind == "op":
            if m.group(0) == "(":
                depth += 1
                if depth > MAX_DEPTH and not deep_reported:
                    deep_reported = True
                    errors.append(LexError(pos, f"parentheses nested deeper than {MAX_DEPTH}"))
            elif m.group(0) == ")":
                depth = max(depth - 1, 0)
        tokens.append(Token(kind, text[pos:end], pos, space))
        space = False
        pos = end
    return tokens, errors, comments


def split_items(tokens: list[Token]) -> list[tuple[int, int]]:
    """Token index ranges of the file's items: each starts at `rule` or `define`.

    A leading range that does not start with either keyword is returned too, so
    that the caller can report it.
    """
    starts = [i for i, t in enumerate(tokens) if t.kind == "name" and t.text in ("rule", "define")]
    if not tokens:
        return []
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    bounds = [*starts, len(tokens)]
    return [(bounds[k], bounds[k + 1]) for k in range(len(starts))]


def parse_number(text: str) -> tuple[float, Kind]:
    """A number literal (`-1.5ms`, `64KiB`, `100/s`) in its base unit, with its kind."""
    m = _NUMBER.match(text)
    if m is None:
        raise ValueError(text)
    unit = m.group("unit") or ""
    if unit in _DURATION_RATE_UNITS:
        factor, kind = float(DURATION_UNITS[unit[:-2]]), Kind.DURATION_RATE
    else:
        factor, kind = unit_factor(unit)
    value = float(m.group("num")) * factor
    return (-value if m.group("neg") else value), kind


def decode_string(literal: str) -> tuple[str, list[int]]:
    """The value of a string literal, and for each value character its offset in `literal`.

    Only `\\"` and `\\\\` are escapes; any other backslash stays as written.
    """
    out: list[str] = []
    where: list[int] = []
    i, end = 1, len(literal) - 1
    while i < end:
        ch = literal[i]
        if ch == "\\" and i + 1 < end and literal[i + 1] in '"\\':
            out.append(literal[i + 1])
            where.append(i)
            i += 2
            continue
        out.append(ch)
        where.append(i)
        i += 1
    return "".join(out), where


def normalize_source(text: str) -> str:
    """Comments removed, whitespace runs made one space, none after `(` or before `)` `,`."""
    tokens, _ = tokenize(text)
    parts: list[str] = []
    prev = ""
    for t in tokens:
        if parts and t.space_before and prev != "(" and t.text not in (")", ","):
            parts.append(" ")
        parts.append(t.text)
        prev = t.text
    return "".join(parts)
