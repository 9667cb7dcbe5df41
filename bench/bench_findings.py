"""Figures for the findings side: histogram, explain, render, formats, store.

Run: .venv/bin/python bench/bench_findings.py  (prints figures; asserts nothing)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

import numpy as np

from engine.findings import Evidence, Finding
from engine.render import render_finding
from engine.runtime.explain import rank
from engine.runtime.histogram import histogram
from engine.sinks import formats
from engine.sinks.store import Store


def timed(label: str, fn: Callable[[], object], n: int = 1, per: str = "call") -> None:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    dt = (time.perf_counter() - t0) / n
    print(f"{label:<48} {dt * 1e3:9.3f} ms/{per}")


def main() -> None:
    rng = np.random.default_rng(0)
    for size in (1_000, 100_000, 1_000_000):
        v = rng.lognormal(11, 1.5, size)
        timed(f"histogram of {size:,} values", lambda v=v: histogram(v), n=5)
    S = 1_000_000_000
    episodes = list(range(30 * S, 3600 * S, 30 * S))
    occ = {}
    for i in range(10):
        s = np.sort(rng.integers(0, 3600 * S, 100_000))
        occ[f"stream{i}"] = (s, s + rng.integers(0, 200_000_000, s.shape[0]))
    timed(
        "explain: 10 candidates x 100k occurrences", lambda: rank(episodes, occ, S, (0, 3600 * S))
    )
    w = histogram(rng.lognormal(14, 1, 300))
    b = histogram(rng.lognormal(10.5, 0.5, 50_000))
    f = Finding(
        rule="r",
        severity="warning",
        ts=10 * S,
        window=(9 * S, 10 * S),
        key={"dev": "sda"},
        values={"p99(disk.io.latency)": 1.8e6},
        trigger=None,
        evidence={"disk.io.latency": Evidence(w, b)},
        summary="s",
        lost=0,
    )
    timed("render_finding", lambda: render_finding(f), n=200)
    for fmt in formats.FORMATS:
        timed(
            f"webhook body ({fmt})",
            lambda fmt=fmt: formats.body(fmt, f, host="h", now=0.0, routing_key="k"),
            n=200,
        )
    with tempfile.TemporaryDirectory() as d:
        st = Store.open(d)
        k = iter(range(10**9))
        timed(
            "store.add_finding (WAL, new id)",
            lambda: st.add_finding(
                Finding(
                    **{**{x: getattr(f, x) for x in f.__struct_fields__}, "window": (next(k), 0)}
                )
            ),
            n=500,
        )
        st.close()


if __name__ == "__main__":
    main()
