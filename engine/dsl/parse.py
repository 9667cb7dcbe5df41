"""Text -> ast.File, reporting every item that does not parse.

The file is tokenized once (lexical errors, comment positions), split into its
`rule`/`define` items, and each item is parsed on its own, so that one bad rule
neither hides the errors of the next nor moves their positions.
"""

from __future__ import annotations

import re

from ..errors import RuleError, RuleErrors
from . import ast
from .diag import Sources, suggest
from .grammar import CLAUSE_KEYWORDS, ParseContext, SyntaxFailure, parse_item
from .lexer import KEYWORDS, UNIT_ALTERNATION, Token, split_items, tokenize_with_comments

__all__ = ["describe_failure", "parse_file", "parse_text"]

_OPERATORS = {"an operator", "a comparison", "'and'", "'or'", "'in'", "'matches'"}
_EXPR_START = {"a name", "a number", "'('"}
_CLAUSES = {f"'{k}'" for k in CLAUSE_KEYWORDS}


def _describe_expected(expected: frozenset[str]) -> str:
    items = set(expected) - {"end"}
    parts: list[str] = []
    if items >= _EXPR_START:
        items -= _EXPR_START | {"a string", "'not'"}
        parts.append("an expression")
    clauses = items & _CLAUSES
    if len(clauses) >= 3:
        items -= _CLAUSES
        parts.append("a clause keyword (when, within, by, severity, ...)")
    if len(items & _OPERATORS) >= 2:
        items -= _OPERATORS
        parts.append("an operator")
    parts.extend(sorted(items))
    if "end" in expected and not parts:
        parts.append("the end of the rule")
    if not parts:
        return "something else"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def describe_failure(fail: SyntaxFailure, found: Token | None, at_end: str) -> tuple[str, str]:
    """(message, hint) for a syntax error at `found` (None: at `at_end`)."""
    what = f"{found.text!r}" if found is not None else at_end
    message = f"unexpected {what}; expected {_describe_expected(fail.expected)}"
    hint = ""
    if found is not None and found.kind == "name":
        word = found.text
        words = [e.strip("'") for e in fail.expected if e.startswith("'")]
        if fail.expected & _CLAUSES:
            words.extend(CLAUSE_KEYWORDS)
        if word in KEYWORDS and "a name" in fail.expected:
            hint = f"{word!r} is a keyword and cannot be used as a name"
        elif word.lower() in words:
            hint = f"keywords are lower case: {word.lower()}"
        else:
            best = suggest(word, [w for w in words if w.isalpha()])
            if best:
                hint = f"did you mean {best}?"
    elif found is not None and found.text == "=" and "an operator" in fail.expected:
        hint = "use == to compare"
    return message, hint


def _is_unit(text: str) -> bool:
    return re.fullmatch(UNIT_ALTERNATION, text) is not None


def parse_file(text: str, file: str, sources: Sources) -> tuple[ast.File, list[RuleError]]:
    """Every item that parses, and an error for each one that does not."""
    sources.add(file, text)
    tokens, lex_errors, comments = tokenize_with_comments(text)
    ctx = ParseContext(file, text)
    errors: list[RuleError] = []
    # Comments become blanks so pyparsing never sees them and offsets stay exact.
    if comments:
        chars = list(text)
        for a, b in comments:
            chars[a:b] = " " * (b - a)
        clean = "".join(chars)
    else:
        clean = text
    lex_at = sorted(lex_errors, key=lambda e: e.offset)
    items: list[ast.Item] = []
    for lo, hi in split_items(tokens):
        start = tokens[lo].start
        stop = tokens[hi].start if hi < len(tokens) else len(text)
        bad = [e for e in lex_at if start <= e.offset < stop]
        if bad:
            e = bad[0]
            errors.append(sources.error(e.message, ctx.span_at(e.offset), e.hint))
            continue
        first = tokens[lo]
        if first.text not in ("rule", "define"):
            errors.append(
                sources.error(
                    f"unexpected {first.text!r}; expected 'rule' or 'define'",
                    ctx.span_at(first.start),
                    _hint_for_top(first.text),
                )
            )
            continue
        ctx.base = start
        try:
            result = parse_item(clean[start:stop], ctx)
        except RecursionError:
            at = _expression_start(tokens, lo, hi)
            errors.append(sources.error("expression nested too deeply", ctx.span_at(at)))
            continue
        if isinstance(result, SyntaxFailure):
            errors.append(_syntax_error(result, tokens, lo, hi, ctx, sources))
            continue
        items.append(result)
    # Lexical errors outside any item (none today, but keep them visible).
    return ast.File(tuple(items), file), errors


def _expression_start(tokens: list[Token], lo: int, hi: int) -> int:
    """Where an item's first expression starts (after `when`, or a define's `=`)."""
    for i in range(lo, hi - 1):
        if tokens[i].text in ("when", "=") and tokens[i].kind in ("name", "op"):
            return tokens[i + 1].start
    return tokens[lo].start


def _hint_for_top(word: str) -> str:
    best = suggest(word, ["rule", "define"])
    return f"did you mean {best}?" if best else ""


def _syntax_error(
    fail: SyntaxFailure,
    tokens: list[Token],
    lo: int,
    hi: int,
    ctx: ParseContext,
    sources: Sources,
) -> RuleError:
    offset = ctx.base + fail.loc
    found_i = next((i for i in range(lo, hi) if tokens[i].start >= offset), hi)
    found = tokens[found_i] if found_i < len(tokens) else None
    at_end = "end of file"
    if found is not None and found_i >= hi:
        at_end = f"{found.text!r}"
    message, hint = describe_failure(fail, found if found_i < hi else None, at_end)
    if found_i > lo and found is not None and found.kind == "name" and _is_unit(found.text):
        prev = tokens[found_i - 1]
        if prev.kind == "number" and found.space_before:
            hint = "a unit follows its number with no space: " + prev.text + found.text
    pos = found.start if found is not None else len(ctx.text)
    # An unclosed parenthesis is reported where it was opened, when the parse only
    # noticed it on a later line (typically at the next clause).
    if "')'" in fail.expected:
        depth_stack: list[Token] = []
        for t in tokens[lo:found_i]:
            if t.text == "(":
                depth_stack.append(t)
            elif t.text == ")" and depth_stack:
                depth_stack.pop()
        if depth_stack:
            opener = depth_stack[-1]
            here = ctx.span_at(pos)
            there = ctx.span_at(opener.start)
            if here.line > there.line:
                inside = found if found_i < hi else None
                found_text = "the end of the rule" if inside is None else repr(inside.text)
                return sources.error(
                    f"unclosed '(': expected ')' before {found_text} on line {here.line}",
                    there,
                )
    return sources.error(message, ctx.span_at(pos), hint)


def parse_text(text: str, file: str = "<string>") -> ast.File:
    """Parse a whole file; raises RuleErrors listing every item that does not parse."""
    sources = Sources()
    result, errors = parse_file(text, file, sources)
    if errors:
        raise RuleErrors(errors)
    return result
