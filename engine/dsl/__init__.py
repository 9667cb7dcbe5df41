"""The rule language: text -> checked AST -> plan.Plan (what the runtime evaluates).

Every mistake in a rule surfaces as `engine.errors.RuleErrors` (a list of RuleError
with file, line, column, the offending line and a hint); nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import RuleError, RuleErrors, SourceSpan
from . import ast
from .format import format_define, format_expr, format_file, format_rule
from .loader import compile_sources, expand_paths, read_sources
from .plan import CompiledRule, Plan

__all__ = [
    "CompiledRule",
    "Plan",
    "compile_paths",
    "compile_text",
    "format_define",
    "format_expr",
    "format_file",
    "format_rule",
    "parse_text",
]


def _guarded(fn, *args):
    """Run a compiler entry point; any failure that is not a RuleErrors is our bug,
    still reported as a rule error rather than a traceback."""
    try:
        return fn(*args)
    except RuleErrors:
        raise
    except RuleError as e:
        raise RuleErrors([e]) from None
    except RecursionError:
        raise RuleErrors(
            [RuleError("rule nested too deeply", SourceSpan(_first_file(args), 1, 1))]
        ) from None
    except Exception as e:  # pragma: no cover - a compiler bug; never a traceback
        raise RuleErrors(
            [
                RuleError(
                    f"internal error: {type(e).__name__}: {e}", SourceSpan(_first_file(args), 1, 1)
                )
            ]
        ) from None


def _first_file(args: tuple[object, ...]) -> str:
    for a in args:
        if isinstance(a, str):
            return a
        if isinstance(a, list | tuple) and a:
            first = a[0]
            if isinstance(first, str):
                return first
            if isinstance(first, tuple) and first and isinstance(first[0], str):
                return first[0]
    return "<string>"


def compile_text(text: str, file: str = "<string>") -> Plan:
    """Compile the text of one rule file."""
    plan: Plan = _guarded(compile_sources, [(file, text)])
    return plan


def compile_paths(paths: Sequence[str]) -> Plan:
    """Compile rule files and folders (every *.rules inside, recursively, sorted)."""

    def run(ps: Sequence[str]) -> Plan:
        return compile_sources(read_sources(expand_paths(ps)))

    plan: Plan = _guarded(run, list(paths))
    return plan


def parse_text(text: str, file: str = "<string>") -> ast.File:
    """Parse without checking names or units; raises RuleErrors on syntax errors."""
    from .parse import parse_text as _parse

    result: ast.File = _guarded(_parse, text, file)
    return result
