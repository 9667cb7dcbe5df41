"""A BPF ring buffer (BPF_MAP_TYPE_RINGBUF) read directly: mmapped, numpy-decoded.

The kernel side (kernel/bpf/ringbuf.c): one ring for all CPUs. Page 0 of the map's
mmap holds `consumer_pos` (ours to write), page 1 `producer_pos`, then the data
pages, mapped twice in a row so a record that wraps past the end reads contiguous.
Each record is an 8-byte header (u32 `len` with BUSY bit 31 while the producer
still writes it, DISCARD bit 30; u32 `pg_off`) and `len` bytes, padded to 8. A
record's header is written (BUSY) before `producer_pos` moves past it, so every
header up to `producer_pos` is readable; the reader stops at the first BUSY one.

Why not bcc's ring buffer reader: it calls Python once per record (as its perf
reader does). Here each `read()` takes one `producer_pos` snapshot (so the work per
call is bounded by the ring size), checks the headers of the fixed-size records in
one numpy go, copies their payloads, and hands the space back by moving
`consumer_pos`. Only a record of another size (bad) or the first BUSY one take the
slow path, one header at a time (a record BUSY for the bulk check and committed
when looked at again goes back to the bulk path).

The map's fd is level-triggered (readable while any byte is unread): waiting on it
would wake per sample. `fd` is an epoll of the map in edge-triggered mode instead:
readable once per kernel wakeup (the program forces one per quarter of the ring,
probes/_bcc.py), re-armed by `ack()`.
"""

from __future__ import annotations

import contextlib
import mmap
import select

import numpy as np

from .perf_ring import RingRead

__all__ = ["BUSY_BIT", "DISCARD_BIT", "BpfRing", "read_records", "record_dtype", "record_size"]

BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
_LEN_MASK = DISCARD_BIT - 1
HDR_SIZE = 8


def record_size(payload: np.dtype) -> int:
    """Bytes one sample of `payload` takes in the ring: header and data, padded to 8."""
    return (HDR_SIZE + payload.itemsize + 7) // 8 * 8


def record_dtype(payload: np.dtype) -> np.dtype:
    """One ring buffer record carrying one `payload` (the C struct) after its header."""
    return np.dtype(
        {
            "names": ["len", "pg_off", "p"],
            "formats": [np.uint32, np.uint32, payload],
            "offsets": [0, 4, HDR_SIZE],
            "itemsize": record_size(payload),
        }
    )


def read_records(chunk: np.ndarray, rec_dtype: np.dtype) -> tuple[RingRead, int]:
    """The committed records at the start of `chunk` (uint8: everything from the
    consumer position to a producer position snapshot) -> (their payloads, bytes to
    consume). Stops at the first BUSY record; discarded records are skipped, records
    of another size are counted `bad` and skipped. Payloads are copied out."""
    rs = rec_dtype.itemsize
    want = rec_dtype["p"].itemsize
    n = chunk.shape[0]
    parts: list[np.ndarray] = []
    bad = 0
    pos = 0
    while pos < n:
        k = (n - pos) // rs
        if k:
            recs = chunk[pos : pos + k * rs].view(rec_dtype)
            lens = recs["len"]
            ok = (lens & ~np.uint32(DISCARD_BIT)) == want  # committed (maybe discarded), ours
            m = k if bool(ok.all()) else int(np.argmin(ok))
            if m:
                seg = recs["p"][:m]
                kept = (lens[:m] & np.uint32(DISCARD_BIT)) == 0
                parts.append(seg if bool(kept.all()) else seg[kept])
                pos += m * rs
                if pos >= n:
                    break
        # one record that is not a whole committed sample of ours
        if pos + HDR_SIZE > n:  # the kernel never leaves a partial header: misfit
            bad += 1
            pos = n
            break
        ln = int(chunk[pos : pos + 4].view(np.uint32)[0])
        if ln & BUSY_BIT:
            break
        if ln & _LEN_MASK == want:  # it was BUSY when the bulk view looked: now committed
            continue
        size = (HDR_SIZE + (ln & _LEN_MASK) + 7) // 8 * 8
        if pos + size > n:
            bad += 1
            pos = n
            break
        if not ln & DISCARD_BIT:
            bad += 1
        pos += size
    if not parts:
        payload = np.empty(0, dtype=rec_dtype["p"])
    elif len(parts) == 1:
        payload = parts[0].copy()
    else:
        payload = np.concatenate(parts)
    return RingRead(payload, 0, bad), pos


class BpfRing:
    """The ring buffer map `map_fd` of `size` data bytes (the program keeps the fd).

    Drained like a perf ring (probes/drain.py): `pending()`, `read()`, `fd` to wait
    on, then `ack()`. `cpu` is -1: the one ring serves every CPU, so the loss is the
    program's per-CPU count only.
    """

    cpu = -1

    def __init__(self, map_fd: int, size: int, payload: np.dtype) -> None:
        page = mmap.PAGESIZE
        if size < page or size & (size - 1):
            raise ValueError("a ring buffer's size is a power of two of pages")
        self.size = size
        self._mask = size - 1
        self.payload_dtype = payload
        self.rec_dtype = record_dtype(payload)
        self.rec_size = self.rec_dtype.itemsize
        self._cons_mm = mmap.mmap(
            map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0
        )
        try:
            self._prod_mm = mmap.mmap(
                map_fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page
            )
        except OSError:
            self._cons_mm.close()
            raise
        self._cons: np.ndarray | None = np.frombuffer(self._cons_mm, np.uint64, count=1)
        self._prod: np.ndarray | None = np.frombuffer(self._prod_mm, np.uint64, count=1)
        self._data: np.ndarray | None = np.frombuffer(
            self._prod_mm, np.uint8, count=2 * size, offset=page
        )
        self._ep = select.epoll()
        try:
            self._ep.register(map_fd, select.EPOLLIN | select.EPOLLET)
        except OSError:
            self._ep.close()
            self._cons = self._prod = self._data = None
            self._cons_mm.close()
            self._prod_mm.close()
            raise
        self.fd = self._ep.fileno()

    def pending(self) -> int:
        """Bytes written and not yet read (cheap: two loads)."""
        assert self._cons is not None and self._prod is not None
        return int(self._prod[0]) - int(self._cons[0])

    def ack(self) -> None:
        """Re-arm `fd` after it woke the reader (call before reading: a wakeup that
        comes after this makes `fd` readable again)."""
        self._ep.poll(0)

    def read(self) -> RingRead:
        """Every committed record up to one `producer_pos` snapshot (bounded by the size)."""
        cons_a, prod_a, data = self._cons, self._prod, self._data
        assert cons_a is not None and prod_a is not None and data is not None
        prod = int(prod_a[0])  # x86 keeps loads in order: headers and data below are current
        cons = int(cons_a[0])
        n = prod - cons
        if n <= 0:
            return RingRead(np.empty(0, dtype=self.payload_dtype), 0, 0)
        start = cons & self._mask
        out, used = read_records(data[start : start + n], self.rec_dtype)
        # a reserve fails when the record does not fit the free space: room for less
        # than two samples, a sample may have been refused (th_lost counts it)
        out.full = self.size - n < 2 * self.rec_size
        out.complete = used >= n  # else it stopped at a BUSY record
        if used:
            cons_a[0] = cons + used  # hands the space back to the kernel
        return out

    def close(self) -> None:
        self._cons = self._prod = self._data = None
        with contextlib.suppress(OSError):
            self._ep.close()
        for mm in (self._cons_mm, self._prod_mm):
            with contextlib.suppress(BufferError):  # a view escaped: the GC closes the map
                mm.close()
