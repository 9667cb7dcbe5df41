"""Webhook delivery through the outbox against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from engine.config import SinkConfig
from engine.sinks.http import HttpError, Response
from engine.sinks.metrics import Metrics
from engine.sinks.store import Store
from engine.sinks.webhook import WebhookSink, classify, retry_after

from .helpers import ManualClock, Server, make_finding

S = 1_000_000_000


def _cfg(url: str, **kw: object) -> SinkConfig:
    args: dict[str, object] = dict(name="ops", type="webhook", url=url, timeout=2 * S)
    args.update(kw)
    return SinkConfig(**args)  # type: ignore[arg-type]


async def _until(cond, limit: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with anyio.fail_after(limit):
        while not cond():
            await anyio.sleep(0.005)


async def _deliver(tmp_path: Path, script, **cfg_kw):  # type: ignore[no-untyped-def]
    """Run one finding through a sink against a scripted server; the store and server."""
    clock = ManualClock()
    server = Server(script, clock.now)
    store = Store(tmp_path / "t.db")
    metrics = Metrics()
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        sink = WebhookSink(
            _cfg(server.url, **cfg_kw), store, host="h1", clock=clock, metrics=metrics
        )
        tg.start_soon(sink.run)
        f = make_finding()
        await sink.send(f)
        await _until(lambda: sink.pending() == 0)
        tg.cancel_scope.cancel()
    return f, store, server, clock, metrics


async def test_2xx_delivered(tmp_path: Path) -> None:
    f, store, server, _, metrics = await _deliver(tmp_path, [(204, {}, b"")])
    (row,) = store.outbox("ops")
    assert row.state == "delivered" and row.attempts == 1 and row.id == f.id
    (req,) = server.requests
    assert req.method == "POST" and req.path == "/hook"
    assert req.headers["webhook-id"] == f.id
    assert req.headers["content-type"] == "application/json"
    assert "webhook-signature" not in req.headers  # no secret configured
    body = json.loads(req.body)
    assert body["id"] == f.id and body["host"] == "h1" and body["rule"] == f.rule
    assert metrics.get("tracehound_deliveries_total", {"sink": "ops", "outcome": "delivered"}) == 1


async def test_500_then_200_retries_same_body(tmp_path: Path) -> None:
    f, store, server, _, metrics = await _deliver(
        tmp_path, [(500, {}, b"oops"), (502, {}, b""), (200, {}, b"")]
    )
    (row,) = store.outbox("ops")
    assert row.state == "delivered" and row.attempts == 3
    assert len(server.requests) == 3
    assert len({r.body for r in server.requests}) == 1
    assert {r.headers["webhook-id"] for r in server.requests} == {f.id}
    # exponential backoff with jitter: first wait in [0.5, 1]s, second in [1, 2]s
    gaps = [b.at - a.at for a, b in zip(server.requests, server.requests[1:], strict=False)]
    assert 0.5 <= gaps[0] <= 1.0 and 1.0 <= gaps[1] <= 2.0
    assert metrics.get("tracehound_deliveries_total", {"sink": "ops", "outcome": "retry"}) == 2


async def test_400_failed_not_retried(tmp_path: Path) -> None:
    _, store, server, _, metrics = await _deliver(tmp_path, [(400, {}, b"bad field: x")])
    (row,) = store.outbox("ops")
    assert row.state == "failed" and "HTTP 400" in (row.last_error or "")
    assert "bad field" in (row.last_error or "")
    assert len(server.requests) == 1
    assert metrics.get("tracehound_deliveries_total", {"sink": "ops", "outcome": "failed"}) == 1


@pytest.mark.parametrize("status", [408, 429, 503])
async def test_retry_after_honoured(tmp_path: Path, status: int) -> None:
    _, store, server, _, _ = await _deliver(
        tmp_path, [(status, {"Retry-After": "120"}, b""), (200, {}, b"")]
    )
    first, second = server.requests
    assert second.at - first.at == pytest.approx(120.0)
    assert store.outbox("ops")[0].state == "delivered"


async def test_expires_after_max_age(tmp_path: Path) -> None:
    script = [(500, {}, b"")] * 50
    _, store, server, _, metrics = await _deliver(tmp_path, script, max_age=10 * S)
    (row,) = store.outbox("ops")
    assert row.state == "expired" and "HTTP 500" in (row.last_error or "")
    assert 2 <= len(server.requests) < 10
    assert server.requests[-1].at - server.requests[0].at <= 10.0
    assert metrics.get("tracehound_deliveries_total", {"sink": "ops", "outcome": "expired"}) == 1


async def test_pending_rows_survive_a_restart(tmp_path: Path) -> None:
    clock = ManualClock()
    f = make_finding()
    # first life: the receiver is down (nothing listens on the port), then we stop
    store = Store(tmp_path / "t.db")
    down = WebhookSink(_cfg("http://127.0.0.1:9/hook"), store, clock=clock)
    await down.send(f)
    assert store.outbox("ops")[0].state == "pending"
    store.close()
    # second life: a new store and sink on the same file deliver it
    store = Store(tmp_path / "t.db")
    server = Server([(200, {}, b"")], clock.now)
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        sink = WebhookSink(_cfg(server.url), store, clock=clock)
        tg.start_soon(sink.run)
        await _until(lambda: sink.pending() == 0)
        tg.cancel_scope.cancel()
    assert [r.headers["webhook-id"] for r in server.requests] == [f.id]
    assert store.outbox("ops")[0].state == "delivered"


async def test_connection_refused_is_retried(tmp_path: Path) -> None:
    clock = ManualClock()
    store = Store(tmp_path / "t.db")
    sink = WebhookSink(_cfg("http://127.0.0.1:9/hook"), store, clock=clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        await sink.send(make_finding())
        await _until(lambda: store.outbox("ops")[0].attempts >= 2)
        tg.cancel_scope.cancel()
    row = store.outbox("ops")[0]
    assert row.state == "pending" and row.last_error


class _Recorder:
    """A transport that never blocks the test on the network and counts concurrency."""

    def __init__(self, hold: anyio.Event | None = None) -> None:
        self.active = 0
        self.peak = 0
        self.calls = 0
        self.hold = hold

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> Response:
        self.active += 1
        self.calls += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.hold is not None:
                await self.hold.wait()
            await anyio.sleep(0.002)
        finally:
            self.active -= 1
        return Response(200, {}, b"")


async def test_bounded_concurrency_and_send_never_blocks(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    hold = anyio.Event()
    rec = _Recorder(hold)
    sink = WebhookSink(_cfg("http://x/", concurrency=3), store, transport=rec)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        # the receiver hangs; sending 20 findings still returns at once
        for i in range(20):
            await sink.send(make_finding(window=(i, i + 1)))
        await _until(lambda: rec.active == 3)
        await anyio.sleep(0.05)
        assert rec.active == 3 and sink.pending() == 20
        hold.set()
        await _until(lambda: sink.pending() == 0)
        tg.cancel_scope.cancel()
    assert rec.peak == 3 and rec.calls == 20


async def _send_one(sink: WebhookSink, drain: float) -> int:
    """Run the sink, queue one finding; what is still pending after `drain` seconds."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run)
        await sink.send(make_finding())
        left = await sink.drain(drain)
        await sink.aclose()
    return left


