"""tcp.retransmit: retransmitted segments with both endpoints and the socket state."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc
from .drain import BccProbeSource, ProbeSpec

__all__ = ["SPEC", "check", "decode", "make_source"]

TRACEPOINTS = ("tcp:tcp_retransmit_skb",)

PAYLOAD = np.dtype(
    [
        ("ts", np.uint64),
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("family", np.uint16),
        ("pad", np.uint16),
        ("state", np.uint32),
        ("saddr", "V16"),
        ("daddr", "V16"),
        ("pad2", np.uint32),
    ],
    align=True,
)

# include/net/tcp_states.h
STATES = (
    "UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
    "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
)  # fmt: skip
_AF_INET6 = 10


def _addr(raw: bytes, family: int) -> str:
    if family == _AF_INET6:
        return str(ipaddress.IPv6Address(raw))
    return str(ipaddress.IPv4Address(raw[:4]))


def _addrs(col: np.ndarray, family: np.ndarray) -> np.ndarray:
    """Format each distinct (address, family) once."""
    cache: dict[tuple[bytes, int], str] = {}
    out = np.empty(col.shape[0], dtype=object)
    for i, (raw, fam) in enumerate(zip(col.tolist(), family.tolist(), strict=True)):
        key = (bytes(raw), int(fam))
        s = cache.get(key)
        if s is None:
            s = cache[key] = _addr(*key)
        out[i] = s
    return out


def decode(p: np.ndarray) -> Batch:
    state = p["state"].astype(np.int64)
    state[(state < 0) | (state >= len(STATES))] = 0
    return Batch(
        "tcp.retransmit",
        p["ts"].astype(np.int64),
        None,
        {
            "saddr": _addrs(p["saddr"], p["family"]),
            "daddr": _addrs(p["daddr"], p["family"]),
            "sport": p["sport"].astype(np.float64),
            "dport": p["dport"].astype(np.float64),
            "state": np.array(STATES, dtype=object)[state],
        },
    )


SPEC = ProbeSpec(
    name="tcp",
    stream="tcp.retransmit",
    bpf=Path(__file__).with_name("tcp.bpf.c"),
    payload=PAYLOAD,
    decode=decode,
    pages=16,
    tracepoints=TRACEPOINTS,
)


def check() -> tuple[bool, str]:
    return _bcc.probe_check(TRACEPOINTS)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    return BccProbeSource(SPEC, options)
