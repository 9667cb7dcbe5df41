"""A perf ring read directly: our own BPF_OUTPUT perf event per CPU, mmapped, numpy-decoded.

Why not bcc's perf reader: `perf_reader_event_read` reads until the ring is empty and
calls Python once per record; under overload one call ran for seconds and froze the
event loop. Here each `read()` takes one `data_head` snapshot (so the work per call is
bounded by the ring size) and views the fixed-size records as a numpy structured
array in one go; only wrapped chunks and PERF_RECORD_LOST records take a slow path.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import platform
from dataclasses import dataclass

import numpy as np

__all__ = ["PerfRing", "RingRead", "decode_records", "record_dtype", "record_size"]

PERF_TYPE_SOFTWARE = 1
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
_WATERMARK_BIT = 1 << 14
_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241}

# struct perf_event_mmap_page: data_head/data_tail/data_offset/data_size as u64 words.
_HEAD, _TAIL, _OFFSET, _SIZE = 1024 // 8, 1032 // 8, 1040 // 8, 1048 // 8


class _PerfEventAttr(ctypes.Structure):
    """perf_event_attr up to PERF_ATTR_SIZE_VER5 (112 bytes)."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
        ("config2", ctypes.c_uint64),
        ("branch_sample_type", ctypes.c_uint64),
        ("sample_regs_user", ctypes.c_uint64),
        ("sample_stack_user", ctypes.c_uint32),
        ("clockid", ctypes.c_int32),
        ("sample_regs_intr", ctypes.c_uint64),
        ("aux_watermark", ctypes.c_uint32),
        ("sample_max_stack", ctypes.c_uint16),
        ("reserved", ctypes.c_uint16),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def record_size(payload: np.dtype) -> int:
    """Bytes one sample of `payload` takes in the ring: header, u32 size, data padded to 8."""
    return 8 + ((4 + payload.itemsize + 7) // 8) * 8


def record_dtype(payload: np.dtype) -> np.dtype:
    """A whole PERF_RECORD_SAMPLE carrying one `payload` (the C struct) at offset 12."""
    return np.dtype(
        {
            "names": ["type", "misc", "size", "raw_size", "p"],
            "formats": [np.uint32, np.uint16, np.uint16, np.uint32, payload],
            "offsets": [0, 4, 6, 8, 12],
            "itemsize": record_size(payload),
        }
    )


def decode_records(chunk: np.ndarray, rec_dtype: np.dtype) -> RingRead:
    """Ring bytes (uint8, whole records) -> the payloads of its samples and the loss.

    Fast path: every record is a sample of the expected size, viewed in one go.
    Otherwise the headers are walked (LOST records, or a sample of another size).
    """
    rs = rec_dtype.itemsize
    n = chunk.shape[0]
    if n % rs == 0:
        recs = chunk.view(rec_dtype)
        if bool(np.all(recs["type"] == PERF_RECORD_SAMPLE)) and bool(np.all(recs["size"] == rs)):
            return RingRead(recs["p"].copy(), 0, 0)
    starts: list[int] = []
    lost = bad = 0
    pos = 0
    while pos + 8 <= n:
        rtype = int(chunk[pos : pos + 4].view(np.uint32)[0])
        size = int(chunk[pos + 6 : pos + 8].view(np.uint16)[0])
        if size < 8 or pos + size > n:
            bad += 1
            break
        if rtype == PERF_RECORD_SAMPLE and size == rs:
            starts.append(pos)
        elif rtype == PERF_RECORD_LOST and size >= 24:
            lost += int(chunk[pos + 16 : pos + 24].view(np.uint64)[0])
        else:
            bad += 1
        pos += size
    if not starts:
        return RingRead(np.empty(0, dtype=rec_dtype["p"]), lost, bad)
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(rs, dtype=np.int64)
    recs = np.ascontiguousarray(chunk[idx]).view(rec_dtype).reshape(-1)
    return RingRead(recs["p"].copy(), lost, bad)


@dataclass(slots=True)
class RingRead:
    """What one read of a ring gave: payload records (may be empty), samples lost, misfits,
    and whether the ring was (nearly) full when read: the only state in which the
    kernel refuses a sample, so the drain reads the loss counters after such a read.
    `complete` is False when the read stopped at a record still being written (a BPF
    ring buffer): samples behind it, from any CPU, are not read yet, so the drain must
    not count this read toward its progress."""

    payload: np.ndarray
    lost: int
    bad: int
    full: bool = False
    complete: bool = True


def _perf_event_open(cpu: int, wakeup: int, watermark: bool) -> int:
    attr = _PerfEventAttr()
    attr.type = PERF_TYPE_SOFTWARE
    attr.size = ctypes.sizeof(attr)
    attr.config = PERF_COUNT_SW_BPF_OUTPUT
    attr.sample_period = 1
    attr.sample_type = PERF_SAMPLE_RAW
    attr.flags = _WATERMARK_BIT if watermark else 0
    attr.wakeup = max(wakeup, 1)
    nr = _NR_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise OSError(f"perf_event_open: unknown syscall number on {platform.machine()}")
    fd = _libc.syscall(nr, ctypes.byref(attr), -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open(BPF_OUTPUT, cpu {cpu}): {os.strerror(err)}")
    return int(fd)


class PerfRing:
    """One CPU's ring. Store `fd` in the BPF_PERF_OUTPUT map at index `cpu`.

    `wakeup_bytes` > 0 wakes the fd when that many bytes wait (a watermark);
    otherwise `wakeup_events` samples do. The caller sweeps on a timer as well, so a
    lone sample is not held back until the watermark.
    """

    def __init__(
        self,
        cpu: int,
        payload: np.dtype,
        pages: int = 64,
        wakeup_bytes: int = 0,
        wakeup_events: int = 1,
    ) -> None:
        if pages <= 0 or pages & (pages - 1):
            raise ValueError("ring pages must be a power of two")
        self.cpu = cpu
        self.payload_dtype = payload
        self.rec_dtype = record_dtype(payload)
        self.rec_size = self.rec_dtype.itemsize
        page = mmap.PAGESIZE
        watermark = wakeup_bytes > 0
        wakeup = min(wakeup_bytes, pages * page // 2) if watermark else wakeup_events
        self.fd = _perf_event_open(cpu, wakeup, watermark)
        try:
            self._mm = mmap.mmap(
                self.fd, (pages + 1) * page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
            )
        except OSError:
            os.close(self.fd)
            raise
        self._hdr: np.ndarray | None = np.frombuffer(self._mm, np.uint64, count=page // 8)
        off, size = int(self._hdr[_OFFSET]) or page, int(self._hdr[_SIZE]) or pages * page
        self.size = size
        self._data: np.ndarray | None = np.frombuffer(self._mm, np.uint8, count=size, offset=off)
        self._empty = np.empty(0, dtype=payload)

    def pending(self) -> int:
        """Bytes written and not yet read (cheap: two loads from the header page)."""
        assert self._hdr is not None
        return int(self._hdr[_HEAD]) - int(self._hdr[_TAIL])

    def read(self) -> RingRead:
        """Everything up to one `data_head` snapshot; bounded by the ring's size."""
        hdr, data = self._hdr, self._data
        assert hdr is not None and data is not None
        head = int(hdr[_HEAD])  # x86 keeps loads in order: the data below is complete
        tail = int(hdr[_TAIL])
        n = head - tail
        if n <= 0:
            return RingRead(self._empty, 0, 0)
        start = tail % self.size
        if start + n <= self.size:
            chunk = data[start : start + n]
        else:
            chunk = np.concatenate((data[start:], data[: start + n - self.size]))
        out = decode_records(chunk, self.rec_dtype)
        # room for less than two samples and a LOST record: a sample may have been refused
        out.full = self.size - n < 2 * self.rec_size + 64
        hdr[_TAIL] = head  # hands the space back to the kernel
        return out

    def close(self) -> None:
        self._hdr = self._data = None
        with contextlib.suppress(BufferError):  # a view escaped: the GC closes the map
            self._mm.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)
