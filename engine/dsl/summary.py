"""Summary templates: `"p99 {p99(disk.io.latency)} on {...}"` -> literal and value parts.

`{{` and `}}` stand for literal braces. Expressions inside braces are parsed with the
rule grammar and positioned exactly inside the string for errors.
"""

from __future__ import annotations

import re

from ..errors import SourceSpan
from . import ast, plan
from .check import ExprChecker
from .grammar import ParseContext, SyntaxFailure, parse_expr
from .lexer import decode_string, tokenize
from .parse import describe_failure

__all__ = ["compile_summary"]

_STRING = re.compile(r'"(?:[^"\\\n]|\\[^\n])*"')


class _TemplateContext(ParseContext):
    """Maps offsets in the decoded template to columns of the string literal."""

    def __init__(self, span: SourceSpan, raw_index: list[int], start: int) -> None:
        super().__init__(span.file, "")
        self._span0 = span
        self._raw = raw_index
        self._start = start

    def span(self, loc: int) -> SourceSpan:
        i = self._start + loc
        raw = self._raw[i] if i < len(self._raw) else (self._raw[-1] + 1 if self._raw else 1)
        return SourceSpan(self._span0.file, self._span0.line, self._span0.col + raw)


def compile_summary(template: ast.Str, x: ExprChecker) -> tuple[str | plan.ValueExpr, ...]:
    text = template.value
    line = x.sources.line(template.span)
    m = _STRING.match(line, max(template.span.col - 1, 0))
    raw_index = decode_string(m.group(0))[1] if m else [i + 1 for i in range(len(text))]
    if len(raw_index) != len(text):
        raw_index = [i + 1 for i in range(len(text))]

    def span(i: int) -> SourceSpan:
        return _TemplateContext(template.span, raw_index, i).span(0)

    parts: list[str | plan.ValueExpr] = []
    lit: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "{}" and text.startswith(ch * 2, i):
            lit.append(ch)
            i += 2
            continue
        if ch == "}":
            raise x.error("'}' without '{' in summary", span(i), "write }} for a literal brace")
        if ch != "{":
            lit.append(ch)
            i += 1
            continue
        close = text.find("}", i + 1)
        if close < 0:
            raise x.error("'{' without '}' in summary", span(i), "write {{ for a literal brace")
        source = text[i + 1 : close]
        if not source.strip():
            raise x.error("empty {} in summary", span(i))
        ctx = _TemplateContext(template.span, raw_index, i + 1)
        try:
            node = parse_expr(source, ctx)
        except RecursionError:
            raise x.error("expression nested too deeply", span(i)) from None
        if isinstance(node, SyntaxFailure):
            tokens, _ = tokenize(source)
            found = next((t for t in tokens if t.start >= node.loc), None)
            message, hint = describe_failure(node, found, "end of '{...}'")
            raise x.error(message, span(i + 1 + min(node.loc, len(source))), hint)
        value, _kind = x.value(node)
        if lit:
            parts.append("".join(lit))
            lit = []
        parts.append(value)
        i = close + 1
    if lit:
        parts.append("".join(lit))
    return tuple(parts)
