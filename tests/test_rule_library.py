"""The built-in rule library is tested: `tracehound test rules/` passes, and every rule
defined in rules/*.rules has at least one positive case (an `[[expect]]`) and one
negative case (an `[[expect_not]]`) in a rule test below rules/ that loads it.

A new rule without both kinds of case fails this suite. The cases live in
rules/tests/ (their traces come from rules/tests/generate.py).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.dsl import compile_paths

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"


def _library() -> dict[str, str]:
    """Rule name -> the file that defines it, for every rules/*.rules."""
    files = sorted(RULES.glob("*.rules"))
    assert files, "no rule files in rules/"
    plan = compile_paths([str(p) for p in files])
    return {r.name: Path(r.file).name for r in plan.rules}


def _test_files() -> list[Path]:
    return sorted(RULES.rglob("*.test.toml"))


def _loaded_rules(test: Path, doc: dict[str, Any]) -> set[str]:
    """Names of the rules a test file loads (its `rules` paths are relative to it)."""
    paths = [str((test.parent / p).resolve()) for p in doc.get("rules", [])]
    return {r.name for r in compile_paths(paths).rules} if paths else set()


def _cases(test: Path) -> Iterator[tuple[str, str]]:
    """("positive" | "negative", rule) for each case of one test file that can be
    decided by a rule it loads: an `[[expect]]` (with count 0 it is a negative
    case) or an `[[expect_not]]`."""
    doc = tomllib.loads(test.read_text(encoding="utf-8"))
    loaded = _loaded_rules(test, doc)
    for e in doc.get("expect", []):
        if e.get("rule") in loaded:
            yield ("negative" if e.get("count") == 0 else "positive", e["rule"])
    for e in doc.get("expect_not", []):
        if e.get("rule") in loaded:
            yield ("negative", e["rule"])


def test_library_defines_rules() -> None:
    lib = _library()
    assert len(lib) >= 10
    assert {"disk.rules", "zfs.rules", "memory.rules", "cpu.rules", "network.rules"} <= set(
        lib.values()
    )


def test_every_rule_has_a_positive_and_a_negative_case() -> None:
    lib = _library()
    seen: dict[str, set[str]] = {"positive": set(), "negative": set()}
    for test in _test_files():
        for kind, rule in _cases(test):
            seen[kind].add(rule)
    missing = {
        name: sorted(kind for kind in ("positive", "negative") if name not in seen[kind])
        for name in lib
    }
    missing = {name: kinds for name, kinds in missing.items() if kinds}
    assert not missing, "rules without test cases (add them under rules/tests/): " + ", ".join(
        f"{name} ({lib[name]}): no {' and no '.join(k)} case" for name, k in sorted(missing.items())
    )


def test_rule_tests_name_known_rules() -> None:
    """An expectation about a rule the test does not load checks nothing."""
    for test in _test_files():
        doc = tomllib.loads(test.read_text(encoding="utf-8"))
        loaded = _loaded_rules(test, doc)
        for table in ("expect", "expect_not"):
            for e in doc.get(table, []):
                assert e.get("rule") in loaded, f"{test}: [[{table}]] rule {e.get('rule')!r}"


def test_rule_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    """`tracehound test rules/` exits 0: every case passes."""
    rc = main(["test", str(RULES)])
    out = capsys.readouterr()
    assert rc == 0, out.out + out.err
    assert "0 failed, 0 could not run" in out.err
