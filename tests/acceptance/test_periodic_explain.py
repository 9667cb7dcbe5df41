# ruff: noqa: E501
"""`periodic` (rules.md, Periodic) and `explain` (rules.md, Explain).

A spike is one disk.io with latency 10ms at time x.x5s; with `over 100ms` it makes
an episode of exactly one step, at x.x5 + 50ms (the first step whose window
[t - 100ms, t] holds it). A quiet event at 0s starts the observed time.
"""

from __future__ import annotations

from pathlib import Path

from .helpers import MS, S, approx, disk, ev, replay

SPIKE = "when max(disk.io.latency) > 5ms over 100ms"


def spikes(*episode_ms: int) -> list[dict]:
    """Spikes whose episodes (first steps) are at the given times (ms)."""
    return [disk(0, 1 * MS)] + [disk((t - 50) * MS, 10 * MS) for t in episode_ms]


def test_periodic_fires_at_first_step_of_nth_episode(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100))
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == 5100 * MS
    assert f["window"] == [5000 * MS, 5100 * MS]
    assert f["period"] == 2 * S
    assert f["values"] == {"max(disk.io.latency)": 10 * MS}
    assert f["trigger"] is None


def test_periodic_reports_episode_times(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100))
    assert r.one.get("episodes") == [1100 * MS, 3100 * MS, 5100 * MS]


def test_periodic_default_is_three_episodes(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic\n"
    r = replay(tmp_path, rules, spikes(1100, 3100))
    assert r.findings == []
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100))
    assert [f["ts"] for f in r.findings] == [5100 * MS]


def test_periodic_at_least_n(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 4 times\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100))
    assert r.findings == []
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100, 7100))
    f = r.one
    assert f["ts"] == 7100 * MS and f["period"] == 2 * S


def test_periodic_default_jitter_is_ten_percent_of_mean(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    # intervals 2.0 and 2.2: spread 0.2 <= 10% of 2.1 -> fires, period 2.1s
    r = replay(tmp_path, rules, spikes(1100, 3100, 5300))
    f = r.one
    assert f["period"] == 2100 * MS
    # intervals 2.0 and 2.5: spread 0.5 > 0.225 -> no
    r = replay(tmp_path, rules, spikes(1100, 3100, 5600))
    assert r.findings == []


def test_periodic_every_with_jitter(tmp_path: Path) -> None:
    # intervals 2.0 and 2.5: spread 0.5 <= 600ms, mean 2.25 within 600ms of 2s
    rules = f"rule p\n  {SPIKE}\n  periodic every 2s ± 600ms at least 3 times\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5600))
    f = r.one
    assert f["period"] == 2250 * MS
    # the same spacing against every 3s: mean 2.25 is 750ms off
    rules = f"rule p\n  {SPIKE}\n  periodic every 3s +- 600ms at least 3 times\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5600))
    assert r.findings == []


def test_periodic_every_default_jitter(tmp_path: Path) -> None:
    # every 2s, default J = 10% of the mean: 2.1s mean with spread 0.2 fits 2s ± 0.21
    rules = f"rule p\n  {SPIKE}\n  periodic every 2s\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5300))
    assert r.one["period"] == 2100 * MS
    rules = f"rule p\n  {SPIKE}\n  periodic every 1500ms\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100))
    assert r.findings == []


def test_periodic_fires_once_per_steady_run(tmp_path: Path) -> None:
    # steady 1.1 3.1 5.1 7.1 (fires at 5.1 only); 8.1 breaks it; 8.1 10.1 12.1 steady
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100, 7100, 8100, 10100, 12100))
    assert r.rc == 0, r.err
    assert [(f["ts"], f["period"]) for f in r.findings] == [(5100 * MS, 2 * S), (12100 * MS, 2 * S)]


def test_periodic_episode_is_a_run_of_steps(tmp_path: Path) -> None:
    # each burst holds for several steps; an episode's time is its first step
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    evs = [disk(0, 1 * MS)]
    for base in (1000, 4000, 7000):
        evs += [disk((base + 50 + 100 * k) * MS, 10 * MS) for k in range(4)]  # 4 steps each
    r = replay(tmp_path, rules, evs)
    f = r.one
    assert f["ts"] == 7100 * MS
    assert f["period"] == 3 * S


