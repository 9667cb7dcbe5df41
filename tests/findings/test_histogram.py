"""Evidence histograms against a brute-force reference."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from engine.runtime.histogram import histogram


def _bucket_of(v: float) -> tuple[int, int]:
    if v < 1:
        return (0, 1)
    k = 0
    while 2 ** (k + 1) <= v:
        k += 1
    return (2**k, 2 ** (k + 1))


def _nearest(sorted_vals: list[float], q: int) -> float:
    n = len(sorted_vals)
    for v in sorted_vals:
        if sum(1 for x in sorted_vals if x <= v) * 100 >= q * n:
            return v
    raise AssertionError


values = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=2**40).map(float),
        st.floats(min_value=0, max_value=1e12, allow_nan=False),
    ),
    max_size=200,
)


@given(values)
def test_matches_brute_force(vals: list[float]) -> None:
    h = histogram(np.array(vals, dtype=np.float64))
    assert h.count == len(vals)
    if not vals:
        assert h.buckets == [] and h.min is None and h.p99 is None
        return
    s = sorted(vals)
    assert h.min == s[0] and h.max == s[-1]
    assert (h.p50, h.p90, h.p99) == (_nearest(s, 50), _nearest(s, 90), _nearest(s, 99))
    counts: dict[tuple[int, int], int] = {}
    for v in vals:
        b = _bucket_of(v)
        counts[b] = counts.get(b, 0) + 1
    # Non-empty buckets agree; inner empty buckets are kept, ends trimmed.
    got = {(lo, hi): c for lo, hi, c in h.buckets}
    assert {b: c for b, c in got.items() if c} == counts
    assert h.buckets[0][2] > 0 and h.buckets[-1][2] > 0
    for (_, hi, _), (lo2, _, _) in zip(h.buckets, h.buckets[1:], strict=False):
        assert hi == lo2
    assert sum(c for _, _, c in h.buckets) == len(vals)


def test_bucket_edges() -> None:
    h = histogram(np.array([0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 1024.0]))
    assert h.buckets[:4] == [(0, 1, 2), (1, 2, 1), (2, 4, 2), (4, 8, 1)]
    assert h.buckets[-1] == (1024, 2048, 1)
    # inner empty buckets are kept
    assert (8, 16, 0) in h.buckets


def test_percentiles_nearest_rank() -> None:
    h = histogram(np.arange(1, 101, dtype=np.float64))
    assert (h.p50, h.p90, h.p99) == (50.0, 90.0, 99.0)
    h = histogram(np.array([7.0]))
    assert h.p50 == h.p99 == 7.0 and h.buckets == [(4, 8, 1)]
    assert not math.isnan(h.p50 or 0)
