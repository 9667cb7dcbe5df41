"""disk.io: block request latency (issue -> complete) and queue time (insert -> issue).

A request is tracked from insert to completion in a slot of a set-associative BPF
array keyed by (dev, sector), claimed with a compare-and-swap: no hash-map update on
the hot path (~400 ns a hit). A slot left by a request merged away after its insert
is taken over once stale (8.6-17 s) when its set is full. An issued request that
finds no slot is counted in `th_lost` (a `lost` event) and in `th_noslot`
(`source.counter(NOSLOT)`, stats()["noslot"]); so is (in `th_lost`) every other way
a request can go unreported: its slot taken over, or another request of its key
issued while it was in flight. A completion with no issued slot is `th_unpaired`:
a request issued before the probe attached, or one whose issue the kernel skipped
(a recursion miss, which the drain counts as lost). cflags -DTH_RQ_SETS/-DTH_RQ_WAYS
size the table. Where the kernel's BTF has the offsets, the completion is a raw
tracepoint (`raw_complete_cflags`; docs/probes.md says why).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.batch import Batch

from . import _bcc, btf
from .decode import cstrings, dev_names
from .drain import BccProbeSource, ProbeSpec

__all__ = ["NOSLOT", "SPEC", "UNPAIRED", "check", "decode", "make_source"]

NOSLOT = "th_noslot"  # per-CPU count of issued requests that found no slot
UNPAIRED = "th_unpaired"  # per-CPU count of completions with no issued slot

TRACEPOINTS = (
    "block:block_rq_issue",
    "block:block_rq_complete",
    "block:block_rq_insert",
    "block:block_rq_requeue",
)

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
    counters=(NOSLOT, UNPAIRED),
    misses_harmless=("block_rq_insert", "block_rq_requeue"),  # a queue time at most
)


def check() -> tuple[bool, str]:
    return _bcc.probe_check(
        TRACEPOINTS, raw=(raw_complete_cflags, "block_rq_complete as a raw tracepoint")
    )


def raw_complete_cflags(kernel: btf.Btf) -> tuple[str, ...]:
    """-D flags for the raw block_rq_complete program: the running kernel's offsets in
    struct request / request_queue / gendisk and its request op and flag values.
    Raises BtfError when the kernel lacks one (older layouts: the tracepoint then)."""
    args = kernel.raw_tracepoint_args("block_rq_complete")
    if len(args) != 3 or args[0] != "struct request *":
        raise btf.BtfError(f"block_rq_complete takes ({', '.join(args)})")
    sector = kernel.member("request", "__sector")
    flags = kernel.member("request", "cmd_flags")
    queue = kernel.member("request", "q")
    disk = kernel.member("request_queue", "disk")
    major = kernel.member("gendisk", "major")
    minor = kernel.member("gendisk", "first_minor")
    want = {"__sector": (sector, 8), "cmd_flags": (flags, 4), "major": (major, 4),
            "first_minor": (minor, 4)}  # fmt: skip
    for name, (m, size) in want.items():
        if m.size != size:
            raise btf.BtfError(f"{name} is {m.size} bytes, not {size}")
    if not (queue.pointer and disk.pointer):
        raise btf.BtfError("request.q / request_queue.disk are not pointers")
    # the op is the low REQ_OP_BITS of cmd_flags; the flag bits start right above them
    op_bits = kernel.enum_value("req_flag_bits", "__REQ_FAILFAST_DEV")
    flag = {f: 1 << kernel.enum_value("req_flag_bits", f"__REQ_{f}")
            for f in ("PREFLUSH", "FUA", "RAHEAD", "SYNC", "META")}  # fmt: skip
    op = {o: kernel.enum_value("req_op", f"REQ_OP_{o}")
          for o in ("READ", "WRITE", "FLUSH", "DISCARD", "SECURE_ERASE")}  # fmt: skip
    rq_lo = min(sector.offset, flags.offset, queue.offset)
    rq_hi = max(sector.offset + 8, flags.offset + 4, queue.offset + 8)
    disk_lo = min(major.offset, minor.offset)
    disk_hi = max(major.offset, minor.offset) + 4
    if rq_hi - rq_lo > 128 or disk_hi - disk_lo > 64:  # one read each: a small span
        raise btf.BtfError("struct request / gendisk members too far apart")
    return (
        "-DTH_RAW_COMPLETE=1",
        f"-DTH_RQ_SPAN_OFF={rq_lo}",
        f"-DTH_RQ_SPAN={rq_hi - rq_lo}",
        f"-DTH_AT_RQ_SECTOR={sector.offset - rq_lo}",
        f"-DTH_AT_RQ_CMD_FLAGS={flags.offset - rq_lo}",
        f"-DTH_AT_RQ_Q={queue.offset - rq_lo}",
        f"-DTH_OFF_Q_DISK={disk.offset}",
        f"-DTH_DISK_SPAN_OFF={disk_lo}",
        f"-DTH_DISK_SPAN={disk_hi - disk_lo}",
        f"-DTH_AT_DISK_MAJOR={major.offset - disk_lo}",
        f"-DTH_AT_DISK_MINOR={minor.offset - disk_lo}",
        f"-DTH_REQ_OP_MASK={(1 << op_bits) - 1}",
        *(f"-DTH_REQ_OP_{o}={v}" for o, v in op.items()),
        *(f"-DTH_REQ_{f}={v:#x}U" for f, v in flag.items()),
    )


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> BccProbeSource:
    """Option `raw` (default true, env TRACEHOUND_RAW_TRACEPOINTS): the completion as
    a raw tracepoint where the kernel's BTF has what it reads, else the tracepoint."""
    opts = dict(options)
    if "preferred_cflags" not in opts:
        opts["preferred_cflags"] = btf.raw_cflags(opts, raw_complete_cflags)
    return BccProbeSource(SPEC, opts)
