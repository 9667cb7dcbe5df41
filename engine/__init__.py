"""tracehound's engine: the public API, nothing else.

Names load lazily, so `import engine.model` (what probes do) stays cheap and does
not pull in the compiler or the runtime.

    from engine import compile_paths, Evaluator, TraceSource
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "CATALOG",
    "Batch",
    "Bus",
    "Config",
    "Evaluator",
    "Finding",
    "HostError",
    "LiveClock",
    "Plan",
    "ReplayClock",
    "RuleErrors",
    "Source",
    "TraceError",
    "TraceHoundError",
    "TraceSource",
    "TraceWriter",
    "compile_paths",
    "compile_text",
    "load_config",
    "run_pipeline",
]

_WHERE = {
    "CATALOG": ".model",
    "Batch": ".batch",
    "Bus": ".bus",
    "Config": ".config",
    "Evaluator": ".runtime",
    "Finding": ".findings",
    "HostError": ".errors",
    "LiveClock": ".clock",
    "Plan": ".dsl.plan",
    "ReplayClock": ".clock",
    "RuleErrors": ".errors",
    "Source": ".source",
    "TraceError": ".errors",
    "TraceHoundError": ".errors",
    "TraceSource": ".sources",
    "TraceWriter": ".tracefile",
    "compile_paths": ".dsl",
    "compile_text": ".dsl",
    "load_config": ".config",
    "run_pipeline": ".pipeline",
}

if TYPE_CHECKING:
    from .batch import Batch
    from .bus import Bus
    from .clock import LiveClock, ReplayClock
    from .config import Config, load_config
    from .dsl import compile_paths, compile_text
    from .dsl.plan import Plan
    from .errors import HostError, RuleErrors, TraceError, TraceHoundError
    from .findings import Finding
    from .model import CATALOG
    from .pipeline import run_pipeline
    from .runtime import Evaluator
    from .source import Source
    from .sources import TraceSource
    from .tracefile import TraceWriter


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
