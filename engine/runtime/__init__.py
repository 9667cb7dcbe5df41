"""The runtime: windows, aggregates, trigger windows, keys; pure and clock-free."""

from .evaluator import Evaluator

__all__ = ["Evaluator"]