def test_periodic_per_key(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  by dev\n  periodic at least 3 times\n"
    evs = [disk(0, 1 * MS)]
    evs += [disk((t - 50) * MS, 10 * MS, dev="sda") for t in (1100, 3100, 5100)]
    evs += [disk((t - 50) * MS, 10 * MS, dev="sdb") for t in (1200, 2200, 5200)]
    r = replay(tmp_path, rules, evs)
    f = r.one
    assert f["key"] == {"dev": "sda"} and f["period"] == 2 * S


EXPLAIN_EVENTS = [
    ev("zfs.txg.sync", 1000 * MS, 1050 * MS, txg=1),
    ev("zfs.txg.sync", 3000 * MS, 3050 * MS, txg=2),
    ev("zfs.txg.sync", 5000 * MS, 5050 * MS, txg=3),
    ev("fs.commit", 2000 * MS, 2010 * MS),
]


def test_explain_lift_support_coverage(tmp_path: Path) -> None:
    # episodes 1.1 3.1 5.1; observed time [0, 5.1] = 5.1s.
    # zfs.txg.sync within 100ms covers [0.9,1.15] [2.9,3.15] [4.9,5.1] = 0.7s:
    #   coverage 0.7/5.1, support 3, lift (3/3)/(0.7/5.1) = 5.1/0.7
    # fs.commit covers [1.9, 2.11] = 0.21s: coverage 0.21/5.1, support 0, lift 0
    # net.drop has no occurrences: left out
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n  explain by zfs.txg.sync, fs.commit, net.drop within 100ms\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100) + EXPLAIN_EVENTS)
    assert r.rc == 0, r.err
    ex = r.one["explain"]
    assert [e["stream"] for e in ex] == ["zfs.txg.sync", "fs.commit"]
    z, c = ex
    assert z["support"] == 3
    assert z["coverage"] == approx(0.7 / 5.1, rel=1e-6)
    assert z["lift"] == approx(5.1 / 0.7, rel=1e-6)
    assert c["support"] == 0
    assert c["coverage"] == approx(0.21 / 5.1, rel=1e-6)
    assert c["lift"] == 0


def test_explain_default_candidates_and_within(tmp_path: Path) -> None:
    # default within 1s; default candidates: every stream seen except COND's (disk.io)
    # zfs covers [0, 2.05] [2.0, 4.05] [4.0, 5.1(clipped)] = union [0, 5.1]: coverage 1
    # fs.commit covers [1.0, 3.01] = 2.01s: coverage 2.01/5.1; support: 1.1 and 3.1? 3.1 > 3.01
    #   -> support 1, lift (1/3)/(2.01/5.1)
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n  explain\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100) + EXPLAIN_EVENTS)
    assert r.rc == 0, r.err
    ex = {e["stream"]: e for e in r.one["explain"]}
    assert set(ex) == {"zfs.txg.sync", "fs.commit"}
    assert ex["zfs.txg.sync"]["coverage"] == approx(1.0, rel=1e-6)
    assert ex["zfs.txg.sync"]["support"] == 3
    assert ex["zfs.txg.sync"]["lift"] == approx(1.0, rel=1e-6)
    assert ex["fs.commit"]["support"] == 1
    assert ex["fs.commit"]["coverage"] == approx(2.01 / 5.1, rel=1e-6)
    assert ex["fs.commit"]["lift"] == approx((1 / 3) / (2.01 / 5.1), rel=1e-6)
    assert [e["stream"] for e in r.one["explain"]] == ["zfs.txg.sync", "fs.commit"]


def test_explain_by_then_severity_clause(tmp_path: Path) -> None:
    # `explain by S` followed by another clause; `by` right after explain is explain's
    rules = f"rule p\n  {SPIKE}\n  explain by zfs.txg.sync within 100ms\n  severity critical\n"
    r = replay(tmp_path, rules, spikes(1100) + EXPLAIN_EVENTS[:1])
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {}
    assert f["severity"] == "critical"
    # over rule: episodes so far = [1.1]; observed [0, 1.1]; zfs covers [0.9, 1.1]
    (z,) = f["explain"]
    assert z["stream"] == "zfs.txg.sync" and z["support"] == 1
    assert z["coverage"] == approx(0.2 / 1.1, rel=1e-6)
    assert z["lift"] == approx(1.1 / 0.2, rel=1e-6)


