"""Cost of one poll: memcg over many cgroups, and a full txgs kstat (100 rows).

Prints figures; asserts nothing. Run: .venv/bin/python bench/bench_pollers.py
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from probes import memcg, zfs_txg


def _best(fn: Callable[[], object], n: int = 20) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_memcg_fixture(count: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "memory.usage_in_bytes").write_text("1\n")
        (root / "memory.limit_in_bytes").write_text("9223372036854771712\n")
        for i in range(count):
            c = root / f"s{i % 50}" / f"c{i}"
            c.mkdir(parents=True, exist_ok=True)
            for p in (c, c.parent):
                (p / "memory.usage_in_bytes").write_text(f"{i * 4096}\n")
                (p / "memory.limit_in_bytes").write_text(f"{1 << 30}\n")
        src = memcg.MemcgSource(root=root)
        t = _best(src.sample_batch, 10)
        n = len(src.sample_batch())
        each = t / n * 1e6
        print(f"memcg fixture: {n} cgroups per pass in {t * 1e3:.2f} ms ({each:.1f} us each)")


def bench_memcg_real() -> None:
    found = memcg.default_root()
    if found is None:
        print("memcg real: no memory cgroup hierarchy here")
        return
    src = memcg.MemcgSource(root=found[0])
    t = _best(src.sample_batch)
    print(f"memcg real ({found[0]}): {len(src.sample_batch())} cgroups in {t * 1e3:.3f} ms")


def bench_kstat() -> None:
    header = "txg birth state ndirty nread nwritten reads writes otime qtime wtime stime\n"
    rows = "".join(
        f"{59000 + i} {62524099457587 + i * 5_000_000_000} C 81018880 0 25616384 0 680 "
        f"563753583 604707 26596 305528904\n"
        for i in range(100)
    )
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "tank").mkdir()
        (Path(d) / "tank" / "txgs").write_text(header + rows)
        t_parse = _best(lambda: zfs_txg.parse_txgs(header + rows), 50)

        def poll() -> None:
            zfs_txg.KstatTxgSource(root=Path(d)).poll()

        t_poll = _best(poll, 50)
    print(f"kstat: parse 100 rows {t_parse * 1e6:.0f} us; read+parse+batch {t_poll * 1e6:.0f} us")


if __name__ == "__main__":
    bench_memcg_fixture(2000)
    bench_memcg_real()
    bench_kstat()
