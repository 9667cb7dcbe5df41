"""Host capability checks: can this machine run a probe, and if not, how to fix it.

Each check returns a `Check` whose `fix` is a command or step a person can act on, so
`tracehound probes` and `watch` can tell why a stream is missing instead of failing
with a traceback. Nothing here imports bcc: the checks must run where bcc is absent.
Paths are parameters so tests can point them at fixture trees.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEBUGFS",
    "MODULES_ROOT",
    "PROC_STATUS",
    "TRACEFS",
    "Check",
    "check_bcc",
    "check_bpf_syscall",
    "check_file",
    "check_headers",
    "check_kprobe",
    "check_privilege",
    "check_tracefs",
    "check_tracepoint",
    "first_failure",
    "tracefs_root",
]

PROC_STATUS = Path("/proc/self/status")
TRACEFS = Path("/sys/kernel/tracing")
DEBUGFS = Path("/sys/kernel/debug")
MODULES_ROOT = Path("/lib/modules")

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39

SETUP_FIX = "run `make setup` as root (probes/host-setup.sh)"


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    reason: str
    fix: str = ""

    def message(self) -> str:
        """One line for people: the reason, then the fix."""
        return self.reason if self.ok or not self.fix else f"{self.reason} (fix: {self.fix})"


def first_failure(checks: list[Check]) -> Check | None:
    return next((c for c in checks if not c.ok), None)


def _cap_eff(status: Path) -> int | None:
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_privilege(status: Path = PROC_STATUS) -> Check:
    """BPF tracing needs CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON (5.8+)."""
    caps = _cap_eff(status)
    if caps is None:
        return Check(False, f"cannot read capabilities from {status}", "run as root")

    def has(bit: int) -> bool:
        return bool(caps >> bit & 1)

    if has(CAP_SYS_ADMIN) or (has(CAP_BPF) and has(CAP_PERFMON)):
        return Check(True, "privileged (CAP_SYS_ADMIN or CAP_BPF+CAP_PERFMON)")
    return Check(
        False,
        "not privileged: loading BPF programs needs root or CAP_BPF+CAP_PERFMON",
        "run as root (sudo), or grant the service CAP_BPF CAP_PERFMON (AmbientCapabilities=)",
    )


_SYS_BPF = {"x86_64": 321, "aarch64": 280, "arm64": 280, "riscv64": 280, "ppc64le": 361}
_BPF_PROG_LOAD = 5
_BPF_PROG_TYPE_SOCKET_FILTER = 1
# r0 = 0; exit
_TRIVIAL_PROG = bytes.fromhex("b7000000000000009500000000000000")


def check_bpf_syscall() -> Check:
    """Load a two-instruction socket filter: the cheapest proof the bpf() syscall works."""
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        return Check(True, f"bpf() not probed on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    insns = ctypes.create_string_buffer(_TRIVIAL_PROG, len(_TRIVIAL_PROG))
    license_ = ctypes.create_string_buffer(b"GPL")
    attr = (ctypes.c_uint8 * 128)()
    # union bpf_attr, BPF_PROG_LOAD: prog_type u32, insn_cnt u32, insns u64, license u64
    ctypes.c_uint32.from_buffer(attr, 0).value = _BPF_PROG_TYPE_SOCKET_FILTER
    ctypes.c_uint32.from_buffer(attr, 4).value = len(_TRIVIAL_PROG) // 8
    ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(insns)
    ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(license_)
    fd = libc.syscall(ctypes.c_long(nr), ctypes.c_int(_BPF_PROG_LOAD), attr, ctypes.c_uint(128))
    if fd >= 0:
        os.close(fd)
        return Check(True, "bpf() syscall loads programs")
    err = ctypes.get_errno()
    if err == errno.ENOSYS:
        return Check(
            False,
            "kernel has no bpf() syscall (CONFIG_BPF_SYSCALL off)",
            "use a kernel built with CONFIG_BPF_SYSCALL=y",
        )
    if err in (errno.EPERM, errno.EACCES):
        return Check(
            False,
            f"bpf() refused: {os.strerror(err)}",
            "run as root; check kernel.unprivileged_bpf_disabled and lockdown/seccomp",
        )
    return Check(False, f"bpf() failed: {os.strerror(err)}", "check dmesg for BPF errors")


def _is_tracefs(path: Path) -> bool:
    return os.path.isdir(path / "events")  # False, not an error, when unreadable


def tracefs_root(candidates: tuple[Path, ...] | None = None) -> Path | None:
    """Where tracefs is mounted (the new place first, then under debugfs)."""
    for p in candidates or (TRACEFS, DEBUGFS / "tracing"):
        if _is_tracefs(p):
            return p
    return None


def check_tracefs(root: Path = TRACEFS, mount: bool = False) -> Check:
    """tracefs holds tracepoint formats bcc reads; mount it when allowed and asked."""
    # bcc 0.26 also accepts the old place under debugfs, but only for the default root
    candidates = (root, DEBUGFS / "tracing") if root == TRACEFS else (root,)
    found = tracefs_root(candidates)
    if found is not None:
        return Check(True, f"tracefs at {found}")
    if mount and os.geteuid() == 0 and os.path.isdir(root):
        r = subprocess.run(
            ["mount", "-t", "tracefs", "nodev", str(root)], capture_output=True, check=False
        )
        if r.returncode == 0 and _is_tracefs(root):
            return Check(True, f"tracefs mounted at {root}")
    if os.path.isdir(root) and not os.access(root, os.R_OK | os.X_OK):
        return Check(False, f"tracefs at {root} is not readable (permission denied)", "run as root")
    return Check(
        False,
        f"tracefs is not mounted at {root}",
        f"mount -t tracefs nodev {root}   (or `make setup`)",
    )


def check_tracepoint(name: str, root: Path | None = None) -> Check:
    """`group:event` exists in this kernel (its directory under tracefs/events)."""
    group, _, event = name.partition(":")
    base = root if root is not None else tracefs_root()
    if base is None:
        return Check(
            False,
            f"cannot look up tracepoint {name}: tracefs not mounted",
            f"mount -t tracefs nodev {TRACEFS}   (or `make setup`)",
        )
    if os.path.isdir(base / "events" / group / event):
        return Check(True, f"tracepoint {name}")
    return Check(
        False,
        f"tracepoint {name} missing from this kernel ({base}/events/{group}/{event})",
        "a kernel with this tracepoint is needed; this stream is unavailable here",
    )


def check_kprobe(symbol: str, root: Path | None = None) -> Check:
    """kprobes are enabled (kprobe_events exists) and `symbol` can be probed."""
    base = root if root is not None else tracefs_root()
    if base is None:
        return Check(False, "tracefs not mounted", "`make setup`")
    if not os.path.exists(base / "kprobe_events"):
        return Check(
            False,
            "kprobes not available (CONFIG_KPROBES off)",
            "use a kernel built with CONFIG_KPROBES=y",
        )
    try:
        with (base / "available_filter_functions").open() as f:
            for line in f:
                if line.split(" ", 1)[0].strip() == symbol:
                    return Check(True, f"kprobe on {symbol}")
    except OSError as e:
        return Check(False, f"cannot read available_filter_functions: {e.strerror}", "run as root")
    return Check(
        False,
        f"{symbol} is not a probeable kernel function (module not loaded?)",
        f"load the module that provides {symbol}",
    )


def check_headers(release: str | None = None, root: Path = MODULES_ROOT) -> Check:
    """bcc compiles against /lib/modules/RELEASE/build (and kconfig.h, in source/ on Debian)."""
    rel = release or os.uname().release
    mod = root / rel
    if not os.path.exists(mod / "build" / "Makefile"):
        return Check(
            False,
            f"kernel headers missing: {mod}/build",
            f"{SETUP_FIX}; it installs linux-headers-{rel} or links the closest ones",
        )
    if not any(os.path.exists(mod / d / "include/linux/kconfig.h") for d in ("build", "source")):
        return Check(
            False,
            f"kernel headers incomplete: no include/linux/kconfig.h under {mod}",
            f"{SETUP_FIX}; it links {mod}/source to the -common headers",
        )
    return Check(True, f"kernel headers at {(mod / 'build').resolve()}")


def check_bcc() -> Check:
    """bcc is importable (found, not imported: importing it costs ~100 ms)."""
    try:
        found = importlib.util.find_spec("bcc") is not None
    except (ImportError, ValueError):
        found = False
    if found:
        return Check(True, "bcc importable")
    return Check(
        False,
        "bcc (python3-bpfcc) is not importable",
        f"apt-get install python3-bpfcc, then `make setup` (it links bcc into .venv); {SETUP_FIX}",
    )


def check_file(path: Path, what: str, fix: str) -> Check:
    """For pollers: the file or directory they read exists."""
    if os.path.exists(path):
        return Check(True, f"{what} at {path}")
    return Check(False, f"{what} not found ({path})", fix)
