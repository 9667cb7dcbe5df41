"""`tracehound watch` and `record` end to end, as a user runs them (real probes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import needs_bpf

TRACEHOUND = [sys.executable, "-m", "engine"]

RULE = """
rule loop_writes
  "writes on the test loop device"
  when count(disk.io where dev == "{dev}" and op == "write") > 0 over 1s
  severity critical
  cooldown 1m
"""


def _config(tmp: Path) -> Path:
    cfg = tmp / "th.toml"
    cfg.write_text(f'[engine]\nstate_dir = "{tmp / "state"}"\n[metrics]\nlisten = ""\n')
    return cfg


def _writer(path: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Writes with fsync for `seconds`, after a short pause for probes to attach."""
    code = (
        "import os, time\n"
        "time.sleep(1.5)\n"
        f"f = open({str(path)!r}, 'wb')\n"
        f"t = time.time() + {seconds}\n"
        "while time.time() < t:\n"
        "    f.write(os.urandom(65536)); f.flush(); os.fsync(f.fileno()); time.sleep(0.02)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code])


@needs_bpf
def test_watch_reports_finding_and_fails_on_critical(
    ext4_loop: tuple[str, Path], tmp_path: Path
) -> None:
    dev, mnt = ext4_loop
    rules = tmp_path / "t.rules"
    rules.write_text(RULE.format(dev=dev))
    w = _writer(mnt / "f", 2.0)
    try:
        r = subprocess.run(
            [*TRACEHOUND, "watch", "--rules", str(rules), "--config", str(_config(tmp_path)),
             "--json", "--duration", "5s", "--fail-on", "critical"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        w.wait()
    assert r.returncode == 1, r.stderr
    findings = [json.loads(line) for line in r.stdout.splitlines()]
    assert findings, r.stderr
    assert all(f["rule"] == "loop_writes" for f in findings)
    assert findings[0]["values"][f'count(disk.io where dev == "{dev}" and op == "write")'] > 0
    assert findings[0]["lost"] == 0


@needs_bpf
def test_watch_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    rules = tmp_path / "t.rules"
    rules.write_text(RULE.format(dev="nonexistent0"))
    p = subprocess.Popen(
        [*TRACEHOUND, "watch", "--rules", str(rules), "--config", str(_config(tmp_path))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert p.stderr is not None
        line = p.stderr.readline()
        while line and "watching" not in line:
            line = p.stderr.readline()
        assert "watching 1 rule(s) with disk.io" in line
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=20)
        rest = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
    assert rc == 0, rest
    assert "SIGTERM: stopping" in rest
    assert "0 finding(s)" in rest
    assert "Traceback" not in rest


@needs_bpf
def test_record_writes_a_replayable_trace(ext4_loop: tuple[str, Path], tmp_path: Path) -> None:
    dev, mnt = ext4_loop
    out = tmp_path / "rec.jsonl.gz"
    w = _writer(mnt / "g", 1.0)
    try:
        r = subprocess.run(
            [*TRACEHOUND, "record", "-o", str(out), "--streams", "disk.io", "fs.commit",
             "--duration", "4s"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        w.wait()
    assert r.returncode == 0, r.stderr
    import gzip

    with gzip.open(out, "rt") as f:
        rows = [json.loads(line) for line in f]
    streams = {row["stream"] for row in rows}
    assert streams <= {"disk.io", "fs.commit", "lost"}
    mine = [row for row in rows if row["stream"] == "disk.io" and row["dev"] == dev]
    assert any(row["op"] == "write" and row["bytes"] > 0 for row in mine)
    commits = [row for row in rows if row["stream"] == "fs.commit"]
    assert commits and all(row["end"] >= row["ts"] for row in commits)


@needs_bpf
def test_record_unavailable_stream_exits_3(tmp_path: Path) -> None:
    if Path("/proc/spl/kstat/zfs").exists():
        pytest.skip("this host has ZFS: zfs.txg.sync is available")
    r = subprocess.run(
        [*TRACEHOUND, "record", "-o", str(tmp_path / "x.jsonl"), "--streams", "zfs.txg.sync",
         "--duration", "1s"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 3
    assert "zfs.txg.sync" in r.stderr and "Traceback" not in r.stderr


def test_watch_without_privilege_exits_3(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to an unprivileged user")
    # pytest's tmp_path sits under a root-only directory: use one nobody can read
    d = Path(tempfile.mkdtemp(prefix="tracehound-test-"))
    try:
        d.chmod(0o755)
        rules = d / "t.rules"
        rules.write_text(RULE.format(dev="loop0"))
        cfg = d / "th.toml"
        cfg.write_text('[metrics]\nlisten = ""\n')
        r = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             *TRACEHOUND, "watch", "--rules", str(rules), "--config", str(cfg),
             "--duration", "1s"],
            capture_output=True, text=True, timeout=60, cwd="/",
        )  # fmt: skip
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert r.returncode == 3, r.stderr
    assert "not privileged" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["watch", "--duration", "5x"], "--duration"),
        (["watch", "--record", "/nonexistent-dir/t.jsonl"], "cannot write trace"),
        (["record", "-o", "/tmp/never-written.jsonl", "--streams", "nope"], "unknown stream"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    r = subprocess.run([*TRACEHOUND, *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


@needs_bpf
def test_watch_exports_bus_drops_and_late_events(tmp_path: Path) -> None:
    """/metrics carries the pipeline's own losses (bus drops, late events) beside
    the probes' (nothing lost silently)."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "th.toml"
    cfg.write_text(
        f'[engine]\nstate_dir = "{tmp_path / "state"}"\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
    )
    rules = tmp_path / "t.rules"
    rules.write_text("rule r\n  when count(disk.io) > 1000000000 over 1s\n")
    p = subprocess.Popen(
        [*TRACEHOUND, "watch", "--rules", str(rules), "--config", str(cfg), "--duration", "20s"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stderr is not None
        for line in p.stderr:  # wait until every probe is attached
            if "watching" in line:
                break
        text = ""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
                break
            except OSError:
                time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    assert 'tracehound_bus_dropped_total{subscriber="evaluator"} 0' in text
    assert "\ntracehound_late_events_total " in text
