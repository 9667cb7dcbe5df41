"""disk.io: block request latency (issue -> complete) and queue time (insert -> issue).

A request is tracked from insert to completion in a slot of a set-associative BPF
array keyed by (dev, sector), claimed with a compare-and-swap: no hash-map update on
the hot path (~400 ns a hit). A slot left by a request merged away after its insert
is taken over once stale (8.6-17 s) when its set is full. An issued request that
finds no slot is counted in `th_lost` (a `lost` event) and in `th_noslot`
(`source.counter(NOSLOT)`); cflags -DTH_RQ_SETS/-DTH_RQ_WAYS size the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc
from .decode import cstrings, dev_names
from .drain import BccProbeSource, ProbeSpec

__all__ = ["NOSLOT", "SPEC", "check", "decode", "make_source"]

NOSLOT = "th_noslot"  # per-CPU count of issued requests that found no slot

TRACEPOINTS = ("block:block_rq_issue", "block:block_rq_complete", "block:block_rq_insert")

PAYLOAD = np.dtype(
    [
        ("ts", np.uint64),
        ("latency", np.uint64),
        ("queue", np.uint64),
        ("dev", np.uint32),
        ("bytes", np.uint32),
        ("pid", np.uint32),
        ("op", "S2"),
        ("pad", "S2"),
        ("comm", "S16"),
    ],
    align=True,
)

_NO_QUEUE = np.uint64(0xFFFFFFFFFFFFFFFF)
_OPS = np.array(["other", "read", "write", "flush", "discard"], dtype=object)


_CODE = np.zeros(256, dtype=np.int8)  # rwbs letter -> index into _OPS
for _i, _ch in enumerate(b"RWFD", start=1):
    _CODE[_ch] = _i


def op_names(rwbs: np.ndarray) -> np.ndarray:
    """The first two rwbs characters (`S2` column) -> read/write/flush/discard/other.

    A leading `F` is a preflush; the operation is the letter after it ("FWS" is a
    write carrying data), and a flush request itself reads "FF" or "F".
    """
    pairs = np.ascontiguousarray(rwbs, dtype="S2").view(np.uint8).reshape(-1, 2)
    first, second = pairs[:, 0], pairs[:, 1]
    preflush = (first == ord("F")) & (_CODE[second] != 0) & (second != ord("F"))
    return _OPS[_CODE[np.where(preflush, second, first)]]


def _data_less_writes_are_flushes(op: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    """An empty preflush write (fsync's cache flush) completes as "WS" with no data
    once the flush request it waited for is done (the flush's own completion is not
    traced): it is a flush, and its latency the flush's."""
    op[(nbytes == 0) & (op == "write")] = "flush"
    return op


def decode(p: np.ndarray) -> Batch:
    queue = p["queue"].astype(np.float64)
    queue[p["queue"] == _NO_QUEUE] = np.nan
    return Batch(
        "disk.io",
        p["ts"].astype(np.int64),
        None,
        {
            "dev": dev_names(p["dev"]),
            "op": _data_less_writes_are_flushes(op_names(p["op"]), p["bytes"]),
            "bytes": p["bytes"].astype(np.float64),
            "latency": p["latency"].astype(np.float64),
            "queue": queue,
            "pid": p["pid"].astype(np.float64),
            "comm": cstrings(p["comm"]),
        },
    )


SPEC = ProbeSpec(
    name="block_io",
    stream="disk.io",
    bpf=Path(__file__).with_name("block_io.bpf.c"),
    payload=PAYLOAD,
    decode=decode,
    pages=128,
    tracepoints=TRACEPOINTS,
)


def check() -> tuple[bool, str]:
    return _bcc.probe_check(TRACEPOINTS)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    return BccProbeSource(SPEC, options)
