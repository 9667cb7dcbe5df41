"""proc.exec and net.drop from real activity; every probe compiles and attaches here."""

from __future__ import annotations

import importlib
import os
import socket
import subprocess

import anyio
import numpy as np
import pytest

from probes import net_drop, proc_exec

from .conftest import collect, joined, needs_bpf

ALL = ["block_io", "jbd2", "oom", "sched_runq", "tcp", "net_drop", "mm_reclaim", "proc_exec"]


@needs_bpf
@pytest.mark.parametrize("name", ALL)
def test_probe_compiles_and_attaches(name: str) -> None:
    mod = importlib.import_module(f"probes.{name}")
    ok, why = mod.check()
    assert ok, why
    src = mod.make_source(frozenset(), {})
    src.open()
    try:
        assert src.progress() is not None
    finally:
        src.close()


@needs_bpf
async def test_proc_exec_sees_filename_and_parent() -> None:
    src = proc_exec.make_source(frozenset({"proc.exec"}), {})
    pids: list[int] = []

    async def work() -> None:
        p = subprocess.Popen(["/bin/sleep", "0.2"])
        pids.append(p.pid)
        await anyio.to_thread.run_sync(p.wait)

    got = await collect(src, work)
    b = joined(got, "proc.exec")
    rows = [b.row(i) for i in range(len(b)) if b.columns["pid"][i] == pids[0]]
    assert rows, "the exec of /bin/sleep must be seen"
    r = rows[-1]
    assert r["filename"] == "/bin/sleep"
    assert r["comm"] == "sleep"
    assert r["ppid"] in (os.getpid(), 0)  # 0 only when the process was already gone


@needs_bpf
async def test_net_drop_reason_names() -> None:
    src = net_drop.make_source(frozenset({"net.drop"}), {})

    async def work() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(20):  # nobody listens on the discard port: NO_SOCKET drops
                s.sendto(b"x", ("127.0.0.1", 9))

    got = await collect(src, work)
    b = joined(got, "net.drop")
    assert len(b) >= 20
    assert "NO_SOCKET" in set(b.columns["reason"])
    assert np.all(b.columns["protocol"][b.columns["reason"] == "NO_SOCKET"] == 0x0800)


RETRANS = """
import socket, subprocess, time
pairs = []
for fam, host, port in ((socket.AF_INET, "127.0.0.1", 5555),):
    srv = socket.socket(fam)
    srv.bind((host, port))
    srv.listen()
    c = socket.create_connection((host, port))
    pairs.append((srv, c, srv.accept()[0]))
subprocess.run(["ip", "link", "set", "lo", "down"], check=True)  # drop everything from now
for _, c, _ in pairs:
    c.send(b"x" * 1000)
time.sleep(1.0)
"""


@needs_bpf
async def test_tcp_retransmit_in_a_netns() -> None:
    """Loopback taken down under a live connection (in a private netns) forces RTOs.

    (IPv6 gives up before retransmitting there, as its route goes with the device;
    its address formatting is tested on synthetic samples.)
    """
    import shutil
    import sys
    import uuid

    from probes import tcp

    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) not installed")
    ns = f"th-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        src = tcp.make_source(frozenset({"tcp.retransmit"}), {})

        async def work() -> None:
            cmd = ["ip", "netns", "exec", ns, sys.executable, "-c", RETRANS]
            await anyio.to_thread.run_sync(lambda: subprocess.run(cmd, check=True))

        got = await collect(src, work)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    b = joined(got, "tcp.retransmit")
    rows = sorted((b.row(i) for i in range(len(b))), key=lambda r: r["ts"])
    v4 = [r for r in rows if r["dport"] == 5555]
    assert v4, rows
    assert v4[0]["saddr"] == "127.0.0.1" and v4[0]["daddr"] == "127.0.0.1"
    assert "ESTABLISHED" in {r["state"] for r in v4}  # later ones may come after close()
    assert len(v4) >= 2, "RTO backoff retransmits the same segment again"
