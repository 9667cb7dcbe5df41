"""History buffers: sized close to the live rows, rows intact through every move."""

from __future__ import annotations

import numpy as np

from engine.runtime import history as hmod
from engine.runtime.history import History
from engine.runtime.streams import KEY_DTYPE, KeyRegistry, StreamStore
from tests.runtime.rt_helpers import S, batch


def _hist() -> History:
    return History({"v": np.float64, "k": np.int32, "w": np.bool_})


def _rows(ts: np.ndarray) -> dict[str, np.ndarray]:
    return {"ts": ts, "v": ts * 0.5, "k": (ts % 7).astype(np.int32), "w": ts % 2 == 0}


def _check(h: History, lo: int, hi: int) -> None:
    """The history holds exactly the rows with lo <= ts < hi, every column matching."""
    ts = np.arange(lo, hi, dtype=np.int64)
    np.testing.assert_array_equal(h.ts, ts)
    np.testing.assert_array_equal(h.col("v"), ts * 0.5)
    np.testing.assert_array_equal(h.col("k"), ts % 7)
    np.testing.assert_array_equal(h.col("w"), ts % 2 == 0)


def test_steady_window_keeps_capacity_near_live_rows() -> None:
    """A sliding window of 100k rows fed for 10 windows: the buffers stay within
    ~1.25x the live rows (doubling gave up to 2x) and every row is intact."""
    h = _hist()
    live = 100_000
    t = 0
    caps = []
    while t < 10 * live:
        h.append(_rows(np.arange(t, t + 3_000, dtype=np.int64)))
        t += 3_000
        h.expire(t - live)
        caps.append(h.capacity)
        _check(h, max(0, t - live), t)
    steady = caps[len(caps) // 2 :]
    assert max(steady) <= 1.3 * (live + 3_000)
    assert max(steady) == min(steady)  # reclaimed in place, no more reallocation
    assert h.nbytes == h.capacity * (8 + 8 + 4 + 1)


def test_compaction_moves_rows_in_chunks_without_overlap() -> None:
    """Expired rows fewer than the live ones: the chunked in-place move is exact."""
    h = _hist()
    h.append(_rows(np.arange(0, 10_000, dtype=np.int64)))
    cap = h.capacity
    h.expire(3_000)  # a dead prefix shorter than the live rows: 3 chunks per column
    end = cap + 1_000
    h.append(_rows(np.arange(10_000, end, dtype=np.int64)))
    assert h.capacity == cap  # room made in place
    _check(h, 3_000, end)


def test_out_of_order_rows_after_compaction() -> None:
    """Rows older than the tail (interval streams) still merge in order after a move."""
    h = _hist()
    h.append(_rows(np.arange(0, 2_000, 2, dtype=np.int64)))
    h.expire(600)
    h.append(_rows(np.arange(1_001, 3_000, 2, dtype=np.int64)))
    ts = np.concatenate([np.arange(600, 2_000, 2), np.arange(1_001, 3_000, 2)])
    ts.sort(kind="stable")
    np.testing.assert_array_equal(h.ts, ts)
    np.testing.assert_array_equal(h.col("v"), ts * 0.5)
    np.testing.assert_array_equal(h.col("k"), ts % 7)
    assert h.out_of_order > 0


def test_mostly_empty_buffers_shrink() -> None:
    h = _hist()
    h.append(_rows(np.arange(0, 200_000, dtype=np.int64)))
    big = h.capacity
    h.expire(199_000)  # the stream calmed down: 1000 rows left
    assert h.capacity < big // 4
    assert h.capacity >= len(h)
    _check(h, 199_000, 200_000)
    h.append(_rows(np.arange(200_000, 201_000, dtype=np.int64)))
    _check(h, 199_000, 201_000)


def test_expire_everything_then_refill() -> None:
    h = _hist()
    h.append(_rows(np.arange(0, 50_000, dtype=np.int64)))
    h.expire(10**9)
    assert len(h) == 0
    assert h.capacity == hmod._MIN_CAPACITY
    h.append(_rows(np.arange(10**9, 10**9 + 5, dtype=np.int64)))
    _check(h, 10**9, 10**9 + 5)


def test_key_codes_are_stored_narrow() -> None:
    """Key code columns take 4 bytes a row, with absent keys still -1."""
    st = StreamStore("sched.runq", False, KeyRegistry())
    col = st.need_key(("comm",))
    st.freeze()
    b = batch("sched.runq", *({"ts": i * S, "comm": "a" if i % 2 else None} for i in range(4)))
    st.ingest(b)
    assert st.history is not None
    codes = st.history.col(col)
    assert codes.dtype == KEY_DTYPE and KEY_DTYPE.itemsize == 4
    assert codes.tolist() == [-1, 0, -1, 0]
