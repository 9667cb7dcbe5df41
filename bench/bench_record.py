"""Recording throughput: batches -> JSON Lines with TraceWriter (what `record` and
`watch --record` spend per event).

    .venv/bin/python bench/bench_record.py [--events N]

Decodes the first N events of the replay bench's trace (made with bench_replay's
generator when missing), then writes them again, plain and gzip, and prints
events/s and CPU ns per event beside `msgspec.json.encode` of one dict per event
(the obvious way to write them).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import msgspec
from bench_replay import generate  # bench/ is on sys.path when run as a script

from engine.batch import Batch
from engine.sources import TraceSource
from engine.tracefile import TraceWriter

TRACE = Path("/tmp/tracehound-bench/trace-1200000.jsonl")


def _load(n: int) -> list[Batch]:
    if not TRACE.exists():
        TRACE.parent.mkdir(parents=True, exist_ok=True)
        generate(TRACE, 1_200_000)
    out: list[Batch] = []
    got = 0
    for b in TraceSource([str(TRACE)], interleave="slices", batch_size=4096).batches():
        out.append(b)
        got += len(b)
        if got >= n:
            break
    return out


def _dicts(batches: list[Batch], path: str) -> None:
    enc = msgspec.json.Encoder().encode
    with open(path, "wb") as f:
        for b in batches:
            f.write(b"\n".join(enc(b.row(i)) for i in range(len(b))) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    batches = _load(args.events)
    n = sum(map(len, batches))
    print(f"{n:,} events in {len(batches)} batches (from {TRACE.name})")
    with tempfile.TemporaryDirectory() as d:
        cases = {
            "TraceWriter .jsonl": lambda: _write(batches, os.path.join(d, "t.jsonl")),
            "TraceWriter .jsonl.gz": lambda: _write(batches, os.path.join(d, "t.jsonl.gz")),
            "dict + msgspec per event": lambda: _dicts(batches, os.path.join(d, "d.jsonl")),
        }
        for name, fn in cases.items():
            best = min(_cpu(fn) for _ in range(args.repeat))
            print(f"{name:28s} {n / best:12,.0f} events/s  {best / n * 1e9:6.0f} ns CPU/event")


def _write(batches: list[Batch], path: str) -> None:
    with TraceWriter(path) as w:
        for b in batches:
            w.write(b)


def _cpu(fn: object) -> float:
    t = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - t


if __name__ == "__main__":
    main()
