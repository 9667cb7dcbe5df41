"""Group lifetime (idle keys), `for` rounding, and exact explain past its memory caps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rt_helpers import MS, S, agg, batch, gt, plan, rule, within

from engine.batch import Batch
from engine.dsl.plan import ExplainSpec
from engine.runtime import Evaluator
from engine.runtime.explain import rank
from engine.runtime.groups import MIN_TTL, GroupLife
from engine.runtime.keys import KeyIndex, SeenTimes
from engine.runtime.occurrences import (
    EpisodeLog,
    OccurrenceLog,
    rank_candidates,
    settle_against,
    settle_before,
)
from engine.runtime.windows import Sliding
from engine.units import Kind

COUNT = agg("count", "disk.io", kind=Kind.NUMBER)
MAXLAT = agg("max", "disk.io", "latency")


def _less(n: float) -> object:
    return gt(0, n, Kind.NUMBER, op="<")


def test_idle_keyed_group_stays_alive_and_does_not_refire() -> None:
    ev = Evaluator(plan(rule("r", _less(5), [COUNT], over=1 * S, by=("dev",))))
    ev.push(batch("disk.io", {"ts": 0, "dev": "sda"}, {"ts": 20 * S, "dev": "sda"}))
    out = ev.finish()
    assert [(f.ts, f.key) for f in out] == [(0, {"dev": "sda"})]


def test_idle_keyed_group_is_forgotten_after_the_ttl() -> None:
    ev = Evaluator(plan(rule("r", _less(5), [COUNT], over=1 * S, by=("dev",))))
    late = MIN_TTL + 5 * S
    ev.push(batch("disk.io", {"ts": 0, "dev": "sda"}, {"ts": late, "dev": "sda"}))
    out = ev.finish()
    # Forgotten after 10 minutes idle: seen again, it is a new group and fires again.
    assert [f.ts for f in out] == [0, late]


def test_trigger_rule_evaluates_seen_group_with_empty_window() -> None:
    r = rule(
        "r",
        gt(0, 0, Kind.NUMBER, op="=="),
        [COUNT],
        correlation=within("oom.kill", 1 * S, kind="before"),
        by=("dev",),
    )
    ev = Evaluator(plan(r))
    ev.push(
        batch(
            "disk.io",
            {"ts": 1 * S, "dev": "sda"},
            {"ts": 1500 * MS, "dev": "sdb"},
            {"ts": 9500 * MS, "dev": "sdb"},
        )
    )
    ev.push(batch("oom.kill", {"ts": 10 * S}))
    out = ev.finish()
    assert [(f.key, f.values) for f in out] == [({"dev": "sda"}, {"count(disk.io)": 0.0})]


def test_group_not_alive_before_it_is_seen() -> None:
    ki = KeyIndex(("dev",))
    seen = SeenTimes()
    codes = ki.encode([np.array(["a", "b"], dtype=object)], np.array([5, 50], dtype=np.int64))
    seen.touch(codes, np.array([5, 50], dtype=np.int64))
    life = GroupLife(ki, [seen], ttl=100)
    assert life.groups(10).tolist() == [codes[0]]
    assert sorted(life.groups(60).tolist()) == sorted(codes.tolist())
    assert life.groups(130).tolist() == [codes[1]]  # a idle since 5: gone after 105
    assert life.next_change(60) == 106


def test_lru_cap_evicts_least_recently_seen_and_counts() -> None:
    ki = KeyIndex(("dev",))
    seen = SeenTimes()
    names = np.array([f"d{i}" for i in range(10)], dtype=object)
    ts = np.arange(10, dtype=np.int64)
    codes = ki.encode([names], ts)
    seen.touch(codes, ts)
    life = GroupLife(ki, [seen], ttl=1000, cap=4)
    assert sorted(life.groups(20).tolist()) == sorted(codes[-4:].tolist())
    assert life.evictions == 6
    life.groups(21)
    assert life.evictions == 6  # the same ones, not counted twice
    seen.touch(codes[:1], np.array([30], dtype=np.int64))
    assert codes[0] in life.groups(31).tolist()
    assert life.evictions == 7


def test_sliding_for_counts_steps() -> None:
    sl = Sliding(100, 250)
    g = np.array([0, 1], dtype=np.int64)
    fired = []
    for t, held in [(1000, [1, 0]), (1100, [1, 1]), (1200, [1, 1]), (1300, [1, 1])]:
        out = sl.update(t, g, np.array(held, dtype=bool))
        fired.append((t, out.ready))
    assert fired == [(1000, []), (1100, []), (1200, [0]), (1300, [1])]
    assert sl.runs == 2
    sl.update(1400, g, np.array([False, True]))
    assert sl.runs == 1


def _occurrences(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    ts = np.sort(rng.integers(0, 9_990, n)).astype(np.int64)  # emitted before 10_000
    return ts, ts + rng.integers(0, 5, n)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12))
def test_occurrence_log_exact_past_its_capacity(seed: int, cap: int) -> None:
    rng = np.random.default_rng(seed)
    s, e = _occurrences(rng, 300)
    eps_all = np.sort(rng.integers(0, 10_000, 40)).astype(np.int64)
    d = 7
    epl = EpisodeLog(capacity=cap)
    occ = OccurrenceLog(2 * d, (d,), capacity=cap)
    occ.origin = 100

    def settle_on_compact(starts: np.ndarray, ends: np.ndarray, boundary: int) -> None:
        settle_before(epl, "x", starts, ends, d, boundary - d)

    occ.on_compact = settle_on_compact
    k = 0
    for lo in range(0, 10_000, 500):
        sel = (e >= lo) & (e < lo + 500)
        occ.add(s[sel], e[sel])
        # As the evaluator: episodes of the steps up to the watermark, then the logs
        # merge (and may compact) up to it.
        while k < eps_all.shape[0] and eps_all[k] < lo + 500:
            t = int(eps_all[k])

            def settle(el: EpisodeLog, eps: np.ndarray, t: int = t) -> None:
                settle_against(el, eps.shape[0], ["x"], lambda _n: (*occ.view(t), d))

            epl.add(t, settle)
            k += 1
        occ.advance(lo + 499)
    eps = eps_all[:k]
    got = rank_candidates(epl, {"x": (*occ.view(10_000), occ.dropped_cov[d])}, d, (100, 10_000))
    want = rank(eps.tolist(), {"x": (s, e)}, d, (100, 10_000))
    assert got[0].support == want[0].support
    assert abs(got[0].coverage - want[0].coverage) < 1e-12
    assert abs(got[0].lift - want[0].lift) < 1e-9


EXPLAINED = rule(
    "p",
    gt(0, 5 * MS),
    [MAXLAT],
    over=100 * MS,
    explain=ExplainSpec(("fs.commit",), 100 * MS),
)


def _explain_events(seed: int) -> tuple[Batch, Batch]:
    rng = np.random.default_rng(seed)
    n = 300
    ts = np.sort(rng.integers(0, 30 * S, n)).astype(np.int64)
    lat = rng.choice([1 * MS, 10 * MS], n, p=[0.8, 0.2]).astype(np.float64)
    disk = batch(
        "disk.io", *({"ts": int(t), "latency": float(v)} for t, v in zip(ts, lat, strict=True))
    )
    cts = np.sort(rng.integers(0, 30 * S, 40)).astype(np.int64)
    commit = batch("fs.commit", *({"ts": int(t), "end": int(t) + 20 * MS} for t in cts))
    return disk, commit


def _run_explain(disk: Batch, commit: Batch, cuts: list[int], ahead: int) -> list[bytes]:
    """Push events up to `ahead` past each cut (as replay does), advance to the cut."""
    ev = Evaluator(plan(EXPLAINED))
    out = []
    lo = -1
    bounds = [*sorted(set(cuts)), 2**62]
    for hi in bounds:
        top = hi + ahead if hi < 2**62 else hi
        for b in (disk, commit):
            sel = (b.emit > lo) & (b.emit <= top)
            if sel.any():
                ev.push(b.take(sel))
        if hi < 2**62:
            out.extend(ev.advance(hi))
        lo = top
    out.extend(ev.finish())
    return [f.to_json() for f in out]


@settings(max_examples=20, deadline=None)
@given(
    st.integers(0, 10_000),
    st.lists(st.integers(0, 31 * S), max_size=20),
    st.integers(0, 3 * S),
)
def test_explain_does_not_depend_on_batching(seed: int, cuts: list[int], ahead: int) -> None:
    disk, commit = _explain_events(seed)
    last = max(int(disk.emit.max()), int(commit.emit.max()))
    one = _run_explain(disk, commit, [], 0)
    many = _run_explain(disk, commit, [c for c in cuts if c <= last - ahead], ahead)
    assert one == many
