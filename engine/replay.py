"""`tracehound replay`: trace files through the one pipeline, findings to stdout.

Without `--config` nothing outside stdout/stderr is touched; with it, findings also
go to the configured sinks and the store, and pending webhook deliveries get a
bounded time before exit (what is left stays in the outbox).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Literal

import anyio

from .clock import ReplayClock
from .config import Config, load_config, severity_rank
from .dsl.plan import Plan
from .errors import TraceError
from .pipeline import PipelineResult, run_pipeline
from .pipeline import Router as FindingRouter
from .rulepaths import load_plan, needed_streams
from .sinks.base import Router
from .sinks.console import ConsoleSink
from .sources import TraceSource

__all__ = ["DEFAULT_TICK", "replay", "replay_command"]

DEFAULT_TICK = 100_000_000
DRAIN_SECONDS = 10.0


def _report_bad(err: TraceError) -> None:
    print(str(err), file=sys.stderr)


async def replay(
    traces: Sequence[str],
    plan: Plan,
    router: FindingRouter,
    *,
    tick: int = DEFAULT_TICK,
    skip_bad: bool = False,
    interleave: Literal["ordered", "slices"] = "slices",
) -> PipelineResult:
    """Replay traces through the pipeline, findings to `router`.

    "slices" (one batch per stream per merged piece) gives the runtime far fewer,
    larger batches than strict global order; the runtime buffers per stream and
    evaluates only on `advance`, and ReplayClock keeps the watermark below every
    event still to come, so both give the same findings (tests/io check this).
    """
    source = TraceSource(
        traces,
        skip_bad=skip_bad,
        on_bad=_report_bad,
        streams=needed_streams(plan),
        interleave=interleave,
    )
    return await run_pipeline([source], plan, router, ReplayClock(), tick=tick)


def replay_command(args: argparse.Namespace) -> int:
    """`tracehound replay`: 1 when a finding reaches `--fail-on`, else 0."""
    config: Config | None = load_config(args.config) if args.config else None
    plan = load_plan(args.rules, config)
    tick = config.engine.tick if config is not None else DEFAULT_TICK
    console = ConsoleSink(json=bool(args.json))

    async def main() -> PipelineResult:
        if config is None:
            return await replay(
                args.traces, plan, Router([console]), tick=tick, skip_bad=args.skip_bad
            )
        from .sinks.delivery import open_delivery

        async with open_delivery(config, console=console, drain_timeout=DRAIN_SECONDS) as r:
            return await replay(args.traces, plan, r, tick=tick, skip_bad=args.skip_bad)

    result = anyio.run(main)
    bad = result.stats.get("sources", {}).get("trace", {}).get("bad_lines", 0)
    if bad:
        print(f"tracehound: skipped {bad} bad trace line(s)", file=sys.stderr)
    worst = result.worst()
    if args.fail_on is not None and worst is not None:
        return 1 if severity_rank(worst) >= severity_rank(args.fail_on) else 0
    return 0
