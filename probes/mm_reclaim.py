"""mm.reclaim: intervals a task spent in direct memory reclaim (keyed by thread)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc
from .decode import cstrings
from .drain import BccProbeSource, ProbeSpec

__all__ = ["SPEC", "check", "decode", "make_source"]

TRACEPOINTS = ("vmscan:mm_vmscan_direct_reclaim_begin", "vmscan:mm_vmscan_direct_reclaim_end")

PAYLOAD = np.dtype(
    [("ts", np.uint64), ("end", np.uint64), ("pid", np.uint32), ("comm", "S16"), ("pad", "S4")],
    align=True,
)


def decode(p: np.ndarray) -> Batch:
    return Batch(
        "mm.reclaim",
        p["ts"].astype(np.int64),
        p["end"].astype(np.int64),
        {"pid": p["pid"].astype(np.float64), "comm": cstrings(p["comm"])},
    )


SPEC = ProbeSpec(
    name="mm_reclaim",
    stream="mm.reclaim",
    bpf=Path(__file__).with_name("mm_reclaim.bpf.c"),
    payload=PAYLOAD,
    decode=decode,
    pages=32,
    tracepoints=TRACEPOINTS,
)


def check() -> tuple[bool, str]:
    return _bcc.probe_check(TRACEPOINTS)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    return BccProbeSource(SPEC, options)
