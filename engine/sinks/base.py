"""The Sink protocol and the router that decides which sinks get a finding.

Sinks never raise into the pipeline for a delivery problem: a webhook only queues,
a file sink reports an I/O error once. The router applies each configured sink's
`min_severity` and a rule's `notify` list, so sinks themselves stay simple.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Protocol

from ..config import SinkConfig
from ..findings import Finding
from .metrics import Metrics

__all__ = ["FailureNote", "Router", "Sink"]


class Sink(Protocol):
    name: str

    async def send(self, finding: Finding) -> None: ...

    async def aclose(self) -> None: ...


class FailureNote:
    """Says on stderr that a sink's writes fail, once per spell of failures, so that a
    full disk neither stops the watchdog nor floods its log."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._failing = False

    def failed(self, err: Exception) -> None:
        if not self._failing:
            print(f"tracehound: {self.what}: {err}", file=sys.stderr)
        self._failing = True

    def worked(self) -> None:
        self._failing = False


class Router:
    """Fans a finding out: `always` sinks get every finding; configured sinks are
    filtered by the rule's `notify` names (None: all) and their `min_severity`."""

    def __init__(
        self,
        always: Sequence[Sink] = (),
        configured: Sequence[tuple[Sink, SinkConfig]] = (),
        metrics: Metrics | None = None,
    ) -> None:
        self.always = list(always)
        self.configured = list(configured)
        self.metrics = metrics

    @property
    def names(self) -> list[str]:
        return [c.name for _, c in self.configured]

    async def send(self, finding: Finding, notify: Sequence[str] | None = None) -> None:
        if self.metrics is not None:
            self.metrics.inc(
                "tracehound_findings_total", {"rule": finding.rule, "severity": finding.severity}
            )
        for s in self.always:
            await s.send(finding)
        for sink, cfg in self.configured:
            if notify is not None and cfg.name not in notify:
                continue
            if not cfg.accepts(finding.severity):
                continue
            await sink.send(finding)

    async def aclose(self) -> None:
        for s in [*self.always, *(s for s, _ in self.configured)]:
            await s.aclose()
