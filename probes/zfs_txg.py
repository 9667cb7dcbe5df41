"""The `zfs.txg.sync` stream: one interval per ZFS transaction-group sync.

Two ways in, best first:
- kprobe/kretprobe on `spa_sync(spa, txg)` (zfs_txg.bpf.c): exact times, drained like
  every bcc probe. Needs kprobes, which this project's hosts lack.
- the kstat poller of /proc/spl/kstat/zfs/<pool>/txgs: no BPF at all. A sync shows up
  once it has committed, so events arrive late but keep their true `ts`/`end`;
  progress() is the last read, so the watermark waits up to one interval for them
  and correlations with TXG syncs stay exact.

kstat times are CLOCK_MONOTONIC_RAW; events are CLOCK_MONOTONIC. The poller converts
with the offset between the two clocks measured at read time. The clocks differ only
by NTP's rate correction (at most 500 ppm, usually a few ppm), so for a TXG read
seconds after it synced the error is microseconds; it grows with the row's age.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from engine.batch import Batch
from engine.errors import ConfigError, HostError
from engine.source import Emit, Source

from . import host, interval_option

__all__ = [
    "KSTAT_ROOT",
    "PAYLOAD",
    "KstatTxgSource",
    "TxgRow",
    "check",
    "decode",
    "make_source",
    "mono_minus_raw_ns",
    "parse_txgs",
    "read_kstat",
]

KSTAT_ROOT = Path("/proc/spl/kstat/zfs")
BPF_SOURCE = Path(__file__).with_name("zfs_txg.bpf.c")
SYNC_SYMBOL = "spa_sync"
DEFAULT_INTERVAL_NS = 1_000_000_000
_READ_RETRIES = 5
_READ_CHUNK = 1 << 20
_PROGRESS_SLACK_NS = 1_000_000


@dataclass(frozen=True, slots=True)
class TxgRow:
    """A committed TXG from the kstat file, times still on CLOCK_MONOTONIC_RAW."""

    txg: int
    start_raw: int  # birth + otime + qtime + wtime
    end_raw: int  # start + stime
    dirty: int


_NEEDED = ("txg", "birth", "state", "ndirty", "otime", "qtime", "wtime", "stime")


def parse_txgs(text: str, after: int = -1) -> list[TxgRow]:
    """Committed rows with txg > `after`, in file order.

    Lines before the `txg` header are skipped (pre-0.8 kstats print a kstat header
    first); rows that are not committed yet, or malformed, are left for a later read.
    """
    lines = iter(text.splitlines())
    col: dict[str, int] = {}
    for line in lines:
        fields = line.split()
        if fields and fields[0] == "txg":
            col = {name: i for i, name in enumerate(fields)}
            break
    if not all(n in col for n in _NEEDED):
        return []
    width = max(col[n] for n in _NEEDED) + 1
    i_txg, i_birth, i_state, i_dirty = col["txg"], col["birth"], col["state"], col["ndirty"]
    i_o, i_q, i_w, i_s = col["otime"], col["qtime"], col["wtime"], col["stime"]
    out: list[TxgRow] = []
    for line in lines:
        f = line.split()
        if len(f) < width or f[i_state] != "C":
            continue
        try:
            txg = int(f[i_txg])
            if txg <= after:
                continue
            start = int(f[i_birth]) + int(f[i_o]) + int(f[i_q]) + int(f[i_w])
            out.append(TxgRow(txg, start, start + int(f[i_s]), int(f[i_dirty])))
        except ValueError:
            continue
    return out


def read_kstat(path: Path, retries: int = _READ_RETRIES) -> str:
    """The whole file; EIO means rows were dropped between reads, so start over."""
    for attempt in range(retries + 1):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return ""  # pool exported meanwhile
        try:
            parts: list[bytes] = []
            while chunk := os.read(fd, _READ_CHUNK):
                parts.append(chunk)
            return b"".join(parts).decode("ascii", "replace")
        except OSError as e:
            if e.errno != errno.EIO or attempt == retries:
                raise
        finally:
            os.close(fd)
    return ""  # not reached: the last attempt returns or raises


def mono_minus_raw_ns() -> int:
    """CLOCK_MONOTONIC - CLOCK_MONOTONIC_RAW now (raw read between two monotonic reads)."""
    m1 = time.monotonic_ns()
    r = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW)
    m2 = time.monotonic_ns()
    return (m1 + m2) // 2 - r


class KstatTxgSource:
    """Polls every pool's txgs kstat (or the given pools) and emits each TXG once."""

    name = "zfs_txg"
    streams = frozenset({"zfs.txg.sync"})

    def __init__(
        self,
        root: Path = KSTAT_ROOT,
        pools: Iterable[str] | None = None,
        interval_ns: int = DEFAULT_INTERVAL_NS,
        history: bool = False,
    ) -> None:
        self.root = root
        self.pools = None if pools is None else tuple(pools)
        self.interval_ns = interval_ns
        self.history = history  # emit syncs that ended before run() started
        self.last_txg: dict[str, int] = {}
        self._since: int | None = None
        self._progress: int | None = None
        self._stats = {"polls": 0, "events": 0, "errors": 0}

    def _pool_names(self) -> list[str]:
        if self.pools is not None:
            return list(self.pools)
        try:
            return sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        except OSError:
            return []

    def poll(self, offset_ns: int | None = None) -> Batch:
        """Read every pool once: new committed TXGs, sorted by end, on CLOCK_MONOTONIC."""
        pools: list[str] = []
        rows: list[TxgRow] = []
        for pool in self._pool_names():
            try:
                text = read_kstat(self.root / pool / "txgs")
            except OSError:
                self._stats["errors"] += 1
                continue
            committed = parse_txgs(text)
            if not committed:
                continue
            top = max(r.txg for r in committed)
            last = self.last_txg.get(pool, -1)
            if top < last:
                last = -1  # the txg counter went back: a new pool under the same name
            new = [r for r in committed if r.txg > last]
            self.last_txg[pool] = top
            rows.extend(new)
            pools.extend([pool] * len(new))
        off = mono_minus_raw_ns() if offset_ns is None else offset_ns
        self._stats["polls"] += 1
        ts = np.fromiter((r.start_raw for r in rows), np.int64, len(rows)) + off
        end = np.fromiter((r.end_raw for r in rows), np.int64, len(rows)) + off
        batch = Batch(
            "zfs.txg.sync",
            ts,
            end,
            {
                "pool": np.array(pools, dtype=object),
                "txg": np.fromiter((r.txg for r in rows), np.float64, len(rows)),
                "dirty": np.fromiter((r.dirty for r in rows), np.float64, len(rows)),
            },
        )
        keep = np.argsort(end, kind="stable")
        if self._since is not None:
            keep = keep[end[keep] >= self._since]
        batch = batch.take(keep)
        self._stats["events"] += len(batch)
        return batch

    async def run(self, emit: Emit) -> None:
        if not self.history:
            self._since = time.monotonic_ns()
        period = self.interval_ns / 1e9
        next_at = time.monotonic()
        while True:
            read_at = time.monotonic_ns()
            batch = self.poll()
            if len(batch):
                await emit(batch)
            # every sync that ended before this read has been emitted; the slack covers
            # the raw->monotonic conversion and the commit following the sync's end
            self._progress = read_at - _PROGRESS_SLACK_NS
            next_at += period
            await anyio.sleep(max(0.0, next_at - time.monotonic()))

    def progress(self) -> int | None:
        return self._progress

    def stats(self) -> dict[str, int]:
        return dict(self._stats)


