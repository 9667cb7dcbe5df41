"""The one module that imports bcc: compile a probe's C, attach it, wire its output map.

bcc is imported lazily so that `import probes` works on hosts without it; every
failure leaves as a HostError whose message says what to install or set up.
Programs use TRACEPOINT_PROBE and, where the kernel's BTF gives the struct offsets
(probes/btf.py), RAW_TRACEPOINT_PROBE (bcc attaches both when it loads them): on the
project's hosts kprobes are absent and fentry is refused.

A probe's samples leave through `th_submit()` (PRELUDE), into one of two outputs
chosen by cflags (`output_cflags`): the BPF ring buffer (one ring for all CPUs,
kernel >= 5.8) or the perf rings (one per CPU), kept for older kernels. The ring
buffer is the cheaper in the kernel: block_rq_complete ran ~190 ns per hit into it
against ~480 ns with bpf_perf_event_output into the drain's perf rings (bpf_stats,
the minimum of 6 interleaved runs each).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.errors import HostError

from . import btf, host

__all__ = [
    "PRELUDE",
    "Program",
    "captured_stderr",
    "online_cpus",
    "output_cflags",
    "probe_check",
    "ringbuf_supported",
    "tracepoint_format",
]

# Shared by every probe: th_submit(), and a per-CPU count of the samples it could
# not deliver (th_lost). Perf rings: the ring's own LOST records only arrive with the
# next successful write, so the BPF count is read as well. Ring buffer (TH_RINGBUF):
# it has no LOST records, the BPF count is the whole loss.
#
# Ring buffer wakeups mirror the perf rings' byte watermark: no wakeup per sample
# (BPF_RB_NO_WAKEUP) except for the sample whose bytes cross a multiple of
# 1 << TH_RB_WAKE_SHIFT (a quarter of the ring) of unread data: that one forces it.
# A crossing missed by racing CPUs is caught at the next multiple, or by the sweep.
# TH_RB_WAKE_EACH (rare streams) uses the kernel's adaptive wakeup (flags 0): a
# sample wakes the reader when the reader had caught up.
# bcc has no ringbuf_query method and does not rewrite `&events` in a raw helper
# call, so the query rides on the call bcc does rewrite: its text becomes
# `bpf_ringbuf_output((void *)bpf_pseudo_fd(1, FD), ...)`, which the macro below
# then expands (a parenthesised name is not expanded again: the real helper).
PRELUDE = r"""
BPF_PERCPU_ARRAY(th_lost, u64, 1);
static __always_inline void th_count_lost(void) {
    int zero = 0;
    u64 *c = th_lost.lookup(&zero);
    if (c)  // atomic: a raw tracepoint program may interrupt another on this CPU
        __sync_fetch_and_add(c, 1);
}
#ifdef TH_RINGBUF
BPF_RINGBUF_OUTPUT(events, TH_RB_PAGES);
#ifndef TH_RB_WAKE_EACH
static __always_inline u64 th_rb_flags(u64 avail, u64 size) {
    u64 after = avail + ((size + 8 + 7) & ~7ULL);
    return (avail >> TH_RB_WAKE_SHIFT) != (after >> TH_RB_WAKE_SHIFT) ? BPF_RB_FORCE_WAKEUP
                                                                      : BPF_RB_NO_WAKEUP;
}
#define bpf_ringbuf_output(map, data, size, flags) ({ \
    void *th_map_ = (void *)(map); \
    (bpf_ringbuf_output)(th_map_, (data), (size), \
        th_rb_flags(bpf_ringbuf_query(th_map_, BPF_RB_AVAIL_DATA), (size))); })
