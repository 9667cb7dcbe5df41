"""sched.runq: how long a runnable task waited for a CPU (wakeup -> switch-in).

A high-rate stream (every context switch): option `min_latency` (ns) pushes a
lower bound into the kernel, so short waits never cross into user space.

A waiting task is one u64 word (pid, wakeup time) in a set-associative BPF array
picked by its pid, claimed with a compare-and-swap: no hash-map update per wakeup
(~400 ns a hit). A wakeup that finds no slot is counted in `th_lost` (a `lost`
event) and in `th_noslot` (`source.counter(NOSLOT)`); a slot 17 s old (its task
exited unscheduled) may be taken over. cflags -DTH_WAKE_SETS/-DTH_WAKE_WAYS size it.
Where the kernel's BTF has task_struct.pid, the wakeups are raw tracepoints
(`raw_wakeup_cflags`: an interrupt's wakeup is not skipped then).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc, btf
from .decode import cstrings
from .drain import BccProbeSource, ProbeSpec

__all__ = ["NOSLOT", "SPEC", "check", "decode", "make_source"]

NOSLOT = "th_noslot"  # per-CPU count of wakeups that found no slot

TRACEPOINTS = ("sched:sched_wakeup", "sched:sched_wakeup_new", "sched:sched_switch")

PAYLOAD = np.dtype(
    [
        ("ts", np.uint64),
        ("latency", np.uint64),
        ("pid", np.uint32),
        ("cpu", np.uint32),
        ("comm", "S16"),
    ],
    align=True,
)


def decode(p: np.ndarray) -> Batch:
    return Batch(
        "sched.runq",
        p["ts"].astype(np.int64),
        None,
        {
            "pid": p["pid"].astype(np.float64),
            "comm": cstrings(p["comm"]),
            "cpu": p["cpu"].astype(np.float64),
            "latency": p["latency"].astype(np.float64),
        },
    )


SPEC = ProbeSpec(
    name="sched_runq",
    stream="sched.runq",
    bpf=Path(__file__).with_name("sched_runq.bpf.c"),
    payload=PAYLOAD,
    decode=decode,
    pages=256,
    tracepoints=TRACEPOINTS,
    counters=(NOSLOT,),
)


def check() -> tuple[bool, str]:
    return _bcc.probe_check(
        TRACEPOINTS, raw=(raw_wakeup_cflags, "sched_wakeup/_new as raw tracepoints")
    )


def raw_wakeup_cflags(kernel: btf.Btf) -> tuple[str, ...]:
    """-D flags for the raw wakeup programs: task_struct.pid's offset in the running
    kernel. Raises BtfError when its BTF lacks it (the tracepoints then)."""
    for tp in ("sched_wakeup", "sched_wakeup_new"):
        args = kernel.raw_tracepoint_args(tp)
        if args != ["struct task_struct *"]:
            raise btf.BtfError(f"{tp} takes ({', '.join(args)})")
    pid = kernel.member("task_struct", "pid")
    if pid.size != 4:
        raise btf.BtfError(f"task_struct.pid is {pid.size} bytes")
    return ("-DTH_RAW_WAKEUP=1", f"-DTH_OFF_TASK_PID={pid.offset}")


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    """Options: `min_latency` (ns, applied in the kernel); `raw` (default true, env
    TRACEHOUND_RAW_TRACEPOINTS): the wakeups as raw tracepoints where the kernel's BTF
    has what they read (`raw_wakeup_cflags`), else the tracepoints."""
    opts = dict(options)
    cflags = tuple(opts.get("cflags", ()))
    min_lat = int(opts.pop("min_latency", 0) or 0)
    if min_lat > 0:
        cflags += (f"-DTH_MIN_LAT_NS={min_lat}ULL",)
    opts["cflags"] = cflags
    if "preferred_cflags" not in opts:
        opts["preferred_cflags"] = btf.raw_cflags(opts, raw_wakeup_cflags)
    return BccProbeSource(SPEC, opts)
