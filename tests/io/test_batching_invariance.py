"""The same events give the same findings however the trace is cut into batches:
strict order or per-stream slices, any batch size, any run size (spilled or not)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.clock import ReplayClock
from engine.dsl import compile_text
from engine.findings import Finding
from engine.pipeline import run_pipeline
from engine.sources import TraceSource

from .helpers import MS, disk, memcg, txg

PLAN = compile_text(
    """
rule stall when p99(disk.io.latency) > 1ms within 50ms of zfs.txg.sync by pool
rule busy when count(disk.io where op == "write") >= 3 over 100ms by dev cooldown 200ms
rule grow when max(memcg.usage) > 500B over 200ms
""",
    "inv.rules",
)

_events = st.lists(
    st.one_of(
        st.builds(
            lambda t, lat, dev, op: disk(t * MS, latency=lat * 100_000, dev=dev, op=op),
            st.integers(0, 1000),
            st.integers(0, 30),
            st.sampled_from(["sda", "sdb"]),
            st.sampled_from(["read", "write"]),
        ),
        st.builds(
            lambda t, d, pool: txg(t * MS, (t + d) * MS, pool=pool),
            st.integers(0, 1000),
            st.integers(0, 80),
            st.sampled_from(["tank", "rpool"]),
        ),
        st.builds(lambda t, u: memcg(t * MS, usage=u), st.integers(0, 1000), st.integers(0, 900)),
    ),
    max_size=120,
)


async def _run(path: str, **kw: Any) -> list[bytes]:
    out: list[bytes] = []

    class Collect:
        async def send(self, f: Finding, notify: Sequence[str] | None = None) -> None:
            out.append(f.to_json())

    await run_pipeline([TraceSource([path], **kw)], PLAN, Collect(), ReplayClock())
    return sorted(out)


async def _with(path: str, kw: dict[str, Any]) -> list[bytes]:
    return await _run(path, **kw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=_events,
    batch_size=st.integers(1, 50),
    run_size=st.integers(5, 200),
)
def test_findings_do_not_depend_on_batching(
    events: list[dict[str, Any]], batch_size: int, run_size: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "t.jsonl"
        p.write_text("".join(json.dumps(e) + "\n" for e in events))
        base = anyio.run(lambda: _run(str(p)))
        for interleave in ("ordered", "slices"):
            kw: dict[str, Any] = {
                "interleave": interleave,
                "batch_size": batch_size,
                "run_size": run_size,
                "block_bytes": 400,
            }
            got = anyio.run(_with, str(p), kw)
            assert got == base, interleave
