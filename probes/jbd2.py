"""fs.commit: ext4/jbd2 journal commits as intervals [start_commit, end_commit]."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc
from .decode import dev_names
from .drain import BccProbeSource, ProbeSpec

__all__ = ["SPEC", "check", "decode", "make_source"]

TRACEPOINTS = ("jbd2:jbd2_start_commit", "jbd2:jbd2_end_commit")

PAYLOAD = np.dtype(
    [("ts", np.uint64), ("end", np.uint64), ("dev", np.uint32), ("tid", np.uint32)], align=True
)


def decode(p: np.ndarray) -> Batch:
    return Batch(
        "fs.commit",
        p["ts"].astype(np.int64),
        p["end"].astype(np.int64),
        {"dev": dev_names(p["dev"]), "tid": p["tid"].astype(np.float64)},
    )


SPEC = ProbeSpec(
    name="jbd2",
    stream="fs.commit",
    bpf=Path(__file__).with_name("jbd2.bpf.c"),
    payload=PAYLOAD,
    decode=decode,
    pages=8,  # a few commits per second: the shared sweep reads them, no wakeup per commit
    tracepoints=TRACEPOINTS,
)


def check() -> tuple[bool, str]:
    return _bcc.probe_check(TRACEPOINTS)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    return BccProbeSource(SPEC, options)
