"""net.drop: packets the kernel dropped, with the drop reason's name.

Reason numbers differ between kernels, so their names come from this kernel's
tracepoint format (the `__print_symbolic` table of skb:kfree_skb), not a copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc
from .decode import lookup
from .drain import BccProbeSource, ProbeSpec

__all__ = ["SPEC", "check", "decode", "make_source", "reason_names"]

TRACEPOINTS = ("skb:kfree_skb",)

PAYLOAD = np.dtype([("ts", np.uint64), ("reason", np.uint32), ("protocol", np.uint32)])

_SYMBOL = re.compile(r'\{\s*(\d+)\s*,\s*"([^"]*)"\s*\}')


def reason_names(format_text: str) -> dict[int, str]:
    """The `__print_symbolic(REC->reason, {2, "NOT_SPECIFIED"}, ...)` table of a format file."""
    start = format_text.find("__print_symbolic(REC->reason")
    if start < 0:
        return {}
    return {int(n): name for n, name in _SYMBOL.findall(format_text[start:])}


_names: dict[int, str] | None = None


def _reason(n: int) -> str:
    global _names
    if _names is None:
        _names = reason_names(_bcc.tracepoint_format("skb", "kfree_skb"))
    return _names.get(n, str(n))


def decode(p: np.ndarray) -> Batch:
    return Batch(
        "net.drop",
        p["ts"].astype(np.int64),
        None,
        {"reason": lookup(p["reason"], _reason), "protocol": p["protocol"].astype(np.float64)},
    )


SPEC = ProbeSpec(
    name="net_drop",
    stream="net.drop",
    bpf=Path(__file__).with_name("net_drop.bpf.c"),
    payload=PAYLOAD,
    decode=decode,
    pages=64,
    tracepoints=TRACEPOINTS,
)


def check() -> tuple[bool, str]:
    ok, why = _bcc.probe_check(TRACEPOINTS)
    if ok and "REC->reason" not in _bcc.tracepoint_format("skb", "kfree_skb"):
        return False, "skb:kfree_skb has no drop reason on this kernel (needs 5.17+)"
    return ok, why


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    return BccProbeSource(SPEC, options)
