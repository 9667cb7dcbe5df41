"""Black-box helpers: hand-made traces and rule files through `engine.cli.main`.

Every expectation in this suite is worked out by hand from /work/shared/spec
(rules.md, events.md, cli.md); nothing here imports the engine beyond `cli.main`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine import cli

NS = 1
US = 1_000
MS = 1_000_000
S = 1_000_000_000

REPO = Path(__file__).resolve().parents[2]
TRACEHOUND = REPO / ".venv" / "bin" / "tracehound"

INTERVAL = {"zfs.txg.sync", "fs.commit", "mm.reclaim"}

DEFAULTS: dict[str, dict[str, Any]] = {
    "disk.io": {
        "dev": "sda",
        "op": "write",
        "bytes": 4096,
        "latency": 100 * US,
        "pid": 1,
        "comm": "x",
    },
    "zfs.txg.sync": {"pool": "tank", "txg": 1},
    "fs.commit": {"dev": "sda", "tid": 1},
    "memcg": {"cgroup": "/a", "usage": 0},
    "oom.kill": {"pid": 1, "comm": "x", "cgroup": "/a", "constraint": "memcg"},
    "sched.runq": {"pid": 1, "comm": "x", "cpu": 0, "latency": 1000},
    "tcp.retransmit": {
        "saddr": "10.0.0.1",
        "daddr": "10.0.0.2",
        "sport": 1,
        "dport": 2,
        "state": "ESTABLISHED",
    },
    "net.drop": {"reason": "NO_SOCKET", "protocol": 6},
    "mm.reclaim": {"pid": 1, "comm": "x"},
    "proc.exec": {"pid": 1, "ppid": 0, "comm": "x", "filename": "/bin/x"},
    "lost": {"probe": "block_io", "count": 1},
}


def ev(stream: str, ts: int, end: int | None = None, **fields: Any) -> dict[str, Any]:
    """One trace event with every required field filled in (overridable)."""
    e: dict[str, Any] = {"ts": ts, "stream": stream}
    if stream in INTERVAL:
        e["end"] = ts if end is None else end
    elif end is not None:
        e["end"] = end
    e.update(DEFAULTS[stream])
    e.update(fields)
    return e


def disk(ts: int, latency: int = 100 * US, **kw: Any) -> dict[str, Any]:
    return ev("disk.io", ts, latency=latency, **kw)


def write_trace(path: Path, events: list[Any], gz: bool = False) -> Path:
    lines = [e if isinstance(e, str) else json.dumps(e) for e in events]
    data = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(data)
    else:
        path.write_text(data)
    return path


@dataclass
class Result:
    rc: int
    out: str
    err: str
    findings: list[dict[str, Any]] = field(default_factory=list)

    def by_rule(self, name: str) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["rule"] == name]

    @property
    def one(self) -> dict[str, Any]:
        assert len(self.findings) == 1, self.findings
        return self.findings[0]


def _parse(out: str) -> list[dict[str, Any]]:
    found = []
    for line in out.splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)  # --json: stdout carries findings only
        assert isinstance(obj, dict)
        found.append(obj)
    return found


def run_cli(argv: list[str]) -> Result:
    """`cli.main(argv)` in process, stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as e:  # argparse errors
            rc = int(e.code) if isinstance(e.code, int) else 2
    r = Result(rc, out.getvalue(), err.getvalue())
    if argv and argv[0] == "check":
        # cli.md pins the `FILE:LINE:COL: error:` form, not the stream it goes to
        r.err = r.err + r.out
    if "--json" in argv and rc in (0, 1):
        r.findings = _parse(r.out)
    return r


def replay(
    tmp_path: Path,
    rules: str,
    events: list[Any],
    *extra: str,
) -> Result:
    """Write RULES and EVENTS, run `replay TRACE --rules RULES --json EXTRA…`."""
    rp = tmp_path / "r.rules"
    rp.write_text(rules)
    tp = write_trace(tmp_path / "t.jsonl", events)
    return run_cli(["replay", str(tp), "--rules", str(rp), "--json", *extra])


def run_proc(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRACEHOUND), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def run_module(args: list[str]) -> subprocess.CompletedProcess[str]:
    py = REPO / ".venv" / "bin" / "python"
    return subprocess.run(
        [str(py if py.exists() else sys.executable), "-m", "engine", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def approx(v: float, rel: float = 1e-9) -> Any:
    return pytest.approx(v, rel=rel, abs=1e-6)


def pct(v: float) -> Any:
    """A percentile: the spec allows a sketch with relative error at most 1%."""
    return pytest.approx(v, rel=0.01)
