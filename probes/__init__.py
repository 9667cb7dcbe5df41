"""The probe registry: which module provides each stream, and whether this host can.

No bcc import here (nor in anything this imports at module level): the registry must
answer `tracehound probes` on hosts without bcc. Probe modules are imported lazily by
name and follow one convention:

    probes/<module>.py
        def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> Source
        def check() -> tuple[bool, str]

A module that does not exist yet is reported unavailable ("not implemented").
`probes/synthetic.py` is not a probe but a test instrument (a synthetic sample load
for the drain's tests and benches): no stream names it, so no rule can attach it.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.errors import ConfigError, HostError
from engine.source import Source
from engine.units import parse_duration

from . import host

__all__ = ["PROBES", "ProbeInfo", "available", "interval_option", "load", "load_many"]

Kind = Literal["tracepoint", "kprobe", "poller"]


@dataclass(frozen=True, slots=True)
class ProbeInfo:
    stream: str
    module: str  # probes.<module>
    kind: Kind  # the preferred mechanism; the module's check() may fall back
    tracepoints: tuple[str, ...]  # group:event, all required
    doc: str


def _p(stream: str, module: str, kind: Kind, tracepoints: tuple[str, ...], doc: str) -> ProbeInfo:
    return ProbeInfo(stream, module, kind, tracepoints, doc)


# `lost` has no probe: the drain stamps it when a probe lost samples (docs/probes.md).
PROBES: dict[str, ProbeInfo] = {
    p.stream: p
    for p in (
        _p(
            "disk.io",
            "block_io",
            "tracepoint",
            (
                "block:block_rq_issue",
                "block:block_rq_complete",
                "block:block_rq_insert",
                "block:block_rq_requeue",
            ),
            "block request issue -> completion latency",
        ),
        _p(
            "fs.commit",
            "jbd2",
            "tracepoint",
            ("jbd2:jbd2_start_commit", "jbd2:jbd2_end_commit"),
            "ext4/jbd2 journal commits",
        ),
        _p("memcg", "memcg", "poller", (), "cgroupfs memory.usage/limit, sampled"),
        _p(
            "mm.reclaim",
            "mm_reclaim",
            "tracepoint",
            ("vmscan:mm_vmscan_direct_reclaim_begin", "vmscan:mm_vmscan_direct_reclaim_end"),
            "direct reclaim intervals",
        ),
        _p("net.drop", "net_drop", "tracepoint", ("skb:kfree_skb",), "dropped packets"),
        _p(
            "oom.kill",
            "oom",
            "tracepoint",
            ("oom:mark_victim", "vmscan:mm_vmscan_memcg_reclaim_begin"),
            "OOM killer victims (memcg reclaim tells a cgroup OOM)",
        ),
        _p("proc.exec", "proc_exec", "tracepoint", ("sched:sched_process_exec",), "exec calls"),
        _p(
            "sched.runq",
            "sched_runq",
            "tracepoint",
            ("sched:sched_wakeup", "sched:sched_wakeup_new", "sched:sched_switch"),
            "run-queue latency, wakeup -> switch-in",
        ),
        _p(
            "tcp.retransmit",
            "tcp",
            "tracepoint",
            ("tcp:tcp_retransmit_skb",),
            "TCP retransmissions",
        ),
        _p(
            "zfs.txg.sync",
            "zfs_txg",
            "kprobe",
            (),
            "TXG syncs: kprobe spa_sync, else the txgs kstat poller",
        ),
    )
}


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"{__name__}.{module}") is not None
    except ImportError:
        return False


def _bpf_checks(info: ProbeInfo) -> host.Check | None:
    """The first host requirement a bcc tracepoint probe lacks, or None."""
    checks = [host.check_privilege(), host.check_bcc(), host.check_tracefs(mount=True)]
    failed = host.first_failure(checks)
    if failed is not None:
        return failed
    failed = host.first_failure([host.check_tracepoint(tp) for tp in info.tracepoints])
    if failed is not None:
        return failed
    return host.first_failure([host.check_headers(), host.check_bpf_syscall()])


def available(stream: str) -> tuple[bool, str]:
    """Whether this host can provide `stream`, and why not (with the fix) when it cannot."""
    info = PROBES.get(stream)
    if info is None:
        return False, f"no probe provides {stream!r}"
    if not _module_exists(info.module):
        return False, f"not implemented (probes/{info.module}.py missing)"
    if info.kind == "tracepoint":
        try:
            failed = _bpf_checks(info)
        except OSError as e:  # e.g. a /sys file unreadable to this user
            return False, f"cannot check the host: {e} (fix: run as root)"
        if failed is not None:
            return False, failed.message()
    try:
        mod = importlib.import_module(f".{info.module}", __name__)
        ok, why = mod.check()
    except Exception as e:  # a broken probe module must not take the listing down
        return False, f"probes/{info.module}.py failed its check: {type(e).__name__}: {e}"
    why = str(why)
    if ok and why in ("", "ok"):
        why = f"{info.kind} {', '.join(info.tracepoints)}" if info.tracepoints else info.kind
    return bool(ok), why


def load(stream: str, **options: Any) -> Source:
    """The Source for one stream; raises HostError when it cannot be provided."""
    return load_many([stream], {stream: options})[0]


def load_many(
    streams: Iterable[str], options: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Source]:
    """One Source per probe module for the given streams (a module may serve several).

    `options` maps a stream to its probe options; streams of one module share them.
    """
    by_module: dict[str, set[str]] = {}
    for s in streams:
        info = PROBES.get(s)
        if info is None:
            raise HostError(f"no probe provides stream {s!r}")
        by_module.setdefault(info.module, set()).add(s)
    out: list[Source] = []
    for module, group in sorted(by_module.items()):
        if not _module_exists(module):
            raise HostError(f"{', '.join(sorted(group))}: not implemented (probes/{module}.py)")
        mod = importlib.import_module(f".{module}", __name__)
        opts: dict[str, Any] = {}
        for s in sorted(group):
            opts.update((options or {}).get(s, {}))
        out.append(mod.make_source(frozenset(group), opts))
    return out


def interval_option(probe: str, value: Any) -> int:
    """A poller's `interval` option in ns: a duration ("1s") or a number of seconds.

    One parser for every poller, so a bad value is the same ConfigError whichever
    probe was given it (never a ValueError from a NaN or an OverflowError from inf).
    """
    if isinstance(value, str):
        try:
            ns = parse_duration(value)
        except (ValueError, OverflowError) as e:  # OverflowError: "1e400s" is infinite
            raise ConfigError(f"{probe} interval: {e}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        ns = int(value * 1e9)
    else:
        raise ConfigError(f"{probe} interval: expected a duration such as 1s, got {value!r}")
    if ns <= 0:
        raise ConfigError(f"{probe} interval must be positive")
    return ns
