"""Trace lines and batches for the io tests."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.batch import Batch

MS = 1_000_000
S = 1_000_000_000


def disk(ts: int, latency: Any = 50_000, **kw: Any) -> dict[str, Any]:
    e = {
        "ts": ts,
        "stream": "disk.io",
        "dev": "sda",
        "op": "write",
        "bytes": 4096,
        "latency": latency,
        "pid": 1,
        "comm": "x",
    }
    e.update(kw)
    return e


def txg(ts: int, end: int, pool: str = "tank", txg_: int = 1) -> dict[str, Any]:
    return {"ts": ts, "stream": "zfs.txg.sync", "end": end, "pool": pool, "txg": txg_}


def memcg(ts: int, usage: int = 1000, cgroup: str = "/a", **kw: Any) -> dict[str, Any]:
    e = {"ts": ts, "stream": "memcg", "cgroup": cgroup, "usage": usage}
    e.update(kw)
    return e


def emit_time(e: dict[str, Any]) -> int:
    return int(e.get("end", e["ts"]))


def write_jsonl(path: Path, events: Iterable[dict[str, Any] | str], gz: bool = False) -> Path:
    text = "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def rows(batches: Iterable[Batch]) -> list[dict[str, Any]]:
    """Every event of the batches, in order, as trace dicts."""
    return [b.row(i) for b in batches for i in range(len(b))]
