"""Shared test helpers: a sample finding, a scripted local HTTP server, a manual clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import numpy as np

from engine.findings import Evidence, Finding
from engine.runtime.histogram import histogram


def make_finding(**kw: Any) -> Finding:
    window = histogram(np.array([1.5e6, 1.6e6, 1.7e6, 3e6], dtype=np.float64))
    base = histogram(np.array([40e3] * 10 + [50e3] * 6, dtype=np.float64))
    args: dict[str, Any] = dict(
        rule="disk_p99_near_txg",
        severity="critical",
        ts=12_500_000_000,
        window=(12_300_000_000, 12_500_000_000),
        key={"dev": "sda"},
        values={"p99(disk.io.latency)": 3e6, "count(disk.io)": 4.0},
        trigger={
            "stream": "zfs.txg.sync",
            "ts": 12_310_000_000,
            "end": 12_500_000_000,
            "pool": "tank",
            "txg": 8812,
        },
        evidence={"disk.io.latency": Evidence(window, base)},
        summary="p99 write latency on sda rose from 40us to 3ms",
        lost=0,
    )
    args.update(kw)
    return Finding(**args)


class ManualClock:
    """Wall time that only moves when the delivery loop waits with a timeout."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t
        self.waits: list[float] = []

    def now(self) -> float:
        return self.t

    async def wait(self, event: anyio.Event, timeout: float | None) -> None:
        if timeout is None:
            await event.wait()
            return
        await anyio.sleep(0.001)
        if not event.is_set():
            self.waits.append(timeout)
            self.t += timeout


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # the clock's time when it arrived


@dataclass
class Server:
    """Answers each request with the next scripted (status, headers, body)."""

    script: list[tuple[int, dict[str, str], bytes]]
    clock: Callable[[], float] = lambda: 0.0
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            while len(body) < n:
                body += await stream.receive()
            self.requests.append(Request(method, path, headers, body, self.clock()))
            status, hdrs, out = self.script.pop(0) if self.script else (200, {}, b"")
            extra = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
            await stream.send(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(out)}\r\n{extra}"
                f"Connection: close\r\n\r\n".encode()
                + out
            )

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
            task_status.started()
            await listener.serve(self._handle)
