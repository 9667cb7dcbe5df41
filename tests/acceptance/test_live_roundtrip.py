"""`record` writes a trace that `replay` reads (events.md, Trace files), live.

Skips with the reason when this host cannot provide disk.io.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

from .helpers import TRACEHOUND, run_proc

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
    # dd starts once record says every probe is attached ("recording ..."), not after
    # a guess at how long attaching takes
    p = subprocess.Popen(
        [str(TRACEHOUND), "record", "-o", str(out), "--streams", "disk.io", "--duration", "3s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert p.stderr is not None
        before = []
        for line in p.stderr:
            before.append(line)
            if "recording" in line:
                break
        assert any("recording" in x for x in before), "".join(before)
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={tmp_path / 'f'}", "bs=64k", "count=100", "oflag=direct"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        _, rest = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, "".join(before) + rest
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
    r = run_proc(["replay", str(out), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) >= 1
