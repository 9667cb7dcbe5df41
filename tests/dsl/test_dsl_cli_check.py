"""`tracehound check PATH...`: exit codes and what it prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main

GOOD = "rule a when count(disk.io) > 1 over 1s\nrule b when p99(disk.io.latency) > 1ms over 1s\n"


def test_ok_file_and_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.rules").write_text(GOOD)
    (tmp_path / "c.rules").write_text("rule c when rate(net.drop) > 10/s over 1s\n")
    assert main(["check", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip() == "3 rules OK"
    assert main(["check", str(tmp_path / "c.rules")]) == 0
    assert capsys.readouterr().err.strip() == "1 rule OK"


def test_errors_rendered_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.rules"
    f.write_text(
        "rule a\n  when p99(disk.io.latncy) > 1ms over 1s\n"
        "rule b when count(disk.io) > 1\n  severty info\n"
    )
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:2:12: error: stream disk.io has no field 'latncy'" in err
    assert "did you mean disk.io.latency?" in err
    assert f"{f}:4:3: error: unexpected 'severty'" in err
    assert "did you mean severity?" in err
    assert "    when p99(disk.io.latncy) > 1ms over 1s\n             ^" in err
    assert err.strip().endswith("2 errors")
    assert "Traceback" not in err


def test_duplicate_rule_across_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "1.rules").write_text(GOOD)
    (tmp_path / "2.rules").write_text(GOOD)
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / '2.rules'}:1:6: error: rule a is already defined" in err
    assert f"first defined at {tmp_path / '1.rules'}:1:6" in err


def test_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.rules").write_text(GOOD)
    missing = tmp_path / "nope.rules"
    assert main(["check", str(tmp_path / "a.rules"), str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such file or directory" in err


def test_undecodable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.rules").write_bytes(b"rule a when \xff\xfe")
    assert main(["check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a.rules'}:1:13: error: invalid UTF-8 byte 0xff" in err


def test_builtin_library_checks(capsys: pytest.CaptureFixture[str]) -> None:
    rules = Path(__file__).resolve().parents[2] / "rules"
    assert main(["check", str(rules)]) == 0
    assert capsys.readouterr().err.strip().endswith("rules OK")
