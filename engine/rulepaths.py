"""Which rules a run loads: the built-in library, configured paths, or `--rules`.

`--rules` replaces everything (cli.md); otherwise the built-in library plus the
configuration's `rules.paths`, minus `rules.disable`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .config import Config
from .dsl.plan import Plan

__all__ = ["builtin_rules_dir", "load_plan", "needed_streams"]


def builtin_rules_dir() -> Path:
    """rules/ next to the engine package (a checkout), else the installed data copy."""
    here = Path(__file__).resolve().parent.parent / "rules"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "tracehound" / "rules"


def load_plan(rules: Sequence[str] | None, config: Config | None = None) -> Plan:
    """Compile the rule set; raises RuleErrors naming file, line and column."""
    from .dsl import compile_paths

    if rules:
        return compile_paths(list(rules))
    paths = [str(builtin_rules_dir())]
    disable: tuple[str, ...] = ()
    if config is not None:
        paths += list(config.rules.paths)
        disable = config.rules.disable
    plan = compile_paths(paths)
    if disable:
        plan = replace(plan, rules=tuple(r for r in plan.rules if r.name not in disable))
    return plan


def needed_streams(plan: Plan) -> frozenset[str] | None:
    """Streams a source must deliver for this plan (None: all of them).

    `lost` always (findings report losses); every stream when an `explain` ranks
    every stream seen.
    """
    if any(r.explain is not None and not r.explain.streams for r in plan.rules):
        return None
    extra: set[str] = {"lost"}
    for r in plan.rules:
        if r.explain is not None:
            extra.update(r.explain.streams)
    return plan.streams | extra
