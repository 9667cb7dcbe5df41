"""Files and folders -> Plan: load order, defines across files, unique rule names.

A file's defines are visible in the whole file and in every file loaded after it;
a folder contributes its `*.rules` files recursively in sorted path order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import RuleError, RuleErrors, SourceSpan
from ..model import CATALOG
from . import ast, plan
from .compile import compile_rule, pred_fields
from .diag import Sources
from .parse import parse_file

__all__ = ["compile_sources", "expand_paths", "read_sources"]

_FIELD_NAMES = frozenset(f for spec in CATALOG.values() for f in spec.fields)


def expand_paths(paths: Sequence[str]) -> list[str]:
    """Every rule file the paths name, in load order. Raises RuleErrors for missing paths."""
    out: list[str] = []
    missing: list[RuleError] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(sorted(str(f) for f in path.rglob("*.rules") if f.is_file()))
        elif path.is_file():
            out.append(str(path))
        else:
            missing.append(RuleError("no such file or directory", SourceSpan(p, 0, 0)))
    if missing:
        raise RuleErrors(missing)
    return out


def read_sources(files: Sequence[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    errors: list[RuleError] = []
    for f in files:
        try:
            with open(f, "rb") as fh:
                data = fh.read()
        except OSError as e:
            errors.append(RuleError(f"cannot read: {e.strerror or e}", SourceSpan(f, 0, 0)))
            continue
        data = data.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark is no text
        try:
            out.append((f, data.decode("utf-8")))
        except UnicodeDecodeError as e:
            errors.append(_bad_utf8(f, data, e.start))
    if errors:
        raise RuleErrors(errors)
    return out


def _bad_utf8(file: str, data: bytes, at: int) -> RuleError:
    """The error for a byte that is not UTF-8, at its line and column (in characters)."""
    line_start = data.rfind(b"\n", 0, at) + 1
    line_end = data.find(b"\n", at)
    line = data[line_start : len(data) if line_end < 0 else line_end]
    col = len(data[line_start:at].decode("utf-8")) + 1  # all valid before the first bad byte
    span = SourceSpan(file, data.count(b"\n", 0, at) + 1, col)
    text = line.decode("utf-8", errors="replace").rstrip("\r")
    return RuleError(
        f"invalid UTF-8 byte 0x{data[at]:02x}", span, text, "rule files are UTF-8 text"
    )


def _refs(node: ast.Expr) -> Iterator[ast.Name]:
    """Names an expression mentions (define candidates)."""
    stack: list[ast.Expr] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Name):
            yield n
        elif isinstance(n, ast.Call):
            if n.where is not None:
                stack.append(n.where)
        elif isinstance(n, ast.Binary | ast.Compare):
            stack.extend((n.left, n.right))
        elif isinstance(n, ast.In | ast.Match):
            stack.append(n.left)
            if isinstance(n, ast.In):
                stack.extend(n.values)
        elif isinstance(n, ast.BoolExpr):
            stack.extend(n.items)
        elif isinstance(n, ast.Not):
            stack.append(n.item)


def _find_cycle(start: str, defines: dict[str, ast.Define]) -> list[str] | None:
    """A cycle of defines reached from `start` (depth first, without recursion: a
    long chain of defines is no deeper for Python than a short one)."""
    if start not in defines:
        return None
    path: list[str] = [start]
    on_path: set[str] = {start}
    done: set[str] = set()
    todo: list[Iterator[ast.Name]] = [_refs(defines[start].body)]
    while todo:
        ref = next(todo[-1], None)
        if ref is None:
            todo.pop()
            name = path.pop()
            on_path.discard(name)
            done.add(name)
            continue
        name = ref.name
        if name in on_path:
            return [*path[path.index(name) :], name]
        if name in done or name not in defines:
            continue
        path.append(name)
        on_path.add(name)
        todo.append(_refs(defines[name].body))
    return None


def compile_sources(sources_in: Sequence[tuple[str, str]]) -> plan.Plan:
    """Compile (file, text) pairs in load order; raises RuleErrors with every error."""
    sources = Sources()
    errors: list[RuleError] = []
    defines: dict[str, ast.Define] = {}
    rule_at: dict[str, SourceSpan] = {}
    rules: list[plan.CompiledRule] = []
    for file, text in sources_in:
        file_errors_from = len(errors)
        parsed, errs = parse_file(text, file, sources)
        errors.extend(errs)
        new_defines = [i for i in parsed.items if isinstance(i, ast.Define)]
        for d in new_defines:
            name = d.name.name
            if name in defines:
                first = defines[name].name.span
                errors.append(
                    sources.error(
                        f"define {name} is already defined",
                        d.name.span,
                        f"first defined at {first}",
                    )
                )
                continue
            if name in _FIELD_NAMES or name in CATALOG:
                errors.append(
                    sources.error(
                        f"a define cannot be named like a field: {name}",
                        d.name.span,
                        "choose another name",
                    )
                )
                continue
            defines[name] = d
        # A cycle stays in the table: a rule using it gets its own error at the use.
        for d in new_defines:
            if defines.get(d.name.name) is not d:
                continue
            cycle = _find_cycle(d.name.name, defines)
            if cycle and cycle[0] == d.name.name:
                errors.append(
                    sources.error(
                        f"define {d.name.name} refers to itself: {' -> '.join(cycle)}",
                        d.name.span,
                    )
                )
        for item in parsed.items:
            if not isinstance(item, ast.Rule):
                continue
            name = item.name.name
            if name in rule_at:
                errors.append(
                    sources.error(
                        f"rule {name} is already defined",
                        item.name.span,
                        f"first defined at {rule_at[name]}",
                    )
                )
                continue
            rule_at[name] = item.name.span
            compiled, errs = compile_rule(item, sources, dict(defines))
            errors.extend(errs)
            if compiled is not None:
                rules.append(compiled)
        errors[file_errors_from:] = sorted(
            errors[file_errors_from:], key=lambda e: (e.span.line, e.span.col)
        )
    if errors:
        raise RuleErrors(errors)
    return plan.Plan(tuple(rules), _fields(rules))


def _fields(rules: Sequence[plan.CompiledRule]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for r in rules:
        for a in r.aggregates:
            s = out.setdefault(a.stream, set())
            if a.field is not None:
                s.add(a.field)
            s |= pred_fields(a.where)
        for stream, field in r.evidence:
            out.setdefault(stream, set()).add(field)
        if r.correlation is not None:
            t = r.correlation.trigger
            out.setdefault(t.stream, set()).update(pred_fields(t.where))
        for stream in r.streams:
            carried = CATALOG[stream].fields
            out.setdefault(stream, set()).update(k for k in r.by if k in carried)
    return {s: frozenset(f) for s, f in sorted(out.items())}
