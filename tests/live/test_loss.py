"""Overload: a producer far faster than the drain, into a tiny ring.

Losses must be counted (none hidden: received + lost == produced), published as
`lost` events, and the event loop must stay responsive while the drain struggles.
The load is probes/synthetic.py's (the drain bench uses the same instrument).
"""

from __future__ import annotations

from pathlib import Path

from probes import synthetic

from .conftest import needs_bpf


@needs_bpf
async def test_overload_counts_losses_and_keeps_loop_responsive(tmp_path: Path) -> None:
    run = await synthetic.drain_run(
        tmp_path, 1.5, pages=1, options={"sweep": 0.005}, name="hammer", settle=0.3
    )
    p90 = sorted(run.lags)[int(len(run.lags) * 0.9)]
    print(f"hits {run.hits} received {run.received} lost {run.lost}")
    print(f"loop lag max {run.lag_max() * 1e3:.1f}ms p90 {p90 * 1e3:.1f}ms")
    assert run.hits > 100_000, "the producer must make a heavy load"
    assert run.lost > 0, "an overloaded tiny ring must report losses"
    assert run.lost_probes == {"hammer"}
    assert run.lost == run.stats["lost"]
    assert run.received + run.lost == run.hits, "every sample is either received or counted lost"
    assert run.received > 0
    assert run.lag_max() < 0.5, f"event loop lag {run.lag_max():.3f}s while draining"