def test_explain_trigger_rule_uses_window_starts(tmp_path: Path) -> None:
    # trigger rule: episodes are the starts of its findings' windows so far.
    # oom at 2s and 6s, before within 1s -> windows [1,2] and [5,6]; episodes 1s, 5s.
    # proc.exec at 1.0s and 9s (within 100ms): covers [0.9,1.1] and nothing else before 6s.
    # Observed [0, 6]: coverage 0.2/6, support at the 2nd finding: 1 (1s), lift (1/2)/(0.2/6)
    rules = """
rule t
  when count(disk.io) >= 1
  before oom.kill within 1s
  explain by proc.exec within 100ms
"""
    evs = [
        disk(0),
        disk(1500 * MS),
        disk(5500 * MS),
        ev("proc.exec", 1 * S),
        ev("oom.kill", 2 * S),
        ev("oom.kill", 6 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f1, f2 = sorted(r.findings, key=lambda f: f["ts"])
    (e1,) = f1["explain"]
    assert e1["support"] == 1 and e1["coverage"] == approx(0.2 / 2, rel=1e-6)
    assert e1["lift"] == approx(1 / (0.2 / 2), rel=1e-6)
    (e2,) = f2["explain"]
    assert e2["support"] == 1 and e2["coverage"] == approx(0.2 / 6, rel=1e-6)
    assert e2["lift"] == approx(0.5 / (0.2 / 6), rel=1e-6)


def test_no_explain_key_without_explain(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n"
    r = replay(tmp_path, rules, spikes(1100))
    assert r.one.get("explain") is None
    assert "period" not in r.one


def test_explain_within_without_by(tmp_path: Path) -> None:
    # default candidates, D = 100ms: zfs covers [0.9, 1.15] -> observed [0, 1.1]: 0.2
    rules = f"rule p\n  {SPIKE}\n  explain within 100ms\n"
    r = replay(tmp_path, rules, spikes(1100) + EXPLAIN_EVENTS[:1])
    assert r.rc == 0, r.err
    (z,) = r.one["explain"]
    assert z["stream"] == "zfs.txg.sync"
    assert z["coverage"] == approx(0.2 / 1.1, rel=1e-6)


def test_explain_episodes_are_per_key(tmp_path: Path) -> None:
    # sda episodes 1.1 and 3.1; sdb episode 2.1. zfs near 1.1 only (within 100ms).
    # sda's second finding (3.1): support 1 of 2; sdb's finding: support 0 of 1
    rules = f"rule p\n  {SPIKE}\n  by dev\n  explain by zfs.txg.sync within 100ms\n"
    evs = [disk(0, 1 * MS, dev="sda"), disk(0, 1 * MS, dev="sdb")]
    evs += [disk((t - 50) * MS, 10 * MS, dev="sda") for t in (1100, 3100)]
    evs += [disk(2050 * MS, 10 * MS, dev="sdb"), ev("zfs.txg.sync", 1000 * MS, 1050 * MS)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    by = {(f["key"]["dev"], f["ts"]): f["explain"][0] for f in r.findings}
    assert set(by) == {("sda", 1100 * MS), ("sda", 3100 * MS), ("sdb", 2100 * MS)}
    z = by[("sda", 3100 * MS)]
    cov = 0.25 / 3.1  # [0.9, 1.15]
    assert z["support"] == 1 and z["lift"] == approx(0.5 / cov, rel=1e-6)
    assert by[("sdb", 2100 * MS)]["support"] == 0


def test_periodic_cooldown(tmp_path: Path) -> None:
    # two steady runs: 1.1 3.1 5.1 (fires 5.1), break at 6.1, 6.1 8.1 10.1 (fires 10.1)
    # cooldown 10s suppresses the second
    rules = f"rule p\n  {SPIKE}\n  periodic\n  cooldown 10s\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100, 6100, 8100, 10100))
    assert [f["ts"] for f in r.findings] == [5100 * MS]
    rules = f"rule p\n  {SPIKE}\n  periodic\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5100, 6100, 8100, 10100))
    assert [f["ts"] for f in r.findings] == [5100 * MS, 10100 * MS]