#endif
static __always_inline void th_submit(void *ctx, void *data, u32 size) {
    if (events.ringbuf_output(data, size, 0) != 0)
        th_count_lost();
}
#else
BPF_PERF_OUTPUT(events);
static __always_inline void th_submit(void *ctx, void *data, u32 size) {
    if (events.perf_submit(ctx, data, size) != 0)
        th_count_lost();
}
#endif
"""

_NR_BPF = {"x86_64": 321, "aarch64": 280}
_BPF_MAP_CREATE = 0
_BPF_MAP_TYPE_RINGBUF = 27


@functools.cache
def ringbuf_supported() -> bool:
    """Whether this kernel creates a BPF_MAP_TYPE_RINGBUF map (5.8+): one tried, closed."""
    import ctypes
    import platform

    if platform.machine() != "x86_64":
        # probes/bpf_ring.py reads headers, payloads and writes consumer_pos with plain
        # loads and stores: in order on x86 (TSO) only; elsewhere it needs barriers.
        return False
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        return False
    attr = (ctypes.c_uint32 * 32)()  # union bpf_attr, map_create: type, key, value, max
    attr[0], attr[1], attr[2], attr[3] = _BPF_MAP_TYPE_RINGBUF, 0, 0, 4096
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(nr, _BPF_MAP_CREATE, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        return False
    os.close(fd)
    return True


def output_cflags(ring_bytes: int, wakeup_events: int) -> tuple[str, ...]:
    """cflags that make th_submit() write into a BPF ring buffer of `ring_bytes` (a power
    of two, pages): waking at each quarter of it, or (wakeup_events > 0) when the reader
    had caught up."""
    page = os.sysconf("SC_PAGE_SIZE")
    if ring_bytes < page or ring_bytes & (ring_bytes - 1):
        raise ValueError("a ring buffer is a power of two of pages")
    flags = ["-DTH_RINGBUF=1", f"-DTH_RB_PAGES={ring_bytes // page}"]
    if wakeup_events > 0:
        flags.append("-DTH_RB_WAKE_EACH=1")
    else:
        flags.append(f"-DTH_RB_WAKE_SHIFT={(ring_bytes // 4).bit_length() - 1}")
    return tuple(flags)


def _import_bcc() -> Any:
    try:
        import bcc
    except ImportError as e:
        raise HostError(
            f"bcc is not importable ({e}): install the distribution's bcc Python package "
            "(Debian/Ubuntu: apt install python3-bpfcc; Fedora: dnf install python3-bcc) "
            "and run probes/host-setup.sh so the virtual environment can see it"
        ) from None
    return bcc


def probe_check(
    tracepoints: Sequence[str], raw: tuple[Callable[[btf.Btf], tuple[str, ...]], str] | None = None
) -> tuple[bool, str]:
    """Everything a tracepoint probe needs, cheapest first: (ok, reason with the fix).
    `raw`: the probe's raw-variant cflags builder and what it attaches raw, said in
    the reason where the kernel's BTF allows it.

    bcc is looked for, not imported (that costs ~100 ms per probe listed).
    """
    checks: tuple[Callable[[], host.Check], ...] = (
        host.check_privilege,
        host.check_tracefs,
        host.check_headers,
        host.check_bcc,
        *(functools.partial(host.check_tracepoint, tp) for tp in tracepoints),
    )
    for check in checks:  # in order: a later check may need what an earlier one proves
        try:
            c = check()
        except OSError as e:
            return False, f"{e.filename or ''}: {e.strerror or e} (run as root)"
        if not c.ok:
            return False, c.message()
    if raw is not None and btf.raw_cflags({}, raw[0]):
        return True, f"tracepoint {', '.join(tracepoints)}; {raw[1]} (kernel BTF)"
    return True, "ok"


def tracepoint_format(group: str, name: str) -> str:
    """The tracepoint's format file text ('' when tracefs or the event is missing)."""
    root = host.tracefs_root()
    if root is None:
        return ""
    try:
        return (root / "events" / group / name / "format").read_text()
    except OSError:
        return ""


