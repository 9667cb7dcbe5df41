"""Which probes a plan attaches, what it reports missing, what it pushes into the kernel."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from engine.dsl import compile_text
from engine.errors import HostError
from probes import live

RULES = """
rule slow_disk
  when p99(disk.io.latency) > 1ms over 1s
rule runq
  when count(sched.runq where latency > 5ms) > 10 over 1s
rule commit_stall
  when p99(disk.io.latency) > 1ms
  within 100ms of fs.commit
"""


class FakeSource:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name = name
        self.streams = frozenset({name})
        self.fail = fail
        self.opened = self.closed = False

    def open(self) -> None:
        if self.fail:
            raise HostError("cannot load probe: compile error")
        self.opened = True

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"missing": {}, "broken": set(), "loaded": [], "opts": {}}

    def available(stream: str) -> tuple[bool, str]:
        why = state["missing"].get(stream)
        return (False, why) if why else (True, "ok")

    def load_many(
        streams: Iterable[str], options: Mapping[str, Mapping[str, Any]]
    ) -> list[FakeSource]:
        (s,) = list(streams)
        state["loaded"].append(s)
        state["opts"][s] = dict(options.get(s, {}))
        return [FakeSource(s, fail=s in state["broken"])]

    monkeypatch.setattr(live, "_registry", lambda: (available, load_many))
    return state


def test_only_streams_rules_read_are_attached(registry: dict[str, Any]) -> None:
    plan = compile_text(RULES)
    ls = live.sources_for_plan(plan)
    assert sorted(registry["loaded"]) == ["disk.io", "fs.commit", "sched.runq"]
    assert all(s.opened for s in ls.sources)  # type: ignore[attr-defined]
    assert ls.unavailable == {} and ls.inactive == {}
    ls.close()
    assert all(s.closed for s in ls.sources)  # type: ignore[attr-defined]


def test_unavailable_stream_makes_its_rules_inactive(registry: dict[str, Any]) -> None:
    registry["missing"]["fs.commit"] = "tracepoint jbd2:jbd2_start_commit missing"
    registry["broken"].add("sched.runq")
    ls = live.sources_for_plan(compile_text(RULES))
    assert set(ls.attached) == {"disk.io"}
    assert ls.unavailable["fs.commit"].startswith("tracepoint jbd2")
    assert "compile error" in ls.unavailable["sched.runq"]
    assert ls.inactive == {"commit_stall": ["fs.commit"], "runq": ["sched.runq"]}
    report = "\n".join(ls.report())
    assert "rule commit_stall inactive: needs fs.commit" in report
    assert "slow_disk" not in report


def test_runq_floor_is_pushed_down(registry: dict[str, Any]) -> None:
    live.sources_for_plan(compile_text(RULES))
    assert registry["opts"]["sched.runq"]["min_latency"] == 5_000_000


def test_floor_is_the_smallest_bound_of_all_uses() -> None:
    plan = compile_text(
        RULES + "rule r2\n  when count(sched.runq where latency >= 2ms and cpu == 0) > 1 over 1s\n"
    )
    assert live.latency_floor(plan, "sched.runq") == 2_000_000


def test_no_floor_when_a_use_needs_every_event() -> None:
    plan = compile_text(RULES + "rule r3\n  when count(sched.runq) > 1000 over 1s\n")
    assert live.latency_floor(plan, "sched.runq") is None
    plan = compile_text(
        RULES + "rule r4\n  when count(sched.runq where latency > 1ms or cpu == 1) > 1 over 1s\n"
    )
    assert live.latency_floor(plan, "sched.runq") is None
    assert live.latency_floor(compile_text(RULES), "disk.io") is None


def test_explain_streams_attach_but_never_deactivate(registry: dict[str, Any]) -> None:
    registry["missing"]["zfs.txg.sync"] = "no ZFS module loaded"
    plan = compile_text(RULES)
    ls = live.sources_for_plan(plan, streams=plan.streams | {"proc.exec", "zfs.txg.sync", "lost"})
    assert "proc.exec" in ls.attached
    assert "lost" not in registry["loaded"], "the drain makes `lost`; no probe is loaded for it"
    assert ls.unavailable == {"zfs.txg.sync": "no ZFS module loaded"}
    assert ls.inactive == {}
