"""Live and replay give the same findings for the same events (DESIGN.md).

`watch --record T` writes every batch the live evaluator consumed; replaying T with
the same rules must give the very same findings: same rules, keys, windows, values.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import needs_bpf

TRACEHOUND = [sys.executable, "-m", "engine"]

RULES = """
rule loop_writes
  "writes on the test loop device, per second"
  when count(disk.io where dev == "{dev}" and op == "write") > 0 over 1s
  severity warning

rule loop_p99
  when p99(disk.io.latency where dev == "{dev}") > 0ns
    and count(disk.io where dev == "{dev}") >= 2
  over 1s
  severity info

rule loop_io_near_commit
  when count(disk.io where dev == "{dev}") > 0
  within 200ms of fs.commit where dev == "{dev}"
  severity info
"""


def _config(tmp: Path) -> Path:
    cfg = tmp / "th.toml"
    cfg.write_text(f'[engine]\nstate_dir = "{tmp / "state"}"\n[metrics]\nlisten = ""\n')
    return cfg


def _writer(path: Path, seconds: float) -> subprocess.Popen[bytes]:
    """write + fsync every 20 ms for `seconds` (started once watch is attached)."""
    code = (
        "import os, time\n"
        f"f = open({str(path)!r}, 'wb')\n"
        f"t = time.time() + {seconds}\n"
        "while time.time() < t:\n"
        "    f.write(os.urandom(65536)); f.flush(); os.fsync(f.fileno()); time.sleep(0.02)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


def _canon(f: dict[str, Any]) -> tuple[Any, ...]:
    return (
        f["rule"],
        json.dumps(f["key"], sort_keys=True),
        tuple(f["window"]),
        json.dumps(f["values"], sort_keys=True),
        f["ts"],
        json.dumps(f.get("trigger"), sort_keys=True),
    )


@needs_bpf
@pytest.mark.parametrize("write_s", [3.0, 9.0], ids=["idle-at-stop", "busy-at-stop"])
def test_watch_record_then_replay_gives_the_same_findings(
    ext4_loop: tuple[str, Path], tmp_path: Path, write_s: float
) -> None:
    dev, mnt = ext4_loop
    rules = tmp_path / "loop.rules"
    rules.write_text(RULES.format(dev=dev))
    trace = tmp_path / "t.jsonl.gz"
    p = subprocess.Popen(
        [*TRACEHOUND, "watch", "--rules", str(rules), "--config", str(_config(tmp_path)),
         "--json", "--duration", "6s", "--record", str(trace)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    w = None
    try:
        assert p.stderr is not None
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            seen.append(line)
            if "watching" in line:
                break
        assert any("watching 3 rule(s)" in s for s in seen), "".join(seen)
        w = _writer(mnt / "f", write_s)
        out, rest = p.communicate(timeout=60)
    finally:
        if w is not None:
            w.wait()
        if p.poll() is None:
            p.kill()
    err = "".join(seen) + rest
    assert p.returncode == 0, err
    assert "0 event(s) lost" in err, err
    live = [json.loads(line) for line in out.splitlines()]
    assert {f["rule"] for f in live} == {"loop_writes", "loop_p99", "loop_io_near_commit"}, err

    r = subprocess.run(
        [*TRACEHOUND, "replay", str(trace), "--rules", str(rules), "--json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    replayed = [json.loads(line) for line in r.stdout.splitlines()]
    assert [_canon(f) for f in replayed] == [_canon(f) for f in live]
    # nothing else differs either (evidence, summaries, lost counts)
    assert replayed == live
