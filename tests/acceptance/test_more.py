# ruff: noqa: E501, RUF005, RUF059
"""More runtime corners: keys across several condition streams, `for` over empty
windows, explain coverage as a union, periodic bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import MS, S, approx, disk, ev, replay
from .test_periodic_explain import SPIKE, spikes


def test_key_across_two_condition_streams(tmp_path: Path) -> None:
    # dev on disk.io and fs.commit: group sda has both, sdb only a disk.io
    rules = "rule r\n  when count(disk.io) >= 1 and count(fs.commit) >= 1 over 1s\n  by dev\n"
    evs = [
        disk(1 * S, dev="sda"),
        disk(1 * S, dev="sdb"),
        ev("fs.commit", 1 * S, 1 * S, dev="sda"),
        ev("fs.commit", 1 * S, 1 * S, dev="sdc"),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {"dev": "sda"}
    assert f["values"] == {"count(disk.io)": 1, "count(fs.commit)": 1}


def test_unkeyed_stream_in_keyed_condition(tmp_path: Path) -> None:
    # oom.kill has no dev: its aggregate is the same for every dev group
    rules = "rule r\n  when count(disk.io) >= 1 and count(oom.kill) >= 1 over 1s\n  by dev\n"
    evs = [
        disk(1 * S, dev="sda"),
        disk(1 * S, dev="sdb"),
        disk(1 * S, dev="sdb"),
        ev("oom.kill", 1 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    got = sorted(
        (f["key"]["dev"], f["values"]["count(disk.io)"], f["values"]["count(oom.kill)"])
        for f in r.findings
    )
    assert got == [("sda", 1, 1), ("sdb", 2, 1)]


def test_for_over_empty_windows(tmp_path: Path) -> None:
    # events at 0 and 10s: count == 0 over 1s holds from step 1.1; for 2s -> 3.1
    rules = "rule r\n  when count(disk.io) == 0 over 1s\n  for 2s\n"
    r = replay(tmp_path, rules, [disk(0), disk(10 * S)])
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [3100 * MS]


def test_aggregate_over_longer_than_rule_window_sliding(tmp_path: Path) -> None:
    # count(disk.io over 5s) reaches back 5s from each step; rule window 100ms
    rules = "rule r\n  when count(disk.io over 5s) >= 4 and count(disk.io) >= 1 over 100ms\n"
    evs = [disk(0), disk(1 * S), disk(2 * S), disk(4950 * MS)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == 5 * S
    assert f["window"] == [4900 * MS, 5 * S]
    assert f["values"] == {"count(disk.io over 5s)": 4, "count(disk.io)": 1}


def test_explain_coverage_is_a_union(tmp_path: Path) -> None:
    # zfs [1.0,1.05] and [1.06,1.08] within 100ms cover [0.9,1.15] U [0.96,1.18]
    # = [0.9, 1.18] = 0.28s (not 0.25 + 0.22). One episode at 3.1: support 0.
    # Observed [0, 3.1].
    rules = f"rule p\n  {SPIKE}\n  explain by zfs.txg.sync within 100ms\n"
    evs = spikes(3100) + [
        ev("zfs.txg.sync", 1000 * MS, 1050 * MS),
        ev("zfs.txg.sync", 1060 * MS, 1080 * MS),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    (z,) = r.one["explain"]
    assert z["coverage"] == approx(0.28 / 3.1, rel=1e-6)
    assert z["support"] == 0
    assert z["lift"] == 0


def test_explain_over_rule_counts_all_episodes_so_far(tmp_path: Path) -> None:
    # over rule fires at each episode 1.1, 3.1; the second finding's explain uses both
    # proc.exec at 1.1s only (within 100ms): covers [1.0, 1.2]; observed [0, 3.1]
    rules = f"rule p\n  {SPIKE}\n  explain by proc.exec within 100ms\n"
    r = replay(tmp_path, rules, spikes(1100, 3100) + [ev("proc.exec", 1100 * MS)])
    assert r.rc == 0, r.err
    f1, f2 = r.findings
    (e2,) = f2["explain"]
    assert e2["support"] == 1
    assert e2["coverage"] == approx(0.2 / 3.1, rel=1e-6)
    assert e2["lift"] == approx(0.5 / (0.2 / 3.1), rel=1e-6)


def test_explain_default_candidates_include_lost(tmp_path: Path) -> None:
    # `lost` is a stream of the catalog; by default every stream seen except COND's
    rules = f"rule p\n  {SPIKE}\n  explain\n"
    r = replay(tmp_path, rules, spikes(1100) + [ev("lost", 1 * S, count=3)])
    assert r.rc == 0, r.err
    assert [e["stream"] for e in r.one["explain"]] == ["lost"]


def test_explain_default_excludes_cond_streams(tmp_path: Path) -> None:
    rules = (
        "rule p\n  when max(disk.io.latency) > 5ms and count(net.drop) >= 0 over 100ms\n  explain\n"
    )
    evs = spikes(1100) + [ev("net.drop", 1 * S), ev("proc.exec", 1 * S)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert [e["stream"] for e in r.one["explain"]] == ["proc.exec"]


def test_periodic_spread_bound_inclusive(tmp_path: Path) -> None:
    # intervals 2.0, 2.2: spread 0.2 == J
    rules = f"rule p\n  {SPIKE}\n  periodic every 2100ms ± 200ms\n"
    r = replay(tmp_path, rules, spikes(1100, 3100, 5300))
    assert r.one["period"] == 2100 * MS


def test_periodic_every_bound_inclusive(tmp_path: Path) -> None:
    # mean 2.1s, |2.1 - 2| = 0.1 == J
    rules = f"rule p\n  {SPIKE}\n  periodic every 2s ± 100ms\n"
    r = replay(tmp_path, rules, spikes(1100, 3200, 5300))
    assert r.one["period"] == 2100 * MS
    rules = f"rule p\n  {SPIKE}\n  periodic every 2s ± 99ms\n"
    r = replay(tmp_path, rules, spikes(1100, 3200, 5300))
    assert r.findings == []


def test_periodic_two_episodes(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 2 times\n"
    r = replay(tmp_path, rules, spikes(1100, 4600))
    f = r.one
    assert f["ts"] == 4600 * MS and f["period"] == 3500 * MS


def test_periodic_non_periodic_prefix_then_steady(tmp_path: Path) -> None:
    # 1.1 1.6 then steady 2s from 1.6: 1.6 3.6 5.6 -> fires at 5.6
    rules = f"rule p\n  {SPIKE}\n  periodic\n"
    r = replay(tmp_path, rules, spikes(1100, 1600, 3600, 5600))
    f = r.one
    assert f["ts"] == 5600 * MS and f["period"] == 2 * S


@pytest.mark.parametrize("n", [3, 5])
def test_periodic_long_steady_fires_once(tmp_path: Path, n: int) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least {n} times\n"
    r = replay(tmp_path, rules, spikes(*[1100 + 1000 * k for k in range(20)]))
    f = r.one
    assert f["ts"] == (1100 + 1000 * (n - 1)) * MS and f["period"] == 1 * S


def test_keyed_sliding_group_idle_does_not_refire(tmp_path: Path) -> None:
    # count < 5 holds for sda at every step from 0 to 20s (0 or 1 event per window)
    rules = "rule r\n  when count(disk.io) < 5 over 1s\n  by dev\n"
    r = replay(tmp_path, rules, [disk(0, dev="sda"), disk(20 * S, dev="sda")])
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [0]


def test_unkeyed_sliding_idle_does_not_refire(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) < 5 over 1s\n"
    r = replay(tmp_path, rules, [disk(0), disk(20 * S)])
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [0]


def test_keyed_trigger_rule_evaluates_seen_group_with_empty_window(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) == 0\n  before oom.kill within 1s\n  by dev\n"
    evs = [
        disk(1 * S, dev="sda"),
        disk(1500 * MS, dev="sdb"),
        disk(9500 * MS, dev="sdb"),
        ev("oom.kill", 10 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["key"] == {"dev": "sda"}
    assert f["values"] == {"count(disk.io)": 0}


def test_interval_stream_ordered_by_start_for_last_and_delta(tmp_path: Path) -> None:
    # A starts at 1s (ends 5s, dirty 100), B starts at 2s (ends 3s, dirty 300):
    # at their starts, B is the later one: last 300, delta 300 - 100
    rules = "rule r\n  when last(zfs.txg.sync.dirty) > 0 and delta(zfs.txg.sync.dirty) != 0\n  during fs.commit\n"
    evs = [
        ev("zfs.txg.sync", 1 * S, 5 * S, dirty=100, txg=1),
        ev("zfs.txg.sync", 2 * S, 3 * S, dirty=300, txg=2),
        ev("fs.commit", 0, 6 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.one["values"] == {"last(zfs.txg.sync.dirty)": 300, "delta(zfs.txg.sync.dirty)": 200}


def test_interval_stream_optional_field_absent_left_out(tmp_path: Path) -> None:
    # dirty is optional: a TXG without it has no value for sum/avg, but counts
    rules = "rule r\n  when count(zfs.txg.sync) == 3 and avg(zfs.txg.sync.dirty) > 0\n  during fs.commit\n"
    evs = [
        ev("zfs.txg.sync", 1 * S, 2 * S, dirty=100, txg=1),
        ev("zfs.txg.sync", 2 * S, 3 * S, txg=2),
        ev("zfs.txg.sync", 3 * S, 4 * S, dirty=300, txg=3),
        ev("fs.commit", 0, 6 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert r.one["values"] == {"count(zfs.txg.sync)": 3, "avg(zfs.txg.sync.dirty)": 200}


@pytest.mark.parametrize("period_s", [2, 60, 200, 600])
def test_periodic_long_period(tmp_path: Path, period_s: int) -> None:
    # a job every few minutes: rules.md sets no upper bound on the period
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    eps = [1100 + period_s * 1000 * k for k in range(3)]
    r = replay(tmp_path, rules, spikes(*eps))
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == eps[-1] * MS
    assert f["period"] == period_s * S


@pytest.mark.parametrize("period_s", [2, 200])
def test_periodic_long_period_with_background_events(tmp_path: Path, period_s: int) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    eps = [1100 + period_s * 1000 * k for k in range(3)]
    bg = [disk(k * S + 500 * MS, 1 * MS) for k in range(eps[-1] // 1000 + 2)]
    r = replay(tmp_path, rules, spikes(*eps) + bg)
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == eps[-1] * MS
    assert f["period"] == period_s * S


def _busy_background(until_s: int, step_ms: int = 5) -> list[dict]:
    return [disk(k * step_ms * MS + 1, 1 * MS) for k in range(until_s * 1000 // step_ms + 1)]


def test_periodic_thirty_minute_period_on_busy_trace(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    eps = [1100 + 1_800_000 * k for k in range(3)]
    evs = spikes(*eps) + _busy_background(3610, step_ms=20)
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == eps[-1] * MS
    assert f["period"] == 1800 * S


def test_periodic_thirty_minute_period_on_sparse_trace(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    eps = [1100 + 1_800_000 * k for k in range(3)]
    evs = spikes(*eps) + _busy_background(3610, step_ms=1000)
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == eps[-1] * MS
    assert f["period"] == 1800 * S


def test_periodic_two_minute_period_on_busy_trace(tmp_path: Path) -> None:
    rules = f"rule p\n  {SPIKE}\n  periodic at least 3 times\n"
    eps = [1100 + 120_000 * k for k in range(3)]
    evs = spikes(*eps) + _busy_background(250)
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    f = r.one
    assert f["ts"] == eps[-1] * MS
    assert f["period"] == 120 * S


def _explain_far_episodes(tmp_path: Path, step_ms: int) -> dict:
    # over rule, episodes 1.1s and 1801.1s, a TXG 100ms before each (within 100ms)
    rules = f"rule p\n  {SPIKE}\n  explain by zfs.txg.sync within 100ms\n"
    eps = [1100, 1_801_100]
    evs = (
        spikes(*eps)
        + _busy_background(1806, step_ms)
        + [ev("zfs.txg.sync", (e - 100) * MS, (e - 100) * MS) for e in eps]
    )
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert [f["ts"] for f in r.findings] == [e * MS for e in eps]
    (z,) = r.findings[1]["explain"]
    return z


def test_explain_counts_all_episodes_so_far_sparse_trace(tmp_path: Path) -> None:
    z = _explain_far_episodes(tmp_path, 1000)
    assert z["support"] == 2
    assert z["coverage"] == approx(0.4 / 1801.1, rel=1e-6)
    assert z["lift"] == approx(1801.1 / 0.4, rel=1e-6)


def test_explain_counts_all_episodes_so_far_busy_trace(tmp_path: Path) -> None:
    z = _explain_far_episodes(tmp_path, 20)
    assert z["support"] == 2


def _explain_many_occurrences(tmp_path: Path, n: int) -> tuple[dict, float]:
    # proc.exec at k s + 0.5s (k < n), within 100ms: each covers 0.2s; an episode at
    # (n-1) s + 0.6s, on the closed end of the last cover. Observed [0, episode].
    ep = (n - 1) * 1000 + 600
    rules = f"rule p\n  {SPIKE}\n  explain by proc.exec within 100ms\n"
    evs = spikes(ep) + [ev("proc.exec", k * S + 500 * MS) for k in range(n)]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    (z,) = r.one["explain"]
    return z, n * 0.2 / (ep / 1000)


def test_explain_coverage_many_occurrences(tmp_path: Path) -> None:
    z, cov = _explain_many_occurrences(tmp_path, 1000)
    assert z["support"] == 1
    assert z["coverage"] == approx(cov, rel=1e-6)
    assert z["lift"] == approx(1 / cov, rel=1e-6)


def test_explain_coverage_more_than_4096_occurrences(tmp_path: Path) -> None:
    z, cov = _explain_many_occurrences(tmp_path, 10000)
    assert z["coverage"] == approx(cov, rel=1e-6)
    assert z["lift"] == approx(1 / cov, rel=1e-6)


def _explain_many_episodes(tmp_path: Path, n: int) -> dict:
    # over rule: an episode at k s + 0.1s for k = 1 … n; proc.exec 0.05s before each
    # of the first 100 episodes
    rules = f"rule p\n  {SPIKE}\n  explain by proc.exec within 100ms\n"
    eps = [k * 1000 + 100 for k in range(1, n + 1)]
    evs = spikes(*eps) + [ev("proc.exec", (e - 50) * MS) for e in eps[:100]]
    r = replay(tmp_path, rules, evs)
    assert r.rc == 0, r.err
    assert len(r.findings) == n
    last = max(r.findings, key=lambda f: f["ts"])
    (z,) = last["explain"]
    return z


def test_explain_support_many_episodes(tmp_path: Path) -> None:
    z = _explain_many_episodes(tmp_path, 1000)
    assert z["support"] == 100


def test_explain_support_more_than_4096_episodes(tmp_path: Path) -> None:
    z = _explain_many_episodes(tmp_path, 5000)
    assert z["support"] == 100
    cov = 100 * 0.2 / 5000.1
    assert z["lift"] == approx((100 / 5000) / cov, rel=1e-6)
