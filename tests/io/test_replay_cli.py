"""`tracehound replay` end to end: JSON and text output, exit codes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main

from .helpers import MS, disk, txg, write_jsonl

RULES = """
rule stall
  when p99(disk.io.latency) > 1ms
  within 200ms of zfs.txg.sync
  severity critical
"""


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "z.rules"
    rules.write_text(RULES)
    ev = [txg(1000 * MS, 1190 * MS, txg_=8812)]
    ev += [disk(t * MS, latency=2 * MS) for t in range(1100, 1150)]
    ev += [txg(5000 * MS, 5100 * MS, txg_=8813)]  # quiet: no finding
    ev += [disk(t * MS, latency=30_000) for t in range(4800, 5300, 5)]
    return write_jsonl(tmp_path / "t.jsonl.gz", ev, gz=True), rules


def test_json_lines_are_findings_only(
    case: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    trace, rules = case
    assert main(["replay", str(trace), "--rules", str(rules), "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    f = json.loads(out[0])
    assert (f["rule"], f["severity"], f["window"]) == ("stall", "critical", [800 * MS, 1390 * MS])
    assert f["trigger"]["txg"] == 8812


def test_text_output_and_fail_on(
    case: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    trace, rules = case
    assert main(["replay", str(trace), "--rules", str(rules), "--fail-on", "critical"]) == 1
    out = capsys.readouterr().out
    assert "stall" in out and "{" not in out.splitlines()[0]


def test_fail_on_not_reached(case: tuple[Path, Path], tmp_path: Path) -> None:
    trace, _ = case
    quiet = tmp_path / "q.rules"
    quiet.write_text(RULES.replace("1ms", "1s"))
    assert main(["replay", str(trace), "--rules", str(quiet), "--fail-on", "info"]) == 0


def test_bad_trace_line_exits_2_with_file_and_line(
    case: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rules = case
    bad = write_jsonl(tmp_path / "bad.jsonl", [disk(1), '{"ts": 2, "stream": "disk.io"}'])
    assert main(["replay", str(bad), "--rules", str(rules), "--json"]) == 2
    err = capsys.readouterr()
    assert err.out == ""
    assert f"{bad}:2: error: missing required field" in err.err
    assert "Traceback" not in err.err


def test_skip_bad_goes_on(
    case: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace, rules = case
    bad = write_jsonl(tmp_path / "bad.jsonl", ["{oops", disk(2)])
    assert (
        main(["replay", str(trace), str(bad), "--rules", str(rules), "--json", "--skip-bad"]) == 0
    )
    err = capsys.readouterr()
    assert len(err.out.splitlines()) == 1
    assert f"{bad}:1: error: not valid JSON" in err.err


def test_rule_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "bad.rules"
    rules.write_text("rule x\n when p99(disk.io.latncy) > 1ms over 1s\n")
    trace = write_jsonl(tmp_path / "t.jsonl", [disk(1)])
    assert main(["replay", str(trace), "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert f"{rules}:2:" in err and "Traceback" not in err


def test_builtin_library_is_the_default(
    case: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import engine
    from engine import rulepaths

    assert rulepaths.builtin_rules_dir() == Path(engine.__file__).resolve().parent.parent / "rules"
    trace, rules = case
    monkeypatch.setattr(rulepaths, "builtin_rules_dir", lambda: rules.parent)
    assert main(["replay", str(trace), "--json"]) == 0
    assert [json.loads(s)["rule"] for s in capsys.readouterr().out.splitlines()] == ["stall"]


def test_config_delivers_to_the_store(
    case: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace, rules = case
    cfg = tmp_path / "c.toml"
    state = tmp_path / "state"
    cfg.write_text(f'[engine]\nstate_dir = "{state}"\n[metrics]\nlisten = ""\n')
    assert main(["replay", str(trace), "--rules", str(rules), "--config", str(cfg), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert list(state.glob("*.db")) or list(state.glob("*"))
    assert main(["findings", "--config", str(cfg), "--json"]) == 0
    stored = capsys.readouterr().out.splitlines()
    assert [json.loads(s)["rule"] for s in stored] == ["stall"]


def test_without_config_nothing_is_written(
    case: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace, rules = case
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["replay", str(trace), "--rules", str(rules), "--json"]) == 0
    assert list(work.iterdir()) == []