def _kprobe_ok() -> host.Check:
    checks = [
        host.check_privilege(),
        host.check_tracefs(),
        host.check_kprobe(SYNC_SYMBOL),
        host.check_bcc(),
        host.check_headers(),
    ]
    return host.first_failure(checks) or host.Check(True, f"kprobe on {SYNC_SYMBOL}")


def check() -> tuple[bool, str]:
    kp = _kprobe_ok()
    if kp.ok:
        return True, f"kprobe/kretprobe on {SYNC_SYMBOL}"
    if os.path.isdir(KSTAT_ROOT):
        return True, f"polling {KSTAT_ROOT}/<pool>/txgs (no kprobe: {kp.reason})"
    return False, f"no ZFS module loaded ({KSTAT_ROOT} missing)"


# struct txg_event in zfs_txg.bpf.c, field for field
PAYLOAD = np.dtype([("start", "<u8"), ("end", "<u8"), ("txg", "<u8"), ("pool", "S64")], align=True)


def decode(rec: np.ndarray) -> Batch:
    """Kprobe samples -> a batch; the kprobe sees no dirty-byte count, so it is absent."""
    from .decode import cstrings

    return Batch(
        "zfs.txg.sync",
        rec["start"].astype(np.int64),
        rec["end"].astype(np.int64),
        {
            "pool": cstrings(rec["pool"]),
            "txg": rec["txg"].astype(np.float64),
            "dirty": np.full(rec.shape[0], np.nan),
        },
    )


def _kprobe_source(options: Mapping[str, Any]) -> Source:
    from .drain import BccProbeSource, ProbeSpec

    class KprobeTxgSource(BccProbeSource):
        """The drain, plus attaching the two spa_sync probes after compiling."""

        def open(self) -> None:
            super().open()
            bpf = self._program._bpf  # the bcc.BPF object inside _bcc.Program
            try:
                bpf.attach_kprobe(event=SYNC_SYMBOL, fn_name="txg_sync_enter")
                bpf.attach_kretprobe(event=SYNC_SYMBOL, fn_name="txg_sync_return")
            except Exception as e:  # bcc raises bare Exception
                self.close()
                raise HostError(f"zfs_txg: cannot attach kprobes on {SYNC_SYMBOL}: {e}") from None

    # about one sample per pool every few seconds: wake per sample, small rings
    spec = ProbeSpec(
        "zfs_txg", "zfs.txg.sync", BPF_SOURCE, PAYLOAD, decode, wakeup_events=1, pages=8
    )
    return KprobeTxgSource(spec, options)


def make_source(streams: frozenset[str], options: Mapping[str, Any]) -> Source:
    """Options: mode (auto|kprobe|kstat), root (kstat dir), pools, interval, history."""
    mode = str(options.get("mode", "auto"))
    if mode not in ("auto", "kprobe", "kstat"):
        raise ConfigError(f"zfs_txg mode must be auto, kprobe or kstat, not {mode!r}")
    if mode == "auto" and "root" not in options:
        mode = "kprobe" if _kprobe_ok().ok else "kstat"
    if mode == "kprobe":
        kp = _kprobe_ok()
        if not kp.ok:
            raise HostError(f"zfs.txg.sync: {kp.message()}")
        return _kprobe_source(options)
    root = Path(options.get("root", KSTAT_ROOT))
    if not os.path.isdir(root):
        raise HostError(f"zfs.txg.sync: no ZFS module loaded ({root} missing)")
    pools = options.get("pools")
    return KstatTxgSource(
        root=root,
        pools=None if pools is None else [str(p) for p in pools],
        interval_ns=interval_option("zfs_txg", options.get("interval", "1s")),
        history=bool(options.get("history", False)),
    )
