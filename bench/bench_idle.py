"""Idle cost of the watchdog on a quiet host: CPU time and wakeups per second.

Two subjects, each a child process started after compiling its probes:
  watch  `python -m engine watch --rules rules/` (the built-in library, whole pipeline);
  drain  the same rules' probes only (probes.live.sources_for_plan), drained into a
         counter: the drain's own cost, without the rule runtime.
After the child's ready line and a warm-up, its CPU time (the scheduler's run time
of every thread, /proc/PID/task/*/schedstat) and voluntary context switches (one per sleep/wakeup,
summed over /proc/PID/task/*/status) are read over a window. Runs interleave
subject x checkout (extra checkouts, e.g. an unpacked `git archive HEAD`, compare
code versions on the same noisy host); each run is printed and the minimum per
row reported (the host is shared: other work only ever adds).
Run as root: .venv/bin/python bench/bench_idle.py [seconds] [runs] [checkout...]
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")

DRAIN_ONLY = """
import signal, sys, anyio
from engine.config import load_config
from engine.rulepaths import load_plan
from probes.live import sources_for_plan
plan = load_plan(["rules"], load_config(sys.argv[1]))
live = sources_for_plan(plan)
events = [0]
async def emit(batch):
    events[0] += len(batch)
async def main():
    async with anyio.create_task_group() as tg:
        for s in live.sources:
            tg.start_soon(s.run, emit)
        print("watching", file=sys.stderr, flush=True)
        with anyio.open_signal_receiver(signal.SIGINT) as sigs:
            async for _ in sigs:
                break
        tg.cancel_scope.cancel()
try:
    anyio.run(main)
finally:
    live.close()
    stats = {s.name: s.stats().get("events", 0) for s in live.sources}
    print("events", sum(stats.values()), stats, file=sys.stderr, flush=True)
"""


def cpu_seconds(pid: int) -> float:
    """CPU time of the whole process (every thread), in seconds: the scheduler's own
    run-time count (/proc/PID/task/*/schedstat, ns), else utime + stime in ticks."""
    ns = 0
    try:
        for t in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread that just ended
                ns += int((t / "schedstat").read_text().split()[0])
        return ns / 1e9
    except (OSError, ValueError, IndexError):  # no schedstats in this kernel
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK


def switches(pid: int) -> int:
    """Voluntary context switches over every thread: each is a sleep, then a wakeup."""
    n = 0
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (t / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    n += int(line.split()[1])
        except OSError:
            continue
    return n


def one_run(subject: str, tree: Path, secs: float, cfg: Path) -> tuple[float, float, str]:
    if subject == "watch":
        cmd = [sys.executable, "-m", "engine", "watch", "--rules", "rules", "--config", str(cfg)]
    else:
        cmd = [sys.executable, "-c", DRAIN_ONLY, str(cfg)]
    p = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=str(tree)
    )
    try:
        assert p.stderr is not None
        for line in p.stderr:
            if "watching" in line:
                break
        else:
            raise SystemExit(f"{subject} in {tree} exited before it was ready")
        time.sleep(5.0)  # warm-up: first batches, rule state, page faults
        c0, w0, t0 = cpu_seconds(p.pid), switches(p.pid), time.monotonic()
        time.sleep(secs)
        c1, w1, t1 = cpu_seconds(p.pid), switches(p.pid), time.monotonic()
        t_start = t0 - 5.0
    finally:
        p.send_signal(signal.SIGINT)
        killer = threading.Timer(30.0, p.kill)  # a child that will not stop
        killer.start()
        rest = p.stderr.read() if p.stderr is not None else ""
        p.wait()
        killer.cancel()
    el = t1 - t0
    # the drain's events over its whole life (warm-up included): how idle the host was
    events = [line.split()[1] for line in rest.splitlines() if line.startswith("events ")]
    rate = f" {int(events[0]) / (time.monotonic() - t_start):6.0f} events/s" if events else ""
    return 100.0 * (c1 - c0) / el, (w1 - w0) / el, rate


def main() -> None:
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    trees = [ROOT, *(Path(t).resolve() for t in sys.argv[3:])]
    rows = [(subject, tree) for subject in ("watch", "drain") for tree in trees]
    got: dict[tuple[str, Path], list[tuple[float, float]]] = {r: [] for r in rows}
    with tempfile.TemporaryDirectory(prefix="th-idle-") as d:
        cfg = Path(d) / "th.toml"
        cfg.write_text(f'[engine]\nstate_dir = "{Path(d) / "state"}"\n[metrics]\nlisten = ""\n')
        for i in range(runs):
            for subject, tree in rows:
                pct, wake, rate = one_run(subject, tree, secs, cfg)
                got[(subject, tree)].append((pct, wake))
                print(f"run {i + 1} {subject:5} {tree}: {pct:5.2f}% CPU {wake:5.0f} wakeups/s"
                      f"{rate}", flush=True)  # fmt: skip
    print(f"idle, built-in rules, {runs} x {secs:.0f}s each, minimum per row:")
    for subject, tree in rows:
        pct = min(x[0] for x in got[(subject, tree)])
        wake = min(x[1] for x in got[(subject, tree)])
        print(f"  {subject:5} {tree}: {pct:5.2f}% of a CPU, {wake:5.0f} wakeups/s")


if __name__ == "__main__":
    main()
