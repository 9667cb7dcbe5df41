"""oom.kill from a real OOM kill inside a small v1 memory cgroup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio

from probes import oom

from .conftest import collect, joined, needs_bpf

LEAK = "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n"


@needs_bpf
async def test_oom_kill_in_memcg(memcg_v1: tuple[str, Path]) -> None:
    cg, d = memcg_v1
    src = oom.make_source(frozenset({"oom.kill"}), {})
    pids: list[int] = []

    async def work() -> None:
        script = f'echo $$ > {d}/cgroup.procs && exec {sys.executable} -c "{LEAK}"'
        proc = subprocess.Popen(["sh", "-c", script])
        pids.append(proc.pid)
        rc = await anyio.to_thread.run_sync(lambda: proc.wait(timeout=60))
        assert rc == -9, f"the leaking child should be OOM-killed, exit status {rc}"

    got = await collect(src, work, settle=0.5)
    b = joined(got, "oom.kill")
    rows = [b.row(i) for i in range(len(b))]
    mine = [r for r in rows if r["pid"] == pids[0]]
    assert mine, f"no oom.kill for pid {pids[0]}; got {rows}"
    r = mine[0]
    assert r["cgroup"] == cg
    assert r["constraint"] == "memcg"
    assert r["comm"].startswith("python")
    assert 0 < r["rss"] <= 80 * 1024 * 1024
