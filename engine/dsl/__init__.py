"""The rule language: text -> checked AST -> plan.Plan (what the runtime evaluates).

Every mistake in a rule surfaces as `engine.errors.RuleErrors` (a list of RuleError
with file, line, column, the offending line and a hint); nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ..errors import RuleError, RuleErrors, SourceSpan
from . import ast
from .format import format_define, format_expr, format_file, format_rule
from .loader import compile_sources, expand_paths, read_sources
from .parse import parse_text as _parse
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

T = TypeVar("T")


def _guarded(file: str, fn: Callable[[], T]) -> T:
    """Run a compiler entry point. Anything but RuleErrors escaping it is a compiler
    bug, still reported as a rule error (naming `file`) rather than a traceback."""
    try:
        return fn()
    except RuleErrors:
        raise
    except RuleError as e:
        raise RuleErrors([e]) from None
    except RecursionError:
        raise RuleErrors([RuleError("rule nested too deeply", SourceSpan(file, 1, 1))]) from None
    except Exception as e:  # pragma: no cover - a compiler bug; never a traceback
        message = f"internal error: {type(e).__name__}: {e}"
        raise RuleErrors([RuleError(message, SourceSpan(file, 1, 1))]) from None


def compile_text(text: str, file: str = "<string>") -> Plan:
    """Compile the text of one rule file."""
    return _guarded(file, lambda: compile_sources([(file, text)]))


def compile_paths(paths: Sequence[str]) -> Plan:
    """Compile rule files and folders (every *.rules inside, recursively, sorted)."""

    paths = list(paths)
    first = paths[0] if paths else "<none>"
    return _guarded(first, lambda: compile_sources(read_sources(expand_paths(paths))))


def parse_text(text: str, file: str = "<string>") -> ast.File:
    """Parse without checking names or units; raises RuleErrors on syntax errors."""
    return _guarded(file, lambda: _parse(text, file))
