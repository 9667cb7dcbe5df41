"""Opening every sink a configuration names, and closing them in the right order.

`watch` and `replay --config` share this: the store and the console get every
finding; configured sinks go through the router (notify, min_severity); webhook
loops run beside the pipeline and get a bounded time to drain at exit, after which
what is left stays in the outbox for the next start.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ..config import Config, SinkConfig
from .base import Router, Sink
from .console import ConsoleSink
from .http import Transport
from .jsonl import JsonlSink
from .metrics import Metrics, serve_metrics
from .store import Store, StoreSink
from .webhook import Clock, WebhookSink

__all__ = ["open_delivery"]


@asynccontextmanager
async def open_delivery(
    config: Config,
    *,
    console: Sink | None = None,
    store: bool = True,
    metrics: Metrics | None = None,
    serve: bool = False,
    drain_timeout: float = 10.0,
    transport: Transport | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[Router]:
    """A router over the configured sinks, with webhook loops (and /metrics) running.

    `store`: keep findings in the SQLite store (the outbox is opened whenever a
    webhook is configured). `serve`: listen for /metrics on `metrics.listen`.
    """
    webhook_cfgs = [c for c in config.sinks if c.type == "webhook"]
    st = Store.open(config.engine.state_dir) if store or webhook_cfgs else None
    always: list[Sink] = [] if console is None else [console]
    if st is not None and store:
        always.append(StoreSink(st))
    configured: list[tuple[Sink, SinkConfig]] = []
    webhooks: list[WebhookSink] = []
    for cfg in config.sinks:
        if cfg.type == "webhook":
            assert st is not None
            w = WebhookSink(cfg, st, transport=transport, clock=clock, metrics=metrics)
            webhooks.append(w)
            configured.append((w, cfg))
        elif cfg.type == "jsonl":
            configured.append((JsonlSink(cfg.path, cfg.name), cfg))
        else:
            configured.append((ConsoleSink(json=cfg.format == "json", name=cfg.name), cfg))
    _depth = None
    if metrics is not None and st is not None:
        names = [c.name for c in webhook_cfgs]
        store_ = st

        def _depth(m: Metrics) -> None:
            depth = store_.depth()
            for n in names:
                m.set("tracehound_outbox_depth", {"sink": n}, depth.get(n, 0))

        metrics.add_collector(_depth)
    router = Router(always, configured, metrics)
    try:
        async with anyio.create_task_group() as tg:
            for w in webhooks:
                tg.start_soon(w.run)
            address = config.metrics.address
            if serve and metrics is not None and address is not None:
                try:
                    await tg.start(serve_metrics, metrics, *address)
                except OSError as e:
                    print(
                        f"tracehound: metrics: cannot listen on {config.metrics.listen}: {e};"
                        " going on without /metrics",
                        file=sys.stderr,
                    )
            try:
                yield router
            finally:
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(drain_timeout):
                        for w in webhooks:
                            await w.drain(drain_timeout)
                    await router.aclose()
                tg.cancel_scope.cancel()
    finally:
        if metrics is not None and _depth is not None:
            metrics.remove_collector(_depth)
        if st is not None:
            st.close()
