"""oom.kill: victims of the OOM killer, with their memory cgroup and the constraint.

The tracepoint gives pid, comm and RSS; the cgroup comes from /proc/<pid>/cgroup,
read as soon as the sample is drained. A victim may be gone by then (its parent
reaped it); then the invoking task's cgroup is used (in a memcg OOM it charges the
same cgroup), and failing that the deepest cgroup whose `oom_kill` count rose.

`constraint` is "memcg" when the task that invoked the OOM killer had run memcg
limit reclaim (vmscan:mm_vmscan_memcg_reclaim_begin) within the last 5 s, which
is how a cgroup limit OOM starts; otherwise "global". The kernel does not export the
constraint in any tracepoint, so this is an inference, and documented as one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc
from .drain import BccProbeSource, ProbeSpec

__all__ = [
    "CgroupCounters",
    "OomDecoder",
    "check",
    "make_source",
    "memory_cgroup",
    "victim_cgroup",
]

TRACEPOINTS = ("oom:mark_victim", "vmscan:mm_vmscan_memcg_reclaim_begin")

PAYLOAD = np.dtype(
    [
        ("ts", np.uint64),
        ("rss_kb", np.uint64),
        ("pid", np.uint32),
        ("invoker", np.uint32),
        ("memcg", np.uint32),
        ("comm", "S16"),
        ("pad", "S4"),
    ],
    align=True,
)
_NO_RSS = np.uint64(0xFFFFFFFFFFFFFFFF)
PROC = Path("/proc")
MOUNTS = Path("/proc/self/mounts")


def memory_cgroup(pid: int, proc: Path = PROC) -> str | None:
    """The pid's memory cgroup path (v1 `N:memory:/x`, else the v2 `0::/x` line)."""
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return None
    unified = None
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
        if controllers == "":
            unified = path
    return unified


def _memory_mounts(mounts: Path = MOUNTS) -> tuple[str | None, str | None]:
    """(v1 memory hierarchy mount, cgroup2 mount)."""
    v1 = v2 = None
    try:
        for line in mounts.read_text().splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            if parts[2] == "cgroup" and "memory" in parts[3].split(","):
                v1 = parts[1]
            elif parts[2] == "cgroup2":
                v2 = parts[1]
    except OSError:
        pass
    return v1, v2


def _oom_kills(d: Path, v2: bool) -> int:
    """The cgroup's OOM-kill count (v1 memory.oom_control, v2 memory.events)."""
    try:
        text = (d / ("memory.events" if v2 else "memory.oom_control")).read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return 0


class CgroupCounters:
    """Per memory cgroup OOM counters, to see afterwards what an OOM kill touched."""

    def __init__(self, mounts: Path = MOUNTS) -> None:
        v1, v2 = _memory_mounts(mounts)
        self.root: Path | None = Path(v1) if v1 else (Path(v2) if v2 else None)
        self.v2 = v1 is None and v2 is not None
        self.last = self.scan()

    def scan(self) -> dict[str, int]:
        if self.root is None:
            return {}
        out: dict[str, int] = {}
        base = str(self.root)
        for dirpath, _, _ in os.walk(base):
            rel = dirpath[len(base) :] or "/"
            out[rel] = _oom_kills(Path(dirpath), self.v2)
        return out

    def changes(self) -> dict[str, int]:
        """OOM kills per cgroup since the last call (cgroups with none left out)."""
        now = self.scan()
        out = {cg: n - self.last.get(cg, 0) for cg, n in now.items()}
        self.last = now
        return {cg: d for cg, d in out.items() if d > 0}


def victim_cgroup(changes: dict[str, int]) -> str:
    """The deepest cgroup whose OOM-kill count rose ("/" when none did)."""
    hit = [cg for cg, d in changes.items() if d > 0 and cg != "/"]
    return max(hit, key=lambda cg: cg.count("/")) if hit else "/"


def _comm_of(pid: int, fallback: bytes) -> str:
    name = fallback.split(b"\0", 1)[0].decode("utf-8", "replace")
    if name:
        return name
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


class OomDecoder:
    """Decodes per event (OOM kills are rare): /proc must be read before the victim goes."""

    def __init__(self, counters: CgroupCounters | None = None) -> None:
        self.counters = counters if counters is not None else CgroupCounters()

    def _fallback_cgroup(self, invoker: int) -> str:
        cg = memory_cgroup(invoker)
        if cg not in (None, "/"):
            return cg
        for _ in range(10):  # the kernel counts the kill just after marking the victim
            hit = victim_cgroup(self.counters.changes())
            if hit != "/":
                return hit
            time.sleep(0.002)
        return "/"

    def __call__(self, p: np.ndarray) -> Batch:
        recs = p.tolist()
        cgroups = [memory_cgroup(int(r[2])) for r in recs]  # first, while pids live
        rows = []
        for (ts, rss_kb, pid, invoker, memcg, comm, _), cg in zip(recs, cgroups, strict=True):
            # an exiting task may already show the root: look further then
            cgroup = cg if cg not in (None, "/") else self._fallback_cgroup(invoker)
            rows.append(
                {
                    "ts": ts,
                    "pid": pid,
                    "comm": _comm_of(pid, comm),
                    "cgroup": cgroup,
                    "constraint": "memcg" if memcg else "global",
                    "rss": None if rss_kb == int(_NO_RSS) else rss_kb * 1024,
                }
            )
        self.counters.changes()  # the next fallback compares with now
        return Batch.from_rows("oom.kill", rows)


def _cflags() -> tuple[str, ...]:
    fmt = _bcc.tracepoint_format("oom", "mark_victim")
    flags = []
    if "__data_loc char[] comm" in fmt:
        flags.append("-DTH_COMM_DATA_LOC")
    if all(f" {f};" in fmt for f in ("anon_rss", "file_rss", "shmem_rss")):
        flags.append("-DTH_HAS_RSS")
    return tuple(flags)


def _spec(decode: Callable[[np.ndarray], Batch]) -> ProbeSpec:
    return ProbeSpec(
        name="oom",
        stream="oom.kill",
        bpf=Path(__file__).with_name("oom.bpf.c"),
        payload=PAYLOAD,
        decode=decode,
        cflags=_cflags(),
        pages=8,
        wakeup_events=1,  # rare, and /proc/<pid> must be read before the victim is gone
        tracepoints=TRACEPOINTS,
    )


def check() -> tuple[bool, str]:
    return _bcc.probe_check(TRACEPOINTS)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    return BccProbeSource(_spec(OomDecoder()), options)
