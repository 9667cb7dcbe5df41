"""Probe overhead on a block workload: 4 KiB O_DIRECT writes to a tmpfs-backed loop device.

IOPS with nothing attached, with a biolatency-style tool, and with `tracehound
watch` running the disk rules (rules/disk.rules), and each tool's slowdown.
biolatency-bpfcc needs kprobes (it dies at start where they are off): then
_biolat_tp.py, the same in-kernel histogram on block tracepoints, stands in for it.

A loop device's IOPS swing several-fold between runs on a shared VM, so the
measurement is built to survive it: a fixed workload (a C loop, one 4 KiB pwrite at
a time, at 256 scattered offsets in the first 64 MiB, through O_DIRECT so every write
is a block request) on a loop device whose file lives in a private tmpfs (no disk
under it); many short runs with the three configurations interleaved, their order
rotated every round (A B C, B C A, C A B, ...) so drift hits each alike; a tool is
started (and compiled) before its run and stopped after it. Reported per
configuration: the median IOPS and the spread (min, quartiles, max), the median of the
per-round ratios to the unattached run next to it in time (and the ratio of medians),
the tool's own CPU per I/O, and the in-kernel BPF run time per tracepoint hit and per
I/O (kernel.bpf_stats_enabled, switched on for the run): figures the host's noise
cannot blur.
Run as root: .venv/bin/python bench/bench_overhead.py [seconds per run] [rounds]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")

WORKLOAD_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    int fd = open(argv[1], O_WRONLY | O_DIRECT);
    if (fd < 0) { perror("open"); return 1; }
    double secs = atof(argv[2]);
    void *buf;
    if (posix_memalign(&buf, 4096, 4096)) return 1;
    memset(buf, 0xab, 4096);
    long n = 0; double t0 = now(), el = 0;
    for (;;) {
        for (unsigned long i = 0; i < 256; i++) {
            off_t off = (off_t)((i * 2654435761UL) % (64 * 256)) * 4096;
            if (pwrite(fd, buf, 4096, off) != 4096) { perror("pwrite"); return 1; }
        }
        n += 256;
        el = now() - t0;
        if (el >= secs) break;
    }
    printf("%ld %.6f\n", n, el);
    return 0;
}
"""


def workload_py(dev: str, secs: float) -> tuple[int, float]:
    """The same writes from Python, where no C compiler exists (more CPU per write)."""
    import mmap

    buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
    buf.write(b"\xab" * 4096)
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
    return n, time.monotonic() - t0


def workload(exe: Path | None, dev: str, secs: float) -> tuple[int, float, float]:
    """(writes, seconds, the writer's CPU seconds) of one run."""
    if exe is None:
        c0 = time.process_time()
        n, el = workload_py(dev, secs)
        return n, el, time.process_time() - c0
    p = subprocess.Popen([str(exe), dev, str(secs)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"workload failed ({p.returncode})")
    n, el = out.split()
    return int(n), float(el), ru.ru_utime + ru.ru_stime


def _build_workload(d: Path) -> Path | None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    (d / "wl.c").write_text(WORKLOAD_C)
    subprocess.run([cc, "-O2", "-o", str(d / "wl"), str(d / "wl.c")], check=True)
    return d / "wl"


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


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


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


@contextlib.contextmanager
def _loop_on_tmpfs(d: Path) -> Iterator[str]:
    """A 128 MiB loop device over a file in a private tmpfs (else /dev/shm)."""
    mnt = d / "tmpfs"
    mnt.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=160m", "th-overhead", str(mnt)], check=False
        ).returncode
        == 0
    )
    img = (mnt if mounted else Path("/dev/shm")) / f"th-overhead-{os.getpid()}.img"
    dev = ""
    try:
        with img.open("wb") as f:
            f.truncate(128 * 1024 * 1024)
        dev = subprocess.run(
            ["losetup", "--find", "--show", str(img)], check=True, capture_output=True, text=True
        ).stdout.strip()
        yield dev
    finally:
        if dev:
            subprocess.run(["losetup", "-d", dev], check=False)
        img.unlink(missing_ok=True)
        if mounted:
            subprocess.run(["umount", str(mnt)], check=False)


@dataclass
class Config:
    name: str
    cmd: list[str] | None
    ready: str
    iops: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # to the round's unattached run
    ios: int = 0
    bpf_cnt: int = 0
    bpf_ns: int = 0
    cpu: float = 0.0  # the tool's own CPU seconds while the workload ran
    secs: float = 0.0  # the workload's running time, summed
    writer_cpu: float = 0.0  # the workload's own CPU seconds (its syscalls included)


def _run(c: Config, exe: Path | None, dev: str, secs: float) -> float:
    p = _start(c.cmd, c.ready) if c.cmd else None
    try:
        if p is not None:
            time.sleep(0.5)  # past the tool's start-up work
            b0, cpu0 = _bpf_cost(p.pid), _cpu_seconds(p.pid)
        n, el, wcpu = workload(exe, dev, secs)
        if p is not None:
            b1, cpu1 = _bpf_cost(p.pid), _cpu_seconds(p.pid)
            c.bpf_cnt += b1[0] - b0[0]
            c.bpf_ns += b1[1] - b0[1]
            c.cpu += cpu1 - cpu0
    finally:
        if p is not None:
            _stop(p)
    c.ios += n
    c.secs += el
    c.writer_cpu += wcpu
    c.iops.append(n / el)
    return n / el


