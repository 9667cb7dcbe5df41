"""Overload: a producer far faster than the drain, into a tiny ring (ring buffer and
perf rings alike).

Losses must be counted (none hidden: received + lost == produced), published as
`lost` events, and the event loop must stay responsive while the drain struggles.
The load is probes/synthetic.py's (the drain bench uses the same instrument).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probes import _bcc, synthetic

from .conftest import needs_bpf

OUTPUTS = [
    pytest.param(
        "ringbuf",
        marks=pytest.mark.skipif(not _bcc.ringbuf_supported(), reason="no BPF ring buffer"),
    ),
    "perf",
]


@needs_bpf
@pytest.mark.parametrize("output", OUTPUTS)
async def test_overload_counts_losses_and_keeps_loop_responsive(
    tmp_path: Path, output: str
) -> None:
    run = await synthetic.drain_run(
        tmp_path, 1.5, pages=1, options={"sweep": 0.005}, name="hammer", settle=0.3,
        output=output,
    )  # fmt: skip
    p90 = sorted(run.lags)[int(len(run.lags) * 0.9)]
    print(f"{run.output}: hits {run.hits} received {run.received} lost {run.lost}")
    print(f"loop lag max {run.lag_max() * 1e3:.1f}ms p90 {p90 * 1e3:.1f}ms")
    assert run.output == output
    assert run.hits > 100_000, "the producer must make a heavy load"
    assert run.lost > 0, "an overloaded tiny ring must report losses"
    assert run.lost_probes == {"hammer"}
    assert run.lost == run.stats["lost"]
    assert run.received + run.lost == run.hits, "every sample is either received or counted lost"
    assert run.received > 0
    assert run.stats["bad"] == 0, "records committed while read are read whole, not misfits"
    assert run.lag_max() < 0.5, f"event loop lag {run.lag_max():.3f}s while draining"


@needs_bpf
@pytest.mark.parametrize("output", OUTPUTS)
async def test_a_fast_steady_load_is_drained_whole(tmp_path: Path, output: str) -> None:
    """300 k samples/s into rings of the default size: nothing lost, in a few batches
    per sweep period (the watermark wakeups and the sweep, not one read per sample)."""
    run = await synthetic.drain_run(tmp_path, 1.0, 300_000, output=output, settle=0.3)
    print(f"{run.output}: hits {run.hits} received {run.received} stats {run.stats}")
    assert run.hits > 100_000
    assert run.received == run.hits and run.lost == 0
    assert run.stats["reads"] < run.received / 100, "reads are batched"
    assert run.lag_max() < 0.5
