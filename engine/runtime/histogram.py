"""Evidence histograms (events.md, "Findings"): log2 buckets plus exact statistics.

A finding carries one per evidence field for its window and one for its baseline;
both are built from a column in one pass of numpy, never a loop per value.
"""

from __future__ import annotations

import numpy as np

from ..findings import Histogram
from .aggregates import percentile_rank

__all__ = ["histogram"]

_QUANTILES = (50, 90, 99)


def histogram(values: np.ndarray) -> Histogram:
    """Log2 histogram of base-unit values (NaN already removed).

    Bucket index 0 is [0, 1); index i >= 1 is [2^(i-1), 2^i). `np.frexp` gives the
    exponent e with v = m * 2^e, m in [0.5, 1), so floor(log2 v) = e - 1 and the
    index of v >= 1 is exactly e.
    """
    v = np.asarray(values, dtype=np.float64)
    n = int(v.shape[0])
    if n == 0:
        return Histogram(0, None, None, None, None, None, [])
    _, exp = np.frexp(v)
    idx = np.where(v < 1.0, 0, exp).astype(np.int64)
    counts = np.bincount(idx)
    nz = np.flatnonzero(counts)
    first, last = int(nz[0]), int(nz[-1])
    buckets: list[tuple[int, int, int]] = []
    for i in range(first, last + 1):  # one step per bucket (at most ~64), not per value
        lo = 0 if i == 0 else 1 << (i - 1)
        buckets.append((lo, 1 << i, int(counts[i])))
    # Order statistics by partition (linear time), not a full sort.
    ranks = [int(percentile_rank(q, np.array([n]))[0]) - 1 for q in _QUANTILES]
    part = np.partition(v, sorted({0, n - 1, *ranks}))
    p50, p90, p99 = (float(part[r]) for r in ranks)
    return Histogram(n, float(part[0]), float(part[n - 1]), p50, p90, p99, buckets)
