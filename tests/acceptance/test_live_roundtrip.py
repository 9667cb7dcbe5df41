"""`record` writes a trace that `replay` reads (events.md, Trace files), live.

Skips with the reason when this host cannot provide disk.io.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .helpers import run_proc

pytestmark = pytest.mark.live


def _disk_io_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    p = run_proc(["probes", "--json"])
    for line in p.stdout.splitlines():
        row = json.loads(line)
        if row["stream"] == "disk.io":
            return None if row["available"] else str(row["reason"])
    return "disk.io not listed"


def test_record_then_replay(tmp_path: Path) -> None:
    why = _disk_io_available()
    if why:
        pytest.skip(why)
    out = tmp_path / "rec.jsonl.gz"

    def io() -> None:
        time.sleep(1.0)
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={tmp_path / 'f'}", "bs=64k", "count=100", "oflag=direct"],
            capture_output=True,
            check=False,
        )

    th = threading.Thread(target=io)
    th.start()
    p = run_proc(["record", "-o", str(out), "--streams", "disk.io", "--duration", "3s"])
    th.join()
    assert p.returncode == 0, p.stderr
    with gzip.open(out, "rt") as f:
        events = [json.loads(line) for line in f if line.strip() and not line.startswith("#")]
    writes = [e for e in events if e["stream"] == "disk.io" and e["op"] == "write"]
    assert writes, "dd with oflag=direct should show up as disk.io writes"
    for e in writes:
        assert isinstance(e["ts"], int) and isinstance(e["latency"], int)
        assert isinstance(e["bytes"], int) and isinstance(e["dev"], str)
    (tmp_path / "r.rules").write_text(
        'rule w\n  when count(disk.io where op == "write") >= 1 over 1s\n'
    )
    p = run_proc(["replay", str(out), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) >= 1
