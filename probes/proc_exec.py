"""proc.exec: exec calls. `ppid` is read from /proc/<pid>/stat when drained: best
effort, 0 when the process is already gone (the tracepoint does not carry it and
task_struct is not safe to read with mismatched headers)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc
from .decode import cstrings
from .drain import BccProbeSource, ProbeSpec

__all__ = ["SPEC", "check", "decode", "make_source", "parent_pid"]

TRACEPOINTS = ("sched:sched_process_exec",)

PAYLOAD = np.dtype(
    [("ts", np.uint64), ("pid", np.uint32), ("comm", "S16"), ("filename", "S228")], align=True
)


def parent_pid(pid: int, proc: Path = Path("/proc")) -> int:
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return 0
    # the comm field may hold spaces and parentheses: split after the last ')'
    rest = stat[stat.rfind(")") + 2 :].split()
    return int(rest[1]) if len(rest) > 1 else 0


def decode(p: np.ndarray) -> Batch:
    pids = p["pid"].astype(np.int64)
    return Batch(
        "proc.exec",
        p["ts"].astype(np.int64),
        None,
        {
            "pid": pids.astype(np.float64),
            "ppid": np.array([parent_pid(int(x)) for x in pids.tolist()], dtype=np.float64),
            "comm": cstrings(p["comm"]),
            "filename": cstrings(p["filename"]),
        },
    )


SPEC = ProbeSpec(
    name="proc_exec",
    stream="proc.exec",
    bpf=Path(__file__).with_name("proc_exec.bpf.c"),
    payload=PAYLOAD,
    decode=decode,
    pages=32,
    tracepoints=TRACEPOINTS,
)


def check() -> tuple[bool, str]:
    return _bcc.probe_check(TRACEPOINTS)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    return BccProbeSource(SPEC, options)
