"""The `memcg` stream: a cgroupfs poller of each memory cgroup's charge and limit.

There is no cheap tracepoint for "a cgroup's usage now", and sampling once a second is
enough to see a charge growing towards its limit before the OOM killer fires. Reads
happen in a worker thread so a host with thousands of cgroups never stalls the loop.
Handles cgroup v1 (memory.usage_in_bytes / memory.limit_in_bytes) and v2
(memory.current / memory.max); "no limit" becomes an absent `limit`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np

from engine.batch import Batch
from engine.errors import ConfigError
from engine.source import Emit

from . import interval_option

__all__ = ["MemcgSource", "check", "default_root", "make_source", "sample"]

CGROUP_FS = Path("/sys/fs/cgroup")
# v1 reports "no limit" as PAGE_COUNTER_MAX pages (0x7FFFFFFFFFFFF000 with 4k pages);
# anything this large is not a real limit.
_UNLIMITED_V1 = 1 << 62
DEFAULT_INTERVAL_NS = 1_000_000_000
DEFAULT_MAX_CGROUPS = 20_000

_FILES = {
    1: ("memory.usage_in_bytes", "memory.limit_in_bytes"),
    2: ("memory.current", "memory.max"),
}


def _v2_has_memory(path: Path) -> bool:
    try:
        return "memory" in (path / "cgroup.controllers").read_text().split()
    except OSError:
        return False


def default_root(base: Path = CGROUP_FS) -> tuple[Path, int] | None:
    """The hierarchy that holds the memory controller, and its version (1 or 2)."""
    if os.path.exists(base / "memory" / "memory.usage_in_bytes"):
        return base / "memory", 1
    for cand in (base, base / "unified"):
        if _v2_has_memory(cand):
            return cand, 2
    return None


def detect_version(root: Path) -> int:
    if any(os.path.exists(root / f) for f in ("memory.usage_in_bytes", "memory.limit_in_bytes")):
        return 1
    return 2


def _read_int(path: str) -> int | None:
    """The file's number; None when it is "max" or the cgroup vanished meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 64).strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    if not raw or raw == b"max":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _walk(root: str, limit: int) -> list[str]:
    """Every cgroup directory under root (root first), at most `limit` of them."""
    out = [root]
    i = 0
    while i < len(out) and len(out) < limit:
        try:
            with os.scandir(out[i]) as it:
                for e in it:
                    # cgroupfs has no symlinks; a vanished child just ends its scan
                    if e.is_dir(follow_symlinks=False):
                        out.append(e.path)
        except OSError:
            pass  # removed while walking
        i += 1
    return out[:limit]


def _rel(root: str, path: str) -> str:
    rel = path[len(root) :]
    return rel if rel.startswith("/") else "/" + rel


def sample(
    root: Path,
    version: int,
    cgroups: Iterable[str] | None = None,
    max_cgroups: int = DEFAULT_MAX_CGROUPS,
) -> tuple[list[str], list[float], list[float], int]:
    """One pass: (cgroup paths, usage, limit with NaN for none, cgroups that vanished)."""
    base = str(root).rstrip("/") or "/"
    if cgroups is None:
        dirs = _walk(base, max_cgroups)
    else:
        dirs = [base + c.rstrip("/") if c != "/" else base for c in cgroups]
    usage_name, limit_name = _FILES[version]
    names: list[str] = []
    usage: list[float] = []
    limit: list[float] = []
    vanished = 0
    for d in dirs:
        u = _read_int(f"{d}/{usage_name}")
        if u is None:
            # v2's root has no memory.current; other misses are cgroups removed mid-walk
            if os.path.isdir(d) and d == base:
                continue
            vanished += 1
            continue
        lim = _read_int(f"{d}/{limit_name}")
        if lim is not None and lim >= _UNLIMITED_V1:
            lim = None
        names.append(_rel(base, d) if d != base else "/")
        usage.append(float(u))
        limit.append(np.nan if lim is None else float(lim))
    return names, usage, limit, vanished


class MemcgSource:
    """Samples every memory cgroup (or the given ones) each `interval_ns`."""

    name = "memcg"
    streams = frozenset({"memcg"})

    def __init__(
        self,
        root: Path | None = None,
        version: int | None = None,
        cgroups: Iterable[str] | None = None,
        interval_ns: int = DEFAULT_INTERVAL_NS,
        max_cgroups: int = DEFAULT_MAX_CGROUPS,
    ) -> None:
        if root is None:
            found = default_root()
            if found is None:
                raise ConfigError("memcg: no cgroup hierarchy with the memory controller found")
            root, detected = found
        else:
            detected = detect_version(root)
        self.root = root
        self.version = version or detected
        self.cgroups = None if cgroups is None else tuple(cgroups)
        self.interval_ns = interval_ns
        self.max_cgroups = max_cgroups
        self._progress: int | None = None  # set while a pass is in flight
        self._running = False
        self._stats = {"samples": 0, "events": 0, "vanished": 0}

    def sample_batch(self) -> Batch:
        """One sample as a batch; every row is stamped with the time the pass began."""
        ts = time.monotonic_ns()
        names, usage, limit, vanished = sample(
            self.root, self.version, self.cgroups, self.max_cgroups
        )
        n = len(names)
        self._stats["samples"] += 1
        self._stats["events"] += n
        self._stats["vanished"] += vanished
        return Batch(
            "memcg",
            np.full(n, ts, dtype=np.int64),
            None,
            {
                "cgroup": np.array(names, dtype=object),
                "usage": np.array(usage, dtype=np.float64),
                "limit": np.array(limit, dtype=np.float64),
            },
        )

    async def run(self, emit: Emit) -> None:
        period = self.interval_ns / 1e9
        next_at = time.monotonic()
        self._running = True
        try:
            while True:
                # a pass stamps its rows with its start: hold progress just below it
                self._progress = time.monotonic_ns() - 1
                batch = await anyio.to_thread.run_sync(self.sample_batch)
                if len(batch):
                    await emit(batch)
                self._progress = None
                next_at += period
                await anyio.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            self._running = False

    def progress(self) -> int | None:
        """Between passes everything is out, so progress is now: a 1 s poller must not
        hold every other stream's windows back by a second."""
        if not self._running:
            return None
        return self._progress if self._progress is not None else time.monotonic_ns()

    def stats(self) -> dict[str, int]:
        return dict(self._stats)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> MemcgSource:
    """Options: root (path), cgroups (list of "/path"), interval ("1s" or seconds)."""
    root = options.get("root")
    cgroups = options.get("cgroups")
    return MemcgSource(
        root=None if root is None else Path(root),
        cgroups=None if cgroups is None else [str(c) for c in cgroups],
        interval_ns=interval_option("memcg", options.get("interval", "1s")),
        max_cgroups=int(options.get("max_cgroups", DEFAULT_MAX_CGROUPS)),
    )


def check() -> tuple[bool, str]:
    found = default_root()
    if found is None:
        return False, (
            f"no memory cgroup hierarchy under {CGROUP_FS} "
            "(fix: mount the cgroup v1 memory controller or cgroup2 with memory enabled)"
        )
    root, version = found
    return True, f"cgroup v{version} memory controller at {root}"
