"""Probe overhead on a block workload: 4 KiB O_DIRECT writes to a loop device.

IOPS with nothing attached, with bcc's biolatency, and with `tracehound watch`
running disk rules (rules/disk.rules when present, else a stand-in rule on disk.io);
prints both ratios. biolatency-bpfcc needs kprobes (it dies at start where they are
off): then _biolat_tp.py, the same measurement on tracepoints, stands in for it.
Configurations alternate for ROUNDS rounds and medians are reported, since a loop
device's IOPS drift between runs.
Run as root: .venv/bin/python bench/bench_overhead.py [seconds] [rounds]
"""

from __future__ import annotations

import mmap
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = """
rule bench_disk_p99
  when p99(disk.io.latency) > 50ms over 1s
  severity warning
"""


def workload(dev: str, secs: float) -> float:
    """IOPS of 4 KiB O_DIRECT writes at scattered offsets in the first 64 MiB."""
    buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(4096))
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    offsets = [((i * 2654435761) % (64 * 256)) * 4096 for i in range(256)]
    n = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < secs:
            for off in offsets:
                os.pwritev(fd, [buf], off)
            n += len(offsets)
    finally:
        os.close(fd)
    return n / (time.monotonic() - t0)


def _start(cmd: list[str], ready: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=str(ROOT)
    )
    assert p.stderr is not None
    for line in p.stderr:
        if ready in line:
            break
    else:
        raise SystemExit(f"{cmd[0]} exited before it was ready")
    return p


def _bpf_cost(pid: int) -> tuple[int, int]:
    """(run_cnt, run_time_ns) summed over the BPF programs `pid` holds (bpf_stats on)."""
    cnt = ns = 0
    fdinfo = Path(f"/proc/{pid}/fdinfo")
    for f in fdinfo.iterdir():
        try:
            info = dict(line.split(":", 1) for line in f.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if "prog_type" in info and "run_cnt" in info:
            cnt += int(info["run_cnt"])
            ns += int(info["run_time_ns"])
    return cnt, ns


def _stop(p: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def _biolatency() -> tuple[str, list[str], str]:
    """bcc's biolatency if it can start here, else the tracepoint stand-in."""
    bio = shutil.which("biolatency-bpfcc") or "/usr/sbin/biolatency-bpfcc"
    if Path(bio).exists():
        p = subprocess.Popen(
            [bio, "-T", "1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            p.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # still running: it attached
            _stop(p)
            return "biolatency-bpfcc", [bio], "Tracing"
    return (
        "biolatency (tracepoints)",
        ["/usr/bin/python3", str(Path(__file__).parent / "_biolat_tp.py")],
        "ready",
    )


def main() -> None:
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    d = Path(tempfile.mkdtemp(prefix="th-overhead-"))
    # backed by memory where possible: a disk-backed loop file swings 10x between runs
    shm = Path("/dev/shm")
    img = (shm if shm.is_dir() else d) / f"th-overhead-{os.getpid()}.img"
    with img.open("wb") as f:
        f.truncate(128 * 1024 * 1024)
    dev = subprocess.run(
        ["losetup", "--find", "--show", str(img)], check=True, capture_output=True, text=True
    ).stdout.strip()
    rules = ROOT / "rules" / "disk.rules"
    if not rules.exists():
        rules = d / "disk.rules"
        rules.write_text(STAND_IN)
    cfg = d / "th.toml"
    cfg.write_text(f'[engine]\nstate_dir = "{d / "state"}"\n[metrics]\nlisten = ""\n')
    watch = [sys.executable, "-m", "engine", "watch", "--rules", str(rules), "--config", str(cfg)]
    stats = Path("/proc/sys/kernel/bpf_stats_enabled")
    stats_was = stats.read_text().strip() if stats.exists() else None
    if stats_was is not None:
        stats.write_text("1")  # run_time_ns per program: a figure the host's noise cannot blur
    try:
        workload(dev, 1.0)  # warm up
        bio_name, bio_cmd, bio_ready = _biolatency()
        configs: list[tuple[str, list[str] | None, str]] = [
            ("nothing attached", None, ""),
            (bio_name, bio_cmd, bio_ready),
            ("tracehound watch", watch, "watching"),
        ]
        results: dict[str, list[float]] = {name: [] for name, _, _ in configs}
        cost: dict[str, list[int]] = {name: [0, 0] for name, _, _ in configs}
        for _ in range(rounds):
            for name, cmd, ready in configs:
                p = _start(cmd, ready) if cmd else None
                try:
                    c0 = _bpf_cost(p.pid) if p else (0, 0)
                    results[name].append(workload(dev, secs))
                    c1 = _bpf_cost(p.pid) if p else (0, 0)
                    cost[name][0] += c1[0] - c0[0]
                    cost[name][1] += c1[1] - c0[1]
                finally:
                    if p is not None:
                        _stop(p)
        base = statistics.median(results["nothing attached"])
        print(f"4 KiB O_DIRECT writes on {dev}, {rounds} x {secs:.0f}s per configuration")
        for name, _, _ in configs:
            med = statistics.median(results[name])
            runs = " ".join(f"{x:.0f}" for x in results[name])
            n, ns = cost[name]
            ios = max(sum(results[name]) * secs, 1.0)
            per = f"  in-kernel {ns / n:.0f} ns/hit {ns / ios:.0f} ns/IO" if n else ""
            print(f"{name:<26} {med:9.0f} IOPS  ratio {med / base:.3f}{per}   runs: {runs}")
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)
        img.unlink(missing_ok=True)
        if stats_was is not None:
            stats.write_text(stats_was)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
