"""The runtime on compiled rule text: the spec's examples, summaries, labels, evidence keys."""

from __future__ import annotations

from rt_helpers import MS, S, batch

from engine.batch import Batch
from engine.dsl import compile_text
from engine.findings import Finding
from engine.runtime import Evaluator


def run(text: str, *batches: Batch) -> list[Finding]:
    ev = Evaluator(compile_text(text, "t.rules"))
    for b in batches:
        ev.push(b)
    return ev.finish()


def test_memcg_growth_before_oom_by_cgroup() -> None:
    rows = []
    for i in range(60):
        rows.append({"ts": i * S, "cgroup": "/leak", "usage": 1_000_000_000 + i * 3 * 1048576})
        rows.append({"ts": i * S + 1, "cgroup": "/flat", "usage": 500_000_000})
    found = run(
        """
        rule memcg_growth_before_oom
          "A cgroup's memory charge was climbing before the OOM killer fired in it"
          when growth(memcg.usage) > 1MiB/s
          before oom.kill within 5m
          by cgroup
          severity critical
          labels team = "infra"
        """,
        batch("memcg", *rows),
        batch("oom.kill", {"ts": 60 * S, "cgroup": "/leak"}, {"ts": 60 * S + 5, "cgroup": "/flat"}),
    )
    (f,) = found
    assert f.key == {"cgroup": "/leak"} and f.severity == "critical"
    growth = f.values["growth(memcg.usage)"]
    assert growth is not None and abs(growth - 3 * 1048576) < 1
    assert f.window == (60 * S - 300 * S, 60 * S)
    assert f.labels == {"team": "infra"}
    assert (
        f.description == "A cgroup's memory charge was climbing before the OOM killer fired in it"
    )
    assert f.evidence["memcg.usage"].window.count == 60  # only /leak's samples


def test_summary_template_and_after_window() -> None:
    (f,) = run(
        """
        rule r
          when max(disk.io.latency where comm matches "^kworker") > 1ms
          after fs.commit within 100ms
          by dev
          summary "worst {max(disk.io.latency where comm matches \\"^kworker\\")} on the commit"
        """,
        batch(
            "disk.io",
            {"ts": 1 * S + 50 * MS, "dev": "sda", "comm": "kworker/0", "latency": 3 * MS},
            {"ts": 1 * S + 60 * MS, "dev": "sda", "comm": "postgres", "latency": 9 * MS},
            {"ts": 1 * S + 70 * MS, "dev": "sdb", "comm": "kworker/1", "latency": 5 * MS},
        ),
        batch("fs.commit", {"ts": 1 * S, "end": 1 * S + 20 * MS, "dev": "sda", "tid": 4}),
    )
    assert f.key == {"dev": "sda"}
    assert f.window == (1 * S + 20 * MS, 1 * S + 120 * MS)
    assert f.summary == "worst 3ms on the commit"


def test_periodic_with_explain_from_text() -> None:
    rows = [{"ts": t * S + k * MS, "latency": 9 * MS} for t in (10, 40, 70) for k in range(3)]
    (f,) = run(
        """
        rule periodic_disk_spikes
          when p99(disk.io.latency) > 5ms over 1s
          periodic at least 3 times
          explain by zfs.txg.sync, fs.commit
        """,
        batch("disk.io", *rows),
        batch("zfs.txg.sync", *({"ts": t * S - 100 * MS, "end": t * S} for t in (10, 40, 70))),
    )
    assert f.period == 30 * S
    assert f.explain is not None and [e.stream for e in f.explain] == ["zfs.txg.sync"]


def test_keyed_evidence_baseline_is_the_same_key_and_filter() -> None:
    (f,) = run(
        """
        rule r
          when p99(disk.io.latency where op == "write") > 1ms
          within 10ms of oom.kill
          by dev
          baseline 10s
        """,
        batch(
            "disk.io",
            {"ts": 5 * S, "dev": "a", "op": "write", "latency": 100},
            {"ts": 5 * S, "dev": "a", "op": "read", "latency": 200},
            {"ts": 5 * S, "dev": "b", "op": "write", "latency": 300},
            {"ts": 10 * S, "dev": "a", "op": "write", "latency": 2 * MS},
        ),
        batch("oom.kill", {"ts": 10 * S}),
    )
    ev = f.evidence["disk.io.latency"]
    assert ev.window.count == 1
    assert (ev.baseline.count, ev.baseline.max) == (1, 100)
