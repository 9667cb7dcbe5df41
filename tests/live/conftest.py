"""Live-probe fixtures: a real kernel and real devices, torn down even on failure."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import pytest

from engine.batch import Batch, concat
from probes import _bcc

pytestmark = pytest.mark.live


def _skip_reason() -> str | None:
    ok, reason = _bcc.probe_check(())
    return None if ok else reason


SKIP = _skip_reason()
needs_bpf = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def _no_btf() -> str | None:
    from probes import btf

    try:
        btf.vmlinux()
    except btf.BtfError as e:
        return str(e)
    return None


NO_BTF = _no_btf()
# a probe's raw tracepoint variant (where the kernel has BTF), and its tracepoint one
RAW_VARIANTS = [
    pytest.param(True, id="raw", marks=pytest.mark.skipif(NO_BTF is not None, reason=NO_BTF or "")),
    pytest.param(False, id="tracepoint"),
]


def run(cmd: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


@pytest.fixture
def ext4_loop(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A 64 MiB ext4 file system on a fresh loop device: (loopN, mount point)."""
    for tool in ("losetup", "mkfs.ext4", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    img = tmp_path / "disk.img"
    with img.open("wb") as f:
        f.truncate(64 * 1024 * 1024)
    dev = run(f"losetup --find --show {img}").stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = False
    try:
        run(f"mkfs.ext4 -q -F {dev}")
        run(f"mount -o commit=1 {dev} {mnt}")
        mounted = True
        yield os.path.basename(dev), mnt
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        subprocess.run(["losetup", "-d", dev], check=False)


@pytest.fixture
def memcg_v1() -> Iterator[tuple[str, Path]]:
    """A v1 memory cgroup limited to 64 MiB: (path relative to the hierarchy, directory)."""
    root = Path("/sys/fs/cgroup/memory")
    if not (root / "memory.limit_in_bytes").exists():
        pytest.skip("no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory")
    name = f"tracehound-test-{uuid.uuid4().hex[:8]}"
    d = root / name
    d.mkdir()
    try:
        (d / "memory.limit_in_bytes").write_text(str(64 * 1024 * 1024))
        swap = d / "memory.memsw.limit_in_bytes"
        if swap.exists():
            with contextlib.suppress(OSError):
                swap.write_text(str(64 * 1024 * 1024))
        yield "/" + name, d
    finally:
        for pid in (d / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        for _ in range(100):
            try:
                d.rmdir()
                break
            except OSError:
                import time

                time.sleep(0.05)


async def collect(
    source: object, workload: Callable[[], Awaitable[None]], settle: float = 0.3
) -> dict[str, list[Batch]]:
    """Run a source around a workload; the batches it emitted, per stream, in order."""
    got: dict[str, list[Batch]] = {}

    async def emit(b: Batch) -> None:
        got.setdefault(b.stream, []).append(b)

    source.open()  # type: ignore[attr-defined]
    async with anyio.create_task_group() as tg:
        tg.start_soon(source.run, emit)  # type: ignore[attr-defined]
        await anyio.sleep(0.05)
        await workload()
        await anyio.sleep(settle)
        tg.cancel_scope.cancel()
    return got


def joined(got: dict[str, list[Batch]], stream: str) -> Batch:
    return concat(got[stream]) if got.get(stream) else Batch.empty(stream)
