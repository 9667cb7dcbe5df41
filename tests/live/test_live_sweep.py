"""The drain's sweep period follows the clock's lateness (what watch passes down)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from engine.dsl import compile_text
from probes import live
from probes.drain import BccProbeSource, sweep_for
from probes.jbd2 import SPEC

RULES = """
rule slow_disk
  when p99(disk.io.latency) > 1ms over 1s
rule runq
  when count(sched.runq) > 10 over 1s
"""


class _Opened:
    name = "fake"
    streams = frozenset({"fake"})

    def open(self) -> None:
        pass


@pytest.fixture
def opts(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}

    def load_many(streams: Iterable[str], options: Mapping[str, Mapping[str, Any]]) -> list[Any]:
        for s in streams:
            seen[s] = dict(options.get(s, {}))
        return [_Opened()]

    monkeypatch.setattr(live, "_registry", lambda: (lambda s: (True, "ok"), load_many))
    return seen


@pytest.mark.parametrize("lateness", [None, 20_000_000, 200_000_000])
def test_every_probe_is_swept_within_the_lateness(
    opts: dict[str, dict[str, Any]], lateness: int | None
) -> None:
    live.sources_for_plan(compile_text(RULES), lateness=lateness)
    bound = (lateness or 50_000_000) / 1e9
    assert set(opts) == {"disk.io", "sched.runq"}
    for o in opts.values():
        src = BccProbeSource(SPEC, o)
        assert 0 < src.sweep_s <= src.sweep_idle_s < bound
        assert (src.sweep_s, src.sweep_idle_s) == sweep_for(lateness or 50_000_000)


def test_an_explicit_sweep_wins(opts: dict[str, dict[str, Any]]) -> None:
    live.sources_for_plan(compile_text(RULES), {"disk.io": {"sweep": 0.005}}, lateness=10**9)
    src = BccProbeSource(SPEC, opts["disk.io"])
    assert src.sweep_s == src.sweep_idle_s == 0.005
