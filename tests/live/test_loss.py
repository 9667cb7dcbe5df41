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


MISS_C = r"""
BPF_PERCPU_ARRAY(th_hits, u64, 1);
struct hit { u64 ts; u64 id; u64 a; u64 b; };
// Each run of this one spins a few milliseconds with interrupts on: a timer interrupt
// on its CPU meanwhile fires hrtimer_expire_entry, whose program the kernel skips then
// (one BPF tracing program per CPU at a time) and counts as a recursion miss.
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_TGID)
        return 0;
    int zero = 0;
    u64 *n = th_hits.lookup(&zero);
    if (n)
        (*n)++;
    u64 acc = 0;
#pragma nounroll
    for (int i = 0; i < TH_SPIN; i++)  // a bounded loop: the verifier walks every turn
        acc += bpf_ktime_get_ns();
    return acc == 1;
}
TRACEPOINT_PROBE(timer, hrtimer_expire_entry) {
    struct hit h = {};
    h.ts = bpf_ktime_get_ns();
    th_submit(args, &h, sizeof(h));
    return 0;
}
"""


def _kernel_at_least(major: int, minor: int) -> bool:
    import platform

    nums = platform.release().split("-")[0].split(".")
    return (int(nums[0]), int(nums[1])) >= (major, minor)


@needs_bpf
@pytest.mark.skipif(
    not _kernel_at_least(6, 7), reason="before 6.7 a tracepoint program's skips are not counted"
)
@pytest.mark.parametrize("output", OUTPUTS)
async def test_program_runs_the_kernel_skipped_are_counted_lost(
    tmp_path: Path, output: str
) -> None:
    """A tracepoint that fires while another BPF program runs on its CPU (a block
    completion's interrupt during block_rq_issue's program, say) does not run its
    program: the sample it would have sent is lost, and only the kernel's count
    (recursion_misses) says so. The drain publishes it as lost."""
    import os
    import time

    import anyio

    from probes.drain import BccProbeSource, ProbeSpec

    from .conftest import collect

    src_c = tmp_path / "miss.bpf.c"
    src_c.write_text(MISS_C)
    spec = ProbeSpec(
        "nested", "sched.runq", src_c, synthetic.PAYLOAD, synthetic.decode,
        cflags=(f"-DTARGET_TGID={os.getpid()}", "-DTH_SPIN=40000"), counters=("th_hits",),
    )  # fmt: skip
    src = BccProbeSource(spec, {"output": output})
    seen: dict[str, float] = {}

    async def work() -> None:
        def calls() -> None:
            t0 = time.monotonic()
            for _ in range(100):
                os.getppid()
            seen["spun"] = time.monotonic() - t0

        await anyio.to_thread.run_sync(calls)
        seen["misses"] = src._program.misses()

    got = await collect(src, work)
    st = src.stats()
    lost = sum(float(b.columns["count"].sum()) for b in got.get("lost", []))
    print(seen, st)
    assert seen["spun"] > 0.05, "the spinning program must hold its CPU for a while"
    assert seen["misses"] > 0, "timer interrupts during the spin skip the timer's program"
    assert st["misses"] >= seen["misses"]
    assert lost == st["lost"] == st["misses"], "every skipped run is published as lost"
    assert st["hits"] >= 100, "the spec's counters are in stats()"
