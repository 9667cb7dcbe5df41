"""Every ```rules block of docs/rules.md compiles, and the library compiles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.dsl import compile_paths, compile_text

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "rules.md"


def _blocks() -> list[tuple[int, str]]:
    text = DOC.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"^```rules\n(.*?)^```", text, re.S | re.M):
        out.append((text.count("\n", 0, m.start()) + 2, m.group(1)))
    return out


def test_doc_has_blocks() -> None:
    assert len(_blocks()) >= 15


@pytest.mark.parametrize(("line", "block"), _blocks(), ids=lambda v: str(v)[:30])
def test_doc_block_compiles(line: int, block: str) -> None:
    plan = compile_text(block, f"docs/rules.md@{line}")
    assert plan.rules


def test_every_clause_and_aggregate_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    from engine.dsl.check import AGGREGATES
    from engine.dsl.grammar import CLAUSE_KEYWORDS

    for word in (*AGGREGATES, *CLAUSE_KEYWORDS):
        assert f"`{word}" in text or f" {word}(" in text, word


def test_library_compiles() -> None:
    plan = compile_paths([str(ROOT / "rules")])
    names = {r.name for r in plan.rules}
    for name in (
        "txg_sync_disk_stall",
        "memcg_growth_before_oom",
        "periodic_disk_spikes",
        "runq_latency_high",
        "tcp_retransmit_storm",
        "net_drop_storm",
        "jbd2_commit_stall",
        "direct_reclaim_stalls",
    ):
        assert name in names
    files = {Path(r.file).name for r in plan.rules}
    assert files == {"disk.rules", "zfs.rules", "memory.rules", "cpu.rules", "network.rules"}
    assert all(r.description for r in plan.rules)


def test_library_listed_in_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    for r in compile_paths([str(ROOT / "rules")]).rules:
        assert f"| `{r.name}` |" in text, r.name
