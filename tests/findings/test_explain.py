"""Explain ranking against a brute-force reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.runtime.explain import rank


def _brute(episodes, occ, within, observed):  # type: ignore[no-untyped-def]
    o0, o1 = observed
    out = []
    for name, (starts, ends) in occ.items():
        if not starts:
            continue
        ivs = [(s - within, e + within) for s, e in zip(starts, ends, strict=True)]
        # measure of the union clipped to observed, by sweeping over unit steps of
        # the elementary points
        pts = sorted({o0, o1, *(max(min(x, o1), o0) for iv in ivs for x in iv)})
        meas = 0
        for a, b in itertools.pairwise(pts):
            mid = (a + b) / 2
            if any(lo <= mid <= hi for lo, hi in ivs):
                meas += b - a
        cov = meas / (o1 - o0)
        sup = sum(1 for t in episodes if any(lo <= t <= hi for lo, hi in ivs))
        lift = (sup / len(episodes)) / cov if episodes and cov > 0 else 0.0
        out.append((name, lift, sup, cov))
    out.sort(key=lambda x: (-x[1], -x[2], x[0]))
    return out


occ_st = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), max_size=12).map(
        lambda xs: ([s for s, _ in xs], [s + d for s, d in xs])
    ),
)


@given(
    st.lists(st.integers(0, 1000), max_size=10).map(sorted),
    occ_st,
    st.integers(0, 100),
)
def test_matches_brute_force(episodes, occ, within) -> None:  # type: ignore[no-untyped-def]
    observed = (0, 1000)
    arrays = {
        k: (np.array(s, dtype=np.int64), np.array(e, dtype=np.int64)) for k, (s, e) in occ.items()
    }
    got = rank(episodes, arrays, within, observed)
    want = _brute(episodes, occ, within, observed)
    assert [g.stream for g in got] == [w[0] for w in want]
    for g, (_, lift, sup, cov) in zip(got, want, strict=True):
        assert g.support == sup
        assert g.coverage == pytest.approx(cov)
        assert g.lift == pytest.approx(lift)


def test_aligned_stream_ranks_first() -> None:
    S = 1_000_000_000
    episodes = [30 * S, 60 * S, 90 * S]
    txg = np.array([30 * S - 100_000_000, 60 * S - 100_000_000, 90 * S - 50_000_000])
    noise = np.array([10 * S, 45 * S, 75 * S])
    got = rank(
        episodes,
        {
            "zfs.txg.sync": (txg, txg + 190_000_000),
            "proc.exec": (noise, noise),
            "none": (np.array([], dtype=np.int64),) * 2,
        },
        S,
        (0, 100 * S),
    )
    assert [g.stream for g in got] == ["zfs.txg.sync", "proc.exec"]
    assert got[0].support == 3 and got[1].support == 0
    assert got[0].lift > 1.0
