"""The Finding record (events.md, "Findings"): what a rule match carries to sinks.

Rendering for people (summary, side-by-side histograms) lives in render.py; this
module holds the typed record, its stable id and its JSON form.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

__all__ = ["SEVERITIES", "Evidence", "ExplainEntry", "Finding", "Histogram"]

SEVERITIES = ("info", "warning", "critical")  # rules.md `severity`, least severe first


class Histogram(msgspec.Struct, frozen=True):
    """A log2 histogram of one field: bucket k holds [2^k, 2^(k+1)); 0 is in [0, 1)."""

    count: int
    min: float | None
    max: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    buckets: list[tuple[int, int, int]]  # [lo, hi, count], empty ends left out


class Evidence(msgspec.Struct, frozen=True):
    window: Histogram
    baseline: Histogram


class ExplainEntry(msgspec.Struct, frozen=True):
    stream: str
    lift: float
    support: int
    coverage: float


class Finding(msgspec.Struct, kw_only=True, omit_defaults=True):
    rule: str
    severity: str
    ts: int
    window: tuple[int, int]
    key: dict[str, Any]
    values: dict[str, float | None]
    trigger: dict[str, Any] | None
    evidence: dict[str, Evidence]
    summary: str
    lost: int
    period: int | None = None  # periodic rules only
    episodes: list[int] | None = None  # periodic rules: the episode times (ns)
    explain: list[ExplainEntry] | None = None  # rules with `explain` only
    labels: dict[str, str] | None = None
    description: str | None = None

    @property
    def id(self) -> str:
        """Stable across restarts and replays: a hash of rule, key and window."""
        h = hashlib.sha256()
        h.update(self.rule.encode())
        h.update(msgspec.json.encode(sorted(self.key.items())))
        h.update(f"{self.window[0]}:{self.window[1]}".encode())
        return h.hexdigest()[:32]

    def to_json(self) -> bytes:
        """One JSON object; fields without defaults (trigger included) always appear."""
        return msgspec.json.encode(self)
