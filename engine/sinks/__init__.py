"""Where findings go: console, JSON lines, the SQLite store, webhooks, metrics."""

from .base import Router, Sink

__all__ = ["Router", "Sink"]
