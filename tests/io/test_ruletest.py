"""`tracehound test`: the rule-test format, pass/fail diffs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.ruletest import RuleTestError, load_test, run_test

from .helpers import MS, disk, txg, write_jsonl

RULES = """
rule stall
  when p99(disk.io.latency) > 1ms
  within 200ms of zfs.txg.sync
  by pool
"""


def _events() -> list[dict[str, object]]:
    ev: list[dict[str, object]] = [txg(1000 * MS, 1190 * MS), txg(5000 * MS, 5100 * MS, "rpool")]
    ev += [disk(t * MS, latency=2 * MS) for t in range(1100, 1150)]
    ev += [disk(t * MS, latency=20_000) for t in range(4800, 5300, 5)]
    return ev


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "z.rules").write_text(RULES)
    write_jsonl(tmp_path / "t.jsonl", _events())
    return tmp_path


def _write(folder: Path, name: str, body: str) -> Path:
    p = folder / name
    p.write_text('rules = ["z.rules"]\n' + body)
    return p


def test_passing_test(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(
        folder,
        "ok.test.toml",
        """
trace = "t.jsonl"
exact = true
[[expect]]
rule = "stall"
key = { pool = "tank" }
count = 1
window = ["0.8s", "1.39s"]
tolerance = 0
[[expect_not]]
rule = "stall"
key = { pool = "rpool" }
""",
    )
    assert main(["test", str(folder)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_failing_test_shows_expected_and_produced(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(
        folder,
        "bad.test.toml",
        """
trace = "t.jsonl"
[[expect]]
rule = "stall"
at = "3s"
tolerance = "100ms"
[[expect_not]]
rule = "stall"
key = { pool = "tank" }
""",
    )
    assert main(["test", str(folder / "bad.test.toml")]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "expected: stall at=3s tolerance=100ms count>=1" in out
    assert "stall{pool=tank} warning ts=1.390s window=[0.800s, 1.390s]" in out
    assert "expected no finding: stall key={'pool': 'tank'}" in out


def test_exact_rejects_unexpected_findings(folder: Path) -> None:
    p = _write(folder, "x.test.toml", 'trace = "t.jsonl"\nexact = true\n')
    out = run_test(load_test(p))
    assert not out.passed and "exact: 1 finding(s)" in out.problems[0]


def test_inline_events_and_event_tables(folder: Path) -> None:
    lines = "\n".join(json.dumps(e) for e in _events()[:1])
    rest = "".join(
        "[[event]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in e.items())
        for e in _events()[2:]
    )
    p = _write(
        folder,
        "inline.test.toml",
        f'events = """\n{lines}\n"""\n[[expect]]\nrule = "stall"\ncount = 1\n' + rest,
    )
    assert run_test(load_test(p)).passed


def test_bad_inline_event_names_the_test_file(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = 'events = """\n' + json.dumps(disk(1)) + '\n{"ts": 1}\n"""\n[[expect]]\nrule = "stall"\n'
    p = _write(folder, "e.test.toml", body)
    assert main(["test", str(p)]) == 2
    out = capsys.readouterr().out
    assert f"{p}:4: error: missing required field `stream`" in out
    _write(
        folder, "e.test.toml", '[[event]]\nts = 1\nstream = "memcg"\n[[expect]]\nrule = "stall"\n'
    )
    assert main(["test", str(p)]) == 2
    assert "[[event]] #1: missing required field `cgroup`" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('trace = "t.jsonl"\n[[expect]]\nrul = "x"\n', "rul"),
        ('trace = "t.jsonl\n', "not valid TOML"),
        ('trace = "missing.jsonl"\n[[expect]]\nrule = "stall"\n', "not found"),
        ('trace = "t.jsonl"\n', "nothing to check"),
        ('trace = "t.jsonl"\n[[expect]]\nrule = "stall"\nat = "3 parsecs"\n', "expect stall"),
        ('tick = 0\ntrace = "t.jsonl"\n[[expect]]\nrule = "stall"\n', "tick: must be more"),
        ('tick = -5\ntrace = "t.jsonl"\n[[expect]]\nrule = "stall"\n', "tick: must be more"),
        ('trace = "t.jsonl"\n[[expect]]\nrule = "stall"\nat = "1e400s"\n', "expect stall"),
    ],
)
def test_bad_test_files(folder: Path, body: str, message: str) -> None:
    p = _write(folder, "b.test.toml", body)
    with pytest.raises(RuleTestError, match=message):
        load_test(p)
    assert main(["test", str(p)]) == 2


def test_rule_errors_make_the_test_unrunnable(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "z.rules").write_text("rule x\n when p99(disk.io.nope) > 1ms over 1s\n")
    _write(folder, "r.test.toml", 'trace = "t.jsonl"\n[[expect]]\nrule = "x"\n')
    assert main(["test", str(folder)]) == 2
    assert "z.rules:2:" in capsys.readouterr().out


def test_examples_pass() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    assert main(["test", str(examples)]) == 0
