"""Replay with and without --config (cli.md; config.md's engine keys)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .helpers import MS, TRACEHOUND, S, disk, run_cli, write_trace

RULE = "rule r\n  when count(disk.io) >= 1 over 1s\n"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_replay_without_config_touches_nothing(tmp_path: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    (work / "r.rules").write_text(RULE)
    write_trace(work / "t.jsonl", [disk(1 * S)])
    home = tmp_path / "home"
    home.mkdir()
    before = _files(tmp_path)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    p = subprocess.run(
        [str(TRACEHOUND), "replay", "t.jsonl", "--rules", "r.rules", "--json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 1
    assert _files(tmp_path) == before


def _config(tmp_path: Path, body: str) -> Path:
    c = tmp_path / "c.toml"
    c.write_text(body)
    return c


def test_config_tick_sets_steps(tmp_path: Path) -> None:
    state = tmp_path / "state"
    c = _config(tmp_path, f'[engine]\ntick = "50ms"\nstate_dir = "{state}"\n')
    (tmp_path / "r.rules").write_text(RULE)
    tp = write_trace(tmp_path / "t.jsonl", [disk(1010 * MS)])
    r = run_cli(
        ["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--config", str(c), "--json"]
    )
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [1050 * MS]


def test_config_writes_store_and_findings_lists_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    c = _config(tmp_path, f'[engine]\nstate_dir = "{state}"\n')
    (tmp_path / "r.rules").write_text(RULE)
    tp = write_trace(tmp_path / "t.jsonl", [disk(1010 * MS)])
    r = run_cli(
        ["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--config", str(c), "--json"]
    )
    assert r.rc == 0, r.err
    assert any(state.iterdir())
    r = run_cli(["findings", "--config", str(c), "--json", "--rule", "r"])
    assert r.rc == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert len(rows) == 1 and rows[0]["rule"] == "r" and rows[0]["ts"] == 1100 * MS


def test_config_unknown_key_exit_2_names_key(tmp_path: Path) -> None:
    c = _config(tmp_path, '[engine]\ntik = "50ms"\n')
    (tmp_path / "r.rules").write_text(RULE)
    tp = write_trace(tmp_path / "t.jsonl", [disk(1 * S)])
    r = run_cli(
        ["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--config", str(c), "--json"]
    )
    assert r.rc == 2
    assert "tik" in r.err
    assert r.out == ""


def test_config_wrong_type_exit_2_names_key(tmp_path: Path) -> None:
    c = _config(tmp_path, "[engine]\ntick = 5\n")
    (tmp_path / "r.rules").write_text(RULE)
    tp = write_trace(tmp_path / "t.jsonl", [disk(1 * S)])
    r = run_cli(
        ["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--config", str(c), "--json"]
    )
    assert r.rc == 2
    assert "tick" in r.err


def test_rules_option_replaces_configured_paths(tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "x.rules").write_text("rule configured\n  when count(disk.io) >= 1 over 1s\n")
    state = tmp_path / "state"
    c = _config(tmp_path, f'[engine]\nstate_dir = "{state}"\n[rules]\npaths = ["{extra}"]\n')
    (tmp_path / "r.rules").write_text(RULE)
    tp = write_trace(tmp_path / "t.jsonl", [disk(1 * S)])
    r = run_cli(
        ["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--config", str(c), "--json"]
    )
    assert r.rc == 0, r.err
    assert {f["rule"] for f in r.findings} == {"r"}