async def test_drain_and_aclose(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    sink = WebhookSink(_cfg("http://x/"), store, transport=_Recorder())
    assert await _send_one(sink, drain=10) == 0
    assert store.outbox("ops")[0].state == "delivered"


class _Broken:
    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> Response:
        raise HttpError("timed out after 2s")


async def test_drain_gives_up_and_leaves_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "t.db")
    sink = WebhookSink(_cfg("http://x/"), store, transport=_Broken())
    assert await _send_one(sink, drain=0.2) == 1
    assert store.outbox("ops")[0].last_error == "timed out after 2s"


class _FullOutbox(Store):
    """Queueing worked; recording the outcome fails as on a full disk."""

    def retry(self, id: str, sink: str, next_attempt: float, error: str) -> None:
        self.writes_refused += 1
        raise sqlite3.OperationalError("database or disk is full")

    writes_refused = 0


async def test_outbox_write_failure_keeps_the_row_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _FullOutbox(tmp_path / "t.db")
    sink = WebhookSink(_cfg("http://x/"), store, transport=_Broken(), base_delay=0.05)
    assert await _send_one(sink, drain=0.2) == 1
    assert store.outbox("ops")[0].state == "pending"
    assert 1 <= store.writes_refused <= 10  # held back between attempts, not a hot loop
    assert capsys.readouterr().err.count("sink ops: cannot write the outbox") == 1


def test_classify_and_retry_after() -> None:
    assert classify(200) == classify(299) == "delivered"
    assert classify(400) == classify(404) == classify(301) == "failed"
    assert classify(408) == classify(429) == classify(500) == classify(599) == "retry"
    assert retry_after("30", 0) == 30.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == pytest.approx(10.0)
    assert retry_after("soon", 0) is None and retry_after(None, 0) is None


async def test_signed_delivery_verifies(tmp_path: Path) -> None:
    import base64
    import hashlib
    import hmac

    f, _, server, clock, _ = await _deliver(tmp_path, [(200, {}, b"")], secret="k3y")
    (req,) = server.requests
    ts = req.headers["webhook-timestamp"]
    assert int(ts) == int(clock.now())
    signed = f"{req.headers['webhook-id']}.{ts}.".encode() + req.body
    mac = base64.b64encode(hmac.new(b"k3y", signed, hashlib.sha256).digest()).decode()
    assert req.headers["webhook-signature"] == f"v1,{mac}"
    assert req.headers["webhook-id"] == f.id == json.loads(req.body)["id"]


@pytest.mark.parametrize("fmt", ["alertmanager", "slack", "pagerduty"])
async def test_other_formats_carry_the_id(tmp_path: Path, fmt: str) -> None:
    f, _, server, _, _ = await _deliver(tmp_path, [(202, {}, b"")], format=fmt, routing_key="R")
    body = json.loads(server.requests[0].body)
    assert server.requests[0].headers["webhook-id"] == f.id
    if fmt == "alertmanager":
        assert body["alerts"][0]["fingerprint"] == f.id
    elif fmt == "pagerduty":
        assert body["dedup_key"] == f.id and body["routing_key"] == "R"
    else:
        assert "blocks" in body
