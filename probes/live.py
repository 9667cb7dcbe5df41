"""Live sources for a compiled plan: attach only what the rules read, say what is missing.

A stream no rule reads keeps its probe off. A stream this host cannot provide is
reported with the reason (and the fix), and the rules that need it are listed as
inactive; the others run. Compilation and attachment happen here, before the event
loop drains anything, so a probe that fails to load is reported the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.dsl.plan import CompiledRule, Plan, Pred, PredBool, PredCompare
from engine.errors import HostError
from engine.source import Source

from . import host

__all__ = ["LiveSet", "inactive_rules", "latency_floor", "open_streams", "sources_for_plan"]

# Streams the drain produces itself; no probe provides them.
DRAIN_STREAMS = frozenset({"lost"})


@dataclass
class LiveSet:
    sources: list[Source] = field(default_factory=list)
    attached: dict[str, str] = field(default_factory=dict)  # stream -> source name
    unavailable: dict[str, str] = field(default_factory=dict)  # stream -> reason
    inactive: dict[str, list[str]] = field(default_factory=dict)  # rule -> missing streams

    def close(self) -> None:
        for s in self.sources:
            close = getattr(s, "close", None)
            if close is not None:
                close()

    def report(self) -> list[str]:
        """Lines for stderr: what is missing and which rules it switches off."""
        out = [f"stream {s} unavailable: {why}" for s, why in sorted(self.unavailable.items())]
        out += [
            f"rule {r} inactive: needs {', '.join(ms)}" for r, ms in sorted(self.inactive.items())
        ]
        out += [
            f"probe {s.name}: its raw tracepoint variant did not load ({why}): "
            "its tracepoint programs instead"
            for s in self.sources
            if (why := getattr(s, "fallback", None))
        ]
        return out


def inactive_rules(rules: Iterable[CompiledRule], missing: Iterable[str]) -> dict[str, list[str]]:
    gone = set(missing)
    out: dict[str, list[str]] = {}
    for r in rules:
        need = sorted(r.streams & gone)
        if need:
            out[r.name] = need
    return out


def _floor_of(pred: Pred | None, fld: str) -> float | None:
    """A lower bound `pred` puts on `fld` (x > v or x >= v, possibly inside an `and`)."""
    if isinstance(pred, PredCompare) and pred.field == fld and pred.op in (">", ">="):
        return float(pred.value) if isinstance(pred.value, int | float) else None
    if isinstance(pred, PredBool) and pred.op == "and":
        bounds = [b for b in (_floor_of(p, fld) for p in pred.items) if b is not None]
        return max(bounds) if bounds else None
    return None


def latency_floor(plan: Plan, stream: str, fld: str = "latency") -> int | None:
    """The largest bound every use of `stream` puts on `fld`: what may be filtered in
    the kernel. None when any use (evidence, an unfiltered aggregate) needs it all."""
    floors: list[float] = []
    for r in plan.rules:
        if any(s == stream for s, _ in r.evidence):
            return None
        for a in r.aggregates:
            if a.stream == stream:
                f = _floor_of(a.where, fld)
                if f is None:
                    return None
                floors.append(f)
        c = r.correlation
        if c is not None and c.trigger.stream == stream:
            f = _floor_of(c.trigger.where, fld)
            if f is None:
                return None
            floors.append(f)
    if not floors:
        return None
    return int(min(floors))


def _registry() -> Any:
    from . import available, load_many

    return available, load_many


def open_streams(
    streams: Iterable[str], options: Mapping[str, Mapping[str, Any]] | None = None
) -> LiveSet:
    """Check, build and open (compile + attach) one source per probe for `streams`."""
    available, load_many = _registry()
    live = LiveSet()
    wanted = sorted(set(streams) - DRAIN_STREAMS)
    ok_streams = []
    for s in wanted:
        try:
            ok, why = available(s)
        except OSError as e:  # a check that cannot even look (tracefs unreadable)
            priv = host.check_privilege()
            ok = False
            why = priv.message() if not priv.ok else f"{e.filename or ''}: {e.strerror or e}"
        if ok:
            ok_streams.append(s)
        else:
            live.unavailable[s] = why
    for s in ok_streams:
        try:
            (src,) = load_many([s], options or {})
            opener = getattr(src, "open", None)
            if opener is not None:
                opener()
        except HostError as e:
            live.unavailable[s] = str(e)
            continue
        live.sources.append(src)
        live.attached[s] = src.name
    return live


def sources_for_plan(
    plan: Plan,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    streams: Iterable[str] | None = None,
    lateness: int | None = None,
) -> LiveSet:
    """The live sources a plan needs; unavailable streams make their rules inactive.

    `streams` (default: what the rules read) may add streams rules only look at,
    such as `explain` candidates; missing ones of those make no rule inactive.
    `lateness` (ns, the clock's; default 50 ms) sets how often the drain sweeps its
    rings: a lone event reaches the bus within it (`probes.drain.sweep_for`).
    """
    from .drain import DEFAULT_LATENESS_NS, sweep_for

    opts: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (options or {}).items()}
    floor = latency_floor(plan, "sched.runq")
    if floor:
        opts.setdefault("sched.runq", {}).setdefault("min_latency", floor)
    wanted = set(plan.streams if streams is None else streams)
    sweep, idle = sweep_for(DEFAULT_LATENESS_NS if lateness is None else lateness)
    for s in wanted - DRAIN_STREAMS:  # pollers ignore these; they keep their interval
        o = opts.setdefault(s, {})
        if "sweep" not in o:
            o.setdefault("sweep_idle", idle)
            o["sweep"] = sweep
    live = open_streams(wanted, opts)
    live.inactive = inactive_rules(plan.rules, live.unavailable)
    return live