def _spread(xs: list[float]) -> str:
    if len(xs) < 2:
        return ""
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return f"{min(xs):7.0f} {q1:7.0f} {q3:7.0f} {max(xs):7.0f}"


def main() -> None:
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    d = Path(tempfile.mkdtemp(prefix="th-overhead-"))
    rules = ROOT / "rules" / "disk.rules"
    cfg = d / "th.toml"
    cfg.write_text(f'[engine]\nstate_dir = "{d / "state"}"\n[metrics]\nlisten = ""\n')
    watch = [sys.executable, "-m", "engine", "watch", "--rules", str(rules), "--config", str(cfg)]
    stats = Path("/proc/sys/kernel/bpf_stats_enabled")
    stats_was = stats.read_text().strip() if stats.exists() else None
    try:
        exe = _build_workload(d)
        with _loop_on_tmpfs(d) as dev:
            if stats_was is not None:
                stats.write_text("1")  # run_time_ns per program
            workload(exe, dev, 1.0)  # warm up: the tmpfs pages exist from here on
            bio_name, bio_cmd, bio_ready = _biolatency()
            base = Config("nothing attached", None, "")
            configs = [base, Config(bio_name, bio_cmd, bio_ready),
                       Config("tracehound watch", watch, "watching")]  # fmt: skip
            for r in range(rounds):
                order = configs[r % 3 :] + configs[: r % 3]
                got = {c.name: _run(c, exe, dev, secs) for c in order}
                for c in configs[1:]:
                    c.ratios.append(got[c.name] / got[base.name])
                print(f"round {r + 1:2}: " + "  ".join(f"{c.name} {got[c.name]:.0f}"
                      for c in configs), flush=True)  # fmt: skip
    finally:
        if stats_was is not None:
            stats.write_text(stats_was)
        shutil.rmtree(d, ignore_errors=True)
    how = "C" if exe is not None else "Python"
    print(f"\n4 KiB O_DIRECT writes ({how}, one at a time) on a tmpfs-backed loop device, "
          f"{rounds} rounds x {secs:g}s, order rotated per round")  # fmt: skip
    print(f"{'IOPS':26} {'median':>7} {'min':>7} {'q1':>7} {'q3':>7} {'max':>7}  "
          "ratio: median per round (q1-q3); of medians")  # fmt: skip
    med0 = statistics.median(base.iops)
    slow: dict[str, float] = {}
    for c in configs:
        med = statistics.median(c.iops)
        line = f"{c.name:<26} {med:7.0f} {_spread(c.iops)}"
        if len(c.ratios) > 1:
            rr = statistics.median(c.ratios)
            q1, _, q3 = statistics.quantiles(c.ratios, n=4, method="inclusive")
            slow[c.name] = 100.0 * (1.0 - rr)
            line += f"  {rr:.3f} ({q1:.2f}-{q3:.2f}); {med / med0:.3f}"
        print(line)
    print("cost per I/O (robust to the host's noise): the writer's own CPU; the tool's CPU "
          "(and % of a CPU); BPF run time")  # fmt: skip
    for c in configs:
        ios = max(c.ios, 1)
        line = f"{c.name:<26} writer {c.writer_cpu * 1e6 / ios:5.2f} us"
        if c.cmd:
            line += f"  tool {c.cpu * 1e6 / ios:5.2f} us ({100 * c.cpu / max(c.secs, 1e-9):4.1f}%)"
            if c.bpf_cnt:
                line += (f"  in-kernel {c.bpf_ns / c.bpf_cnt:.0f} ns/hit "
                         f"{c.bpf_ns / ios:.0f} ns/IO")  # fmt: skip
        print(line)
    base_cpu = base.writer_cpu / max(base.ios, 1)
    for c in configs[1:]:
        added = (c.cpu + c.bpf_ns / 1e9) / max(c.ios, 1)
        print(f"{c.name:<26} CPU added per I/O {added * 1e6:5.2f} us = "
              f"{100 * added / max(base_cpu, 1e-12):4.1f}% of the unattached writer's "
              "(the slowdown bound if CPU-bound)")  # fmt: skip
    bio, th = slow[configs[1].name], slow[configs[2].name]
    q1 = q3 = med0
    if len(base.iops) > 1:
        q1, _, q3 = statistics.quantiles(base.iops, n=4, method="inclusive")
    print(f"slowdown (median of per-round ratios): {configs[1].name} {bio:.1f}%, "
          f"tracehound {th:.1f}%: tracehound - biolatency = {th - bio:+.1f} points "
          "(aim <= +2)")  # fmt: skip
    print(f"noise: unattached runs alone span q1-q3 {q1:.0f}-{q3:.0f} IOPS "
          f"({100 * (q3 - q1) / med0:.0f}% of their median); IOPS differences smaller than "
          "that are not resolved here")  # fmt: skip


if __name__ == "__main__":
    main()
