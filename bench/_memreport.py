"""`tracehound` CLI with a memory report per structure on SIGUSR1 (bench_memory --report).

Unlike tracemalloc this costs nothing until asked: at each SIGUSR1 it finds the
evaluator, walks what each of its structures holds (numpy buffers by their bytes,
objects by sys.getsizeof) and writes to stderr: per stream the history's rows,
capacity and buffer bytes; per key index, rule and log their size; Python objects
by type (growth since the first report); glibc's heap (in use, free, mmapped).

Usage: python bench/_memreport.py watch ...  (then kill -USR1 <pid>)
"""

from __future__ import annotations

import collections
import ctypes
import gc
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

_SKIP = (type, type(sys), type(len), type(lambda: 0), type((lambda: 0).__code__))
_MALLINFO = [
    "arena",
    "ordblks",
    "smblks",
    "hblks",
    "hblkhd",
    "usmblks",
    "fsmblks",
    "uordblks",
    "fordblks",
    "keepcost",
]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in _MALLINFO]


def deep(root: Any, seen: set[int]) -> int:
    """Bytes reachable from root not already counted in `seen` (which it extends)."""
    size = 0
    stack = [root]
    while stack:
        o = stack.pop()
        i = id(o)
        if i in seen or isinstance(o, _SKIP):
            continue
        seen.add(i)
        if isinstance(o, np.ndarray):
            if o.base is not None:
                stack.append(o.base)
                size += 64
                continue
            size += o.nbytes + 112
            if o.dtype == object:
                stack.extend(o.ravel().tolist())
            continue
        size += sys.getsizeof(o)
        stack.extend(gc.get_referents(o))
    return size


def _mb(x: float) -> str:
    return f"{x / 1e6:.1f}"


_first_types: dict[str, int] = {}


def report() -> list[str]:
    from engine.live import _InOrder
    from engine.runtime.evaluator import Evaluator

    out: list[str] = []
    p = out.append
    objs = gc.get_objects()
    evs = [o for o in objs if isinstance(o, Evaluator)]
    seen: set[int] = set()
    for io in (o for o in objs if isinstance(o, _InOrder)):
        rows = {s: sum(len(b) for b in v) for s, v in io._pending.items()}
        p(f"held for order {_mb(deep(io._pending, seen))} MB {rows}")
    for ev in evs:
        for name, st in ev._stores.items():
            h = st.history
            if h is None:
                continue
            seen.update(id(b) for b in h._buf.values())
            rowbytes = sum(b.itemsize for b in h._buf.values())
            p(
                f"store {name}: rows {len(h)} capacity {h.capacity} buffers {_mb(h.nbytes)} MB "
                f"({rowbytes} B/row) other {_mb(deep(st, seen))} MB"
            )
        for fields, ki in ev._keys.items():
            p(f"keys {','.join(fields)}: live {len(ki)} size {ki.size} {_mb(deep(ki, seen))} MB")
        for rs in ev._rules:
            parts = {k: deep(getattr(rs.scope, k, None), seen) for k in ("_sorted", "_sums")}
            for k in ("sliding", "pending", "life", "cooldown", "periodic", "episodes"):
                parts[k] = deep(getattr(rs, k), seen)
            tot = sum(parts.values())
            if tot > 100_000:
                big = " ".join(f"{k}={_mb(v)}" for k, v in parts.items() if v > 50_000)
                p(f"rule {rs.rule.name}: {_mb(tot)} MB {big}")
        p(f"occurrence logs {_mb(deep(ev._occurrences, seen))} MB")
        p(f"evaluator rest {_mb(deep(ev, seen))} MB")
    cnt = collections.Counter(type(o).__name__ for o in objs)
    if not _first_types:
        _first_types.update(cnt)
    diff = sorted(((c - _first_types.get(t, 0), t, c) for t, c in cnt.items()), reverse=True)
    grown = ", ".join(f"{t} {c} ({d:+d})" for d, t, c in diff[:6])
    p(f"python objects {len(objs)}; most grown: {grown}")
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
        p(
            f"malloc heap {_mb(m.arena)} MB (in use {_mb(m.uordblks)}, free {_mb(m.fordblks)}), "
            f"mmapped {_mb(m.hblkhd)} MB in {m.hblks} blocks"
        )
    except (OSError, AttributeError):
        pass
    return out


def _dump(signum: int, frame: Any) -> None:
    print("\n".join("report: " + x for x in report()), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    signal.signal(signal.SIGUSR1, _dump)
    from engine.cli import main

    sys.exit(main(sys.argv[1:]))
