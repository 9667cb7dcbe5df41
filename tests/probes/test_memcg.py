"""The memcg cgroupfs poller, against fixture trees (v1, v2) and a real v1 cgroup."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.batch import Batch
from engine.errors import ConfigError
from probes import memcg

UNLIMITED_V1 = 0x7FFFFFFFFFFFF000


def _v1(root: Path, rel: str, usage: int, limit: int) -> None:
    d = root / rel.lstrip("/") if rel != "/" else root
    d.mkdir(parents=True, exist_ok=True)
    (d / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (d / "memory.limit_in_bytes").write_text(f"{limit}\n")


def _v2(root: Path, rel: str, usage: int, limit: int | None) -> None:
    d = root / rel.lstrip("/")
    d.mkdir(parents=True, exist_ok=True)
    (d / "memory.current").write_text(f"{usage}\n")
    (d / "memory.max").write_text("max\n" if limit is None else f"{limit}\n")


def _rows(b: Batch) -> dict[str, dict[str, object]]:
    return {str(r["cgroup"]): r for r in (b.row(i) for i in range(len(b)))}


def test_v1_tree(tmp_path: Path) -> None:
    _v1(tmp_path, "/", 1000, UNLIMITED_V1)
    _v1(tmp_path, "/system.slice", 600, UNLIMITED_V1)
    _v1(tmp_path, "/system.slice/myapp.service", 500, 1 << 20)
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\n")  # not a cgroup
    src = memcg.make_source(frozenset({"memcg"}), {"root": str(tmp_path)})
    assert src.version == 1
    before = time.monotonic_ns()
    b = src.sample_batch()
    after = time.monotonic_ns()
    rows = _rows(b)
    assert set(rows) == {"/", "/system.slice", "/system.slice/myapp.service"}
    assert rows["/system.slice/myapp.service"]["usage"] == 500
    assert rows["/system.slice/myapp.service"]["limit"] == 1 << 20
    assert "limit" not in rows["/"]  # the "unlimited" value means no limit
    assert "limit" not in rows["/system.slice"]
    assert b.ts.dtype == np.int64 and bool(np.all((b.ts >= before) & (b.ts <= after)))
    assert b.stream == "memcg" and b.end is None
    assert src.stats()["events"] == 3


def test_v2_tree(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    _v2(tmp_path, "/user.slice", 10, None)
    _v2(tmp_path, "/user.slice/user-1000.slice", 7, 4096)
    src = memcg.MemcgSource(root=tmp_path)
    assert src.version == 2
    rows = _rows(src.sample_batch())
    # the v2 root has no memory.current: it is skipped, not counted as vanished
    assert set(rows) == {"/user.slice", "/user.slice/user-1000.slice"}
    assert rows["/user.slice/user-1000.slice"]["limit"] == 4096
    assert "limit" not in rows["/user.slice"]
    assert src.stats()["vanished"] == 0


def test_only_given_cgroups_and_vanished(tmp_path: Path) -> None:
    _v1(tmp_path, "/", 1, UNLIMITED_V1)
    _v1(tmp_path, "/a", 2, 100)
    _v1(tmp_path, "/b", 3, 100)
    src = memcg.make_source(
        frozenset({"memcg"}), {"root": str(tmp_path), "cgroups": ["/b", "/gone", "/"]}
    )
    b = src.sample_batch()
    assert list(b.columns["cgroup"]) == ["/b", "/"]
    assert src.stats()["vanished"] == 1


def test_cgroup_vanishing_mid_walk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _v1(tmp_path, "/", 1, UNLIMITED_V1)
    _v1(tmp_path, "/stays", 2, 100)
    _v1(tmp_path, "/goes", 3, 100)
    real_read = memcg._read_int

    def read(path: str) -> int | None:
        if "/goes/" in path:  # removed between the walk and the read
            return None
        return real_read(path)

    monkeypatch.setattr(memcg, "_read_int", read)
    names, _, _, vanished = memcg.sample(tmp_path, 1)
    assert sorted(names) == ["/", "/stays"] and vanished == 1


def test_max_cgroups_bounds_one_pass(tmp_path: Path) -> None:
    _v1(tmp_path, "/", 1, UNLIMITED_V1)
    for i in range(20):
        _v1(tmp_path, f"/c{i}", i, 100)
    names, *_ = memcg.sample(tmp_path, 1, max_cgroups=5)
    assert len(names) == 5 and names[0] == "/"


@settings(max_examples=40, deadline=None)
@given(
    tree=st.dictionaries(
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map(
            lambda p: "/" + "/".join(p)
        ),
        st.tuples(st.integers(0, 2**52), st.one_of(st.none(), st.integers(0, 2**52))),
        max_size=8,
    )
)
def test_v2_property_round_trip(tree: dict[str, tuple[int, int | None]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "cgroup.controllers").write_text("memory\n")
        want: dict[str, tuple[int, int | None]] = {}
        for rel in tree:  # parents are cgroups too, with their own files
            parts = rel.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                want.setdefault("/" + "/".join(parts[:i]), (0, None))
        want.update(tree)
        for rel, (usage, limit) in want.items():
            _v2(root, rel, usage, limit)
        names, usages, limits, vanished = memcg.sample(root, 2)
        got = {
            n: (int(u), None if math.isnan(lim) else int(lim))
            for n, u, lim in zip(names, usages, limits, strict=True)
        }
        assert got == want and vanished == 0


async def test_progress_is_now_between_passes(tmp_path: Path) -> None:
    _v1(tmp_path, "/", 5, UNLIMITED_V1)
    src = memcg.make_source(frozenset({"memcg"}), {"root": str(tmp_path), "interval": "1h"})
    emitted = anyio.Event()

    async def emit(b: Batch) -> None:
        emitted.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(src.run, emit)
            await emitted.wait()
            await anyio.sleep(0.01)  # now idle until the next pass, an hour away
            before = time.monotonic_ns()
            p = src.progress()
            assert p is not None and p >= before
            tg.cancel_scope.cancel()


def test_bad_interval() -> None:
    with pytest.raises(ConfigError):
        memcg.make_source(frozenset({"memcg"}), {"root": "/", "interval": "5MB"})
    with pytest.raises(ConfigError):
        memcg.make_source(frozenset({"memcg"}), {"root": "/", "interval": 0})
    for odd in (float("nan"), float("inf"), True, [1], "1e400s"):
        with pytest.raises(ConfigError, match="memcg interval"):
            memcg.make_source(frozenset({"memcg"}), {"root": "/", "interval": odd})


async def test_run_emits_each_interval(tmp_path: Path) -> None:
    _v1(tmp_path, "/", 5, UNLIMITED_V1)
    src = memcg.make_source(frozenset({"memcg"}), {"root": str(tmp_path), "interval": "10ms"})
    got: list[Batch] = []
    during: list[int | None] = []
    assert src.progress() is None  # not running: unknown

    async def emit(b: Batch) -> None:
        got.append(b)
        during.append(src.progress())  # a pass is in flight until emit returns
        if len(got) == 3:
            tg.cancel_scope.cancel()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(src.run, emit)
    assert len(got) == 3
    ts = [int(b.ts[0]) for b in got]
    assert ts == sorted(ts) and len(set(ts)) == 3
    # while a pass is out its rows' ts is not yet passed; never None while running
    assert all(p is not None and p < t for p, t in zip(during, ts, strict=True))


V1_ROOT = Path("/sys/fs/cgroup/memory")


@pytest.mark.live
def test_real_v1_cgroup() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a memory cgroup")
    if not (V1_ROOT / "memory.usage_in_bytes").exists():
        pytest.skip(f"no cgroup v1 memory controller at {V1_ROOT}")
    name = f"tracehound-test-{uuid.uuid4().hex[:8]}"
    cg = V1_ROOT / name
    try:
        cg.mkdir()
    except OSError as e:
        pytest.skip(f"cannot create {cg}: {e}")
    try:
        (cg / "memory.limit_in_bytes").write_text(str(64 << 20))
        src = memcg.make_source(frozenset({"memcg"}), {})
        assert src.root == V1_ROOT and src.version == 1
        rows = _rows(src.sample_batch())
        assert f"/{name}" in rows
        assert rows[f"/{name}"]["limit"] == 64 << 20
        assert rows[f"/{name}"]["usage"] == int((cg / "memory.usage_in_bytes").read_text())
        only = memcg.make_source(frozenset({"memcg"}), {"cgroups": [f"/{name}"]})
        assert list(only.sample_batch().columns["cgroup"]) == [f"/{name}"]
        # a process charging 32 MiB inside the cgroup shows up in the next sample
        code = (
            "import sys; open(sys.argv[1], 'w').write('0'); x = bytearray(32 << 20); "
            "x[::4096] = b'1' * len(x[::4096]); print('ready', flush=True); sys.stdin.read()"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(cg / "cgroup.procs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            usage = _rows(only.sample_batch())[f"/{name}"]["usage"]
            assert isinstance(usage, int) and usage >= 32 << 20
        finally:
            proc.kill()
            proc.wait()
    finally:
        for _ in range(50):  # the killed process leaves the cgroup asynchronously
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.05)
