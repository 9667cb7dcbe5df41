"""oom.kill: victims of the OOM killer, with their memory cgroup and the constraint.

The tracepoint gives pid (and, on newer kernels, comm and RSS); the cgroup comes from
/proc/<pid>/cgroup, read as soon as the sample is drained (the victim is still
exiting then). `constraint` is "memcg" when the victim's memory cgroup is not the
root and that cgroup's own counter of OOM kills (v1 memory.oom_control or v2
memory.events `oom_kill`) is non-zero; otherwise "global". That is a heuristic: a
global OOM that picks a task in a cgroup which also had a limit-OOM earlier is
reported as memcg.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc
from .drain import BccProbeSource, ProbeSpec

__all__ = ["SPEC", "check", "constraint_of", "decode", "make_source", "memory_cgroup"]

TRACEPOINTS = ("oom:mark_victim",)

PAYLOAD = np.dtype(
    [
        ("ts", np.uint64),
        ("rss_kb", np.uint64),
        ("pid", np.uint32),
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


def _oom_kills(cgroup: str, mounts: Path = MOUNTS) -> int:
    v1, v2 = _memory_mounts(mounts)
    candidates = []
    if v1:
        candidates.append(Path(v1 + cgroup) / "memory.oom_control")
    if v2:
        candidates.append(Path(v2 + cgroup) / "memory.events")
    for path in candidates:
        try:
            for line in path.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return 0


def constraint_of(cgroup: str, mounts: Path = MOUNTS) -> str:
    if cgroup not in ("", "/") and _oom_kills(cgroup, mounts) > 0:
        return "memcg"
    return "global"


def _comm_of(pid: int, fallback: bytes) -> str:
    name = fallback.split(b"\0", 1)[0].decode("utf-8", "replace")
    if name:
        return name
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def decode(p: np.ndarray) -> Batch:
    """Per event (OOM kills are rare): /proc must be read before the victim is gone."""
    rows = []
    for rec in p.tolist():
        ts, rss_kb, pid, comm, _ = rec
        cgroup = memory_cgroup(pid) or "/"
        rows.append(
            {
                "ts": ts,
                "pid": pid,
                "comm": _comm_of(pid, comm),
                "cgroup": cgroup,
                "constraint": constraint_of(cgroup),
                "rss": None if rss_kb == int(_NO_RSS) else rss_kb * 1024,
            }
        )
    return Batch.from_rows("oom.kill", rows)


def _cflags() -> tuple[str, ...]:
    fmt = _bcc.tracepoint_format("oom", "mark_victim")
    flags = []
    if "__data_loc char[] comm" in fmt:
        flags.append("-DTH_COMM_DATA_LOC")
    if all(f" {f};" in fmt for f in ("anon_rss", "file_rss", "shmem_rss")):
        flags.append("-DTH_HAS_RSS")
    return tuple(flags)


def _spec() -> ProbeSpec:
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


SPEC = _spec()


def check() -> tuple[bool, str]:
    return _bcc.probe_check(TRACEPOINTS)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    return BccProbeSource(_spec(), options)
