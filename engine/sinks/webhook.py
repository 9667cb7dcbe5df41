"""Webhook delivery through the durable outbox (config.md "Delivery promises").

`send` only writes the finding's body to the outbox and wakes the delivery loop, so
a slow or dead receiver never slows the pipeline. `run` (a background task) sends
what is due with at most `concurrency` requests in flight, and records each
outcome in the outbox: delivered, failed (a 4xx that retrying cannot fix), retried
later (exponential backoff with jitter, or the receiver's Retry-After) or expired
(older than max_age). Rows still pending at exit are sent after a restart.
"""

from __future__ import annotations

import random
import socket
import sqlite3
import time
from email.utils import parsedate_to_datetime
from typing import Protocol

import anyio

from ..config import SinkConfig
from ..findings import Finding
from . import formats
from .base import FailureNote
from .http import HttpError, HttpTransport, Response, Transport
from .metrics import Metrics
from .store import OutboxRow, Store

__all__ = ["Clock", "WallClock", "WebhookSink", "classify", "retry_after"]

_NS = 1e9


class Clock(Protocol):
    """Wall-clock seconds and waiting; tests use a manual clock to skip backoff."""

    def now(self) -> float: ...

    async def wait(self, event: anyio.Event, timeout: float | None) -> None:
        """Return when `event` is set or `timeout` seconds have passed (None: no limit)."""


class WallClock:
    def now(self) -> float:
        return time.time()

    async def wait(self, event: anyio.Event, timeout: float | None) -> None:
        if timeout is None:
            await event.wait()
            return
        with anyio.move_on_after(max(timeout, 0.0)):
            await event.wait()


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError, IndexError):
        return None


def classify(status: int) -> str:
    """delivered | failed | retry for an HTTP status."""
    if 200 <= status < 300:
        return "delivered"
    if status in (408, 429) or status >= 500 or status < 200:
        return "retry"
    return "failed"  # other 4xx, and 3xx: redirects are not followed


def _describe(resp: Response) -> str:
    text = resp.body.decode("utf-8", "replace").strip().replace("\n", " ")
    return f"HTTP {resp.status}" + (f": {text[:200]}" if text else "")


class WebhookSink:
    """One configured webhook: its outbox rows and the loop that delivers them."""

    def __init__(
        self,
        cfg: SinkConfig,
        store: Store,
        *,
        host: str | None = None,
        transport: Transport | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        rng: random.Random | None = None,
        base_delay: float = 1.0,
        max_delay: float = 600.0,
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.store = store
        self.host = host or socket.gethostname()
        self.transport = transport or HttpTransport()
        self.clock = clock or WallClock()
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._in_flight: set[str] = set()
        self._event = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._note = FailureNote(f"sink {self.name}: cannot write the outbox")

    # ---- the pipeline side ----

    async def send(self, finding: Finding) -> None:
        """Queue the finding in the outbox (never waits on the receiver)."""
        now = self.clock.now()
        payload = formats.body(
            self.cfg.format,
            finding,
            host=self.host,
            now=now,
            receiver=self.name,
            routing_key=self.cfg.routing_key,
        )
        try:
            queued = self.store.enqueue(finding.id, self.name, payload, now)
        except sqlite3.Error as e:
            self._note.failed(e)
            return
        self._note.worked()
        if queued:
            self._event.set()

    def pending(self) -> int:
        return self.store.depth().get(self.name, 0)

    async def drain(self, timeout: float) -> int:
        """Wait (real time, at most `timeout` s) until nothing is pending; what is left."""
        with anyio.move_on_after(timeout):
            while self.pending():
                await anyio.sleep(0.05)
        return self.pending()

    async def aclose(self) -> None:
        """Stop delivering; rows still pending stay in the outbox for the next start."""
        if self._scope is not None:
            self._scope.cancel()

    # ---- the delivery side ----

    async def run(self) -> None:
        """Deliver until cancelled (or `aclose`); start it beside the pipeline."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as tg:
                while True:
                    self._event = anyio.Event()  # fresh before looking: no lost wake-ups
                    now = self.clock.now()
                    free = self.cfg.concurrency - len(self._in_flight)
                    if free > 0:
                        limit = free + len(self._in_flight)
                        for row in self.store.due(self.name, now, limit):
                            if free == 0:
                                break
                            if row.id in self._in_flight:
                                continue
                            self._in_flight.add(row.id)
                            free -= 1
                            tg.start_soon(self._attempt, row)
                    timeout = None
                    if free > 0:
                        nxt = self._next_due()
                        if nxt is not None:
                            timeout = max(nxt - now, 0.0)
                    await self.clock.wait(self._event, timeout)

    def _next_due(self) -> float | None:
        rows = self.store.due(self.name, float("inf"), len(self._in_flight) + 1)
        return next((r.next_attempt for r in rows if r.id not in self._in_flight), None)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.inc("tracehound_deliveries_total", {"sink": self.name, "outcome": outcome})

    def _finish(self, row: OutboxRow, outcome: str, error: str | None = None) -> None:
        """delivered, failed or expired: recorded in the outbox and counted."""
        self.store.finish(row.id, self.name, outcome, error)
        self._count(outcome)

    async def _attempt(self, row: OutboxRow) -> None:
        try:
            await self._deliver(row)
        except sqlite3.Error as e:
            # The outcome could not be recorded (a full disk): the row stays pending;
            # hold it back a while rather than send it again at once.
            self._note.failed(e)
            await self.clock.wait(anyio.Event(), self.base_delay)
        finally:
            self._in_flight.discard(row.id)
            self._event.set()

    async def _deliver(self, row: OutboxRow) -> None:
        now = self.clock.now()
        max_age = self.cfg.max_age / _NS
        if now - row.created >= max_age:
            self._finish(row, "expired", row.last_error)
            return
        headers = formats.headers(row.id, row.body, secret=self.cfg.secret, now=now)
        try:
            resp = await self.transport.post(
                self.cfg.url, headers, row.body, self.cfg.timeout / _NS
            )
        except HttpError as e:
            self._retry(row, str(e), None)
            return
        outcome = classify(resp.status)
        if outcome == "delivered":
            self._finish(row, outcome)
        elif outcome == "failed":
            self._finish(row, outcome, _describe(resp))
        else:
            wait = retry_after(resp.headers.get("retry-after"), self.clock.now())
            self._retry(row, _describe(resp), wait)

    def _retry(self, row: OutboxRow, error: str, wait: float | None) -> None:
        now = self.clock.now()
        if wait is None:
            backoff = min(self.max_delay, self.base_delay * 2.0**row.attempts)
            wait = backoff * (0.5 + 0.5 * self.rng.random())  # jitter: spread retries
        if now + wait - row.created > self.cfg.max_age / _NS:
            self._finish(row, "expired", error)
            return
        self.store.retry(row.id, self.name, now + wait, error)
        self._count("retry")