def online_cpus() -> list[int]:
    """CPU ids from /sys/devices/system/cpu/online (`0-3,6`)."""
    try:
        text = Path("/sys/devices/system/cpu/online").read_text().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collect what is written to fd 2 meanwhile (clang's and bcc's own messages go
    there, not through Python) into the yielded list, as lines, instead of showing it."""
    import tempfile

    got: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield got
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            got.extend(tmp.read().decode(errors="replace").splitlines())


class Program:
    """A compiled, attached BPF program (the shared PRELUDE prepended to `src`)."""

    def __init__(self, src: Path, cflags: Sequence[str] = ()) -> None:
        bcc = _import_bcc()
        text = PRELUDE + src.read_text()
        # bcc registers its cleanup at exit before it loads anything: a BPF() that
        # fails would keep its maps (the ring buffer: megabytes of locked memory) and
        # any programs it attached until the process ends, so it is cleaned up here.
        b = bcc.BPF.__new__(bcc.BPF)
        try:
            b.__init__(text=text.encode(), cflags=list(cflags))
            self._bpf = b
        except Exception as e:  # bcc raises bare Exception on compile/load/attach errors
            import atexit

            with contextlib.suppress(Exception):
                b.cleanup()
            atexit.unregister(b.cleanup)
            raise HostError(
                f"cannot load probe {src.name}: {e} (check that kernel headers are installed "
                "and linked under /lib/modules/$(uname -r)/build: probes/host-setup.sh)"
            ) from None

    def ringbuf(self) -> tuple[int, int]:
        """The `events` ring buffer map: (fd, data bytes). For programs built with
        `output_cflags`; the fd stays the program's (closed by close())."""
        table = self._bpf[b"events"]
        return int(table.map_fd), int(table.max_entries)

    def _fdinfo(self, *names: str, skip: Sequence[str] = ()) -> list[int]:
        """Fields of /proc/self/fdinfo summed over this program's loaded functions
        (but those whose names end with one of `skip`)."""
        out = [0] * len(names)
        for fname, fn in self._bpf.funcs.items():
            if skip and fname.decode().endswith(tuple(skip)):
                continue
            try:
                text = Path(f"/proc/self/fdinfo/{fn.fd}").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            for i, name in enumerate(names):
                out[i] += int(fields.get(name, 0))
        return out

    def run_stats(self) -> tuple[int, int]:
        """(run_cnt, run_time_ns) summed over this program's functions (counted only
        while kernel.bpf_stats_enabled is 1)."""
        cnt, ns = self._fdinfo("run_cnt", "run_time_ns")
        return cnt, ns

    def misses(self, skip: Sequence[str] = ()) -> int:
        """Runs of this program's functions (but `skip`) the kernel skipped: fdinfo's
        recursion_misses (0 where it lacks them), counted bpf_stats or not; for
        tracepoint programs since 6.7 (before, a skip is not counted anywhere)."""
        return self._fdinfo("recursion_misses", skip=skip)[0]

    def set_perf_fd(self, cpu: int, fd: int) -> None:
        """Point the `events` perf map's slot for `cpu` at our own perf event."""
        table = self._bpf[b"events"]
        table[table.Key(cpu)] = table.Leaf(fd)

    def percpu_counter(self, name: str = "th_lost") -> list[int]:
        """The per-CPU values at index 0 of a BPF_PERCPU_ARRAY of u64."""
        values = self._bpf[name.encode()][0]
        return [int(v) for v in values]

    def attach_kprobe(self, event: str, fn_name: str, ret: bool = False) -> None:
        """For hosts that have kprobes (not this project's): raises HostError otherwise."""
        try:
            if ret:
                self._bpf.attach_kretprobe(event=event.encode(), fn_name=fn_name.encode())
            else:
                self._bpf.attach_kprobe(event=event.encode(), fn_name=fn_name.encode())
        except Exception as e:  # bcc raises bare Exception
            raise HostError(f"cannot attach kprobe on {event}: {e}") from None

    def open_bcc_buffer(
        self,
        callback: Callable[[int, int, int], None],
        lost: Callable[[int], None],
        pages: int,
        wakeup_events: int,
    ) -> list[tuple[int, Any]]:
        """bcc's own perf reader on `events` (the bench's baseline): (fd, reader) per CPU.

        Read a reader with `bcc_reader_read`; it drains until the ring is empty, which
        is why the drain uses PerfRing instead.
        """
        table = self._bpf[b"events"]
        table.open_perf_buffer(callback, page_cnt=pages, lost_cb=lost, wakeup_events=wakeup_events)
        lib = _import_bcc().libbcc.lib
        return [(int(lib.perf_reader_fd(r)), r) for r in self._bpf.perf_buffers.values()]

    @staticmethod
    def bcc_reader_read(reader: Any) -> None:
        lib = _import_bcc().libbcc.lib
        if not getattr(lib.perf_reader_event_read, "argtypes", None):
            import ctypes

            lib.perf_reader_event_read.argtypes = [ctypes.c_void_p]
            lib.perf_reader_event_read.restype = None
        lib.perf_reader_event_read(reader)

    def close(self) -> None:
        self._bpf.cleanup()
