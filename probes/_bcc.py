"""The one module that imports bcc: compile a probe's C, attach it, wire its perf maps.

bcc is imported lazily so that `import probes` works on hosts without it; every
failure leaves as a HostError whose message says what to install or set up.
Programs use TRACEPOINT_PROBE only (bcc attaches those when it loads them): on the
project's hosts kprobes are absent and fentry is refused.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import HostError

from . import host

__all__ = ["PRELUDE", "Program", "online_cpus", "probe_check", "tracepoint_format"]

# Shared by every probe: a per-CPU count of samples bpf_perf_event_output refused.
# (The ring's own LOST records only arrive with the next successful write.)
PRELUDE = r"""
BPF_PERF_OUTPUT(events);
BPF_PERCPU_ARRAY(th_lost, u64, 1);
static __always_inline void th_submit(void *ctx, void *data, u32 size) {
    if (events.perf_submit(ctx, data, size) != 0) {
        int zero = 0;
        u64 *c = th_lost.lookup(&zero);
        if (c)
            (*c)++;
    }
}
"""


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


def probe_check(tracepoints: Sequence[str]) -> tuple[bool, str]:
    """Everything a tracepoint probe needs, cheapest first: (ok, reason with the fix).

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


class Program:
    """A compiled, attached BPF program (the shared PRELUDE prepended to `src`)."""

    def __init__(self, src: Path, cflags: Sequence[str] = ()) -> None:
        bcc = _import_bcc()
        text = PRELUDE + src.read_text()
        try:
            self._bpf = bcc.BPF(text=text.encode(), cflags=list(cflags))
        except Exception as e:  # bcc raises bare Exception on compile/load/attach errors
            raise HostError(
                f"cannot load probe {src.name}: {e} (check that kernel headers are installed "
                "and linked under /lib/modules/$(uname -r)/build: probes/host-setup.sh)"
            ) from None

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
