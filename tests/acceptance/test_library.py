"""The built-in rule library compiles and passes its own rule tests (cli.md: check, test)."""

from __future__ import annotations

import pytest

from .helpers import REPO, run_cli

RULES = REPO / "rules"


@pytest.mark.skipif(not RULES.is_dir(), reason="no rules/ folder")
def test_builtin_library_checks() -> None:
    r = run_cli(["check", str(RULES)])
    assert r.rc == 0, r.err


@pytest.mark.skipif(not RULES.is_dir(), reason="no rules/ folder")
def test_builtin_library_tests_pass() -> None:
    r = run_cli(["test", str(RULES)])
    assert r.rc == 0, r.out + r.err


def test_replay_without_rules_uses_builtin_library(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .helpers import MS, S, disk, ev, write_trace

    evs = [ev("zfs.txg.sync", 1 * S, 1190 * MS, txg=8812)]
    evs += [disk(1000 * MS + k * MS, 20 * MS) for k in range(100)]
    tp = write_trace(tmp_path / "t.jsonl", evs)
    r = run_cli(["replay", str(tp), "--json"])
    assert r.rc == 0, r.err
    assert r.findings, "a 190ms TXG sync with 20ms disk latency should trip a built-in rule"
    names = set()
    for f in sorted(RULES.rglob("*.rules")):
        names |= {
            line.split()[1] for line in f.read_text().splitlines() if line.startswith("rule ")
        }
    assert {f["rule"] for f in r.findings} <= names
