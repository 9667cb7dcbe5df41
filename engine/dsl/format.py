"""Canonical text of rules: parsing what this prints gives back the same AST.

Parentheses are printed only where precedence needs them; each clause goes on its
own line, in the order written.
"""

from __future__ import annotations

from . import ast

__all__ = ["format_define", "format_expr", "format_file", "format_rule", "format_string"]

# Precedence, loosest first: or, and, not, comparisons, + -, * /, atoms.
_OR, _AND, _NOT, _CMP, _ADD, _MUL, _ATOM = range(1, 8)


def format_string(value: str) -> str:
    """A string literal whose value is `value`; backslashes are doubled only if needed."""
    out = ['"']
    for i, ch in enumerate(value):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            out.append("\\\\" if nxt in ('"', "\\", "") else "\\")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _prec(node: ast.Expr) -> int:
    if isinstance(node, ast.BoolExpr):
        return _OR if node.op == "or" else _AND
    if isinstance(node, ast.Not):
        return _NOT
    if isinstance(node, ast.Compare | ast.In | ast.Match):
        return _CMP
    if isinstance(node, ast.Binary):
        return _ADD if node.op in "+-" else _MUL
    return _ATOM


def _fmt(node: ast.Expr, need: int) -> str:
    text = _bare(node)
    return f"({text})" if _prec(node) < need else text


def _bare(node: ast.Expr) -> str:
    if isinstance(node, ast.Num):
        return node.text
    if isinstance(node, ast.Str):
        return format_string(node.value)
    if isinstance(node, ast.Name):
        return node.name
    if isinstance(node, ast.Call):
        parts = [node.target.name]
        if node.where is not None:
            parts.append(f" where {_fmt(node.where, _OR)}")
        if node.over is not None:
            parts.append(f" over {node.over.text}")
        if node.arg is not None:
            parts.append(f", {node.arg.text}")
        return f"{node.func}({''.join(parts)})"
    if isinstance(node, ast.Binary):
        # A flat chain is a left-deep tree: a loop down its left spine, no recursion.
        tails: list[str] = []
        b = node
        while True:
            p = _prec(b)
            tails.append(f" {b.op} {_fmt(b.right, p + 1)}")
            if isinstance(b.left, ast.Binary) and _prec(b.left) >= p:
                b = b.left
                continue
            return _fmt(b.left, p) + "".join(reversed(tails))
    if isinstance(node, ast.Compare):
        return f"{_fmt(node.left, _ADD)} {node.op} {_fmt(node.right, _ADD)}"
    if isinstance(node, ast.In):
        values = ", ".join(_fmt(v, _ATOM) for v in node.values)
        return f"{_fmt(node.left, _ADD)} in ({values})"
    if isinstance(node, ast.Match):
        return f"{_fmt(node.left, _ADD)} matches {format_string(node.pattern.value)}"
    if isinstance(node, ast.BoolExpr):
        p = _prec(node)
        return f" {node.op} ".join(_fmt(i, p + 1) for i in node.items)
    nots = 0
    item: ast.Expr = node
    while isinstance(item, ast.Not):  # stacked `not`s, without recursion
        item = item.item
        nots += 1
    return "not " * nots + _fmt(item, _NOT)


def format_expr(node: ast.Expr) -> str:
    return _bare(node)


def _trigger(t: ast.TriggerRef) -> str:
    if t.where is None:
        return t.stream.name
    return f"{t.stream.name} where {_fmt(t.where, _OR)}"


def _names(names: tuple[ast.Name, ...]) -> str:
    return ", ".join(n.name for n in names)


def _clause(c: ast.Clause) -> str:
    if isinstance(c, ast.When):
        return f"when {format_expr(c.cond)}"
    if isinstance(c, ast.Within):
        return f"within {c.d.text} of {_trigger(c.trigger)}"
    if isinstance(c, ast.Before):
        return f"before {_trigger(c.trigger)} within {c.d.text}"
    if isinstance(c, ast.After):
        return f"after {_trigger(c.trigger)} within {c.d.text}"
    if isinstance(c, ast.During):
        return f"during {_trigger(c.trigger)}"
    if isinstance(c, ast.Over):
        return f"over {c.d.text}"
    if isinstance(c, ast.For):
        return f"for {c.d.text}"
    if isinstance(c, ast.By):
        return f"by {_names(c.fields)}"
    if isinstance(c, ast.Periodic):
        out = "periodic"
        if c.every is not None:
            out += f" every {c.every.text}"
            if c.jitter is not None:
                out += f" ± {c.jitter.text}"
        if c.at_least is not None:
            out += f" at least {c.at_least.text} times"
        return out
    if isinstance(c, ast.Explain):
        out = "explain"
        if c.streams:
            out += f" by {_names(c.streams)}"
        if c.within is not None:
            out += f" within {c.within.text}"
        return out
    if isinstance(c, ast.Severity):
        return f"severity {c.level.name}"
    if isinstance(c, ast.Cooldown):
        return f"cooldown {c.d.text}"
    if isinstance(c, ast.Evidence):
        return f"evidence {_names(c.fields)}"
    if isinstance(c, ast.Baseline):
        return f"baseline {c.d.text}"
    if isinstance(c, ast.Summary):
        return f"summary {format_string(c.template.value)}"
    if isinstance(c, ast.Notify):
        return f"notify {_names(c.sinks)}"
    pairs = ", ".join(f"{n.name} = {format_string(v.value)}" for n, v in c.pairs)
    return f"labels {pairs}"


def format_rule(rule: ast.Rule) -> str:
    head = f"rule {rule.name.name}"
    if rule.description is not None:
        head += f" {format_string(rule.description.value)}"
    lines = [head, *(f"  {_clause(c)}" for c in rule.clauses)]
    return "\n".join(lines) + "\n"


def format_define(define: ast.Define) -> str:
    return f"define {define.name.name} = {format_expr(define.body)}\n"


def format_file(file: ast.File) -> str:
    out = []
    for item in file.items:
        out.append(format_rule(item) if isinstance(item, ast.Rule) else format_define(item))
    return "\n".join(out)
