"""A synthetic tracepoint driver for the benches: a C loop of getppid() at a set rate."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

C_SRC = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    double secs = atof(argv[1]); double rate = atof(argv[2]);  /* 0: flat out */
    getchar();
    double t0 = now(), el = 0; long n = 0;
    for (;;) {
        for (int i = 0; i < 64; i++) syscall(SYS_getppid);
        n += 64;
        el = now() - t0;
        if (el >= secs) break;
        while (rate > 0 && n > rate * el) el = now() - t0;
    }
    printf("%ld %.6f\n", n, el);
    return 0;
}
"""

PY_SRC = (
    "import os, sys, time\n"
    "secs, rate = float(sys.argv[1]), float(sys.argv[2])\n"
    "sys.stdin.readline()\n"
    "t0 = time.monotonic(); n = 0\n"
    "while True:\n"
    "    for _ in range(64): os.getppid()\n"
    "    n += 64; el = time.monotonic() - t0\n"
    "    if el >= secs: break\n"
    "    while rate > 0 and n > rate * el: el = time.monotonic() - t0\n"
    "print(n, el)\n"
)


def driver_cmd() -> list[str]:
    """The C driver when a compiler exists (fast enough to overload), else Python."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc:
        d = Path(tempfile.mkdtemp(prefix="th-bench-"))
        (d / "drv.c").write_text(C_SRC)
        subprocess.run([cc, "-O2", "-o", str(d / "drv"), str(d / "drv.c")], check=True)
        return [str(d / "drv")]
    return [sys.executable, "-c", PY_SRC]


BPF_C = r"""
BPF_PERCPU_ARRAY(th_hits, u64, 1);
struct hit { u64 ts; u64 id; u64 a; u64 b; };
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_TGID)
        return 0;
    int zero = 0;
    u64 *n = th_hits.lookup(&zero);
    if (n)
        (*n)++;
    struct hit h = {};
    h.ts = bpf_ktime_get_ns();
    h.id = args->id;
    th_submit(args, &h, sizeof(h));
    return 0;
}
"""
