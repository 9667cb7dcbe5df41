"""A minimal HTTP/1.1 POST client on anyio: all webhook delivery needs.

Delivery needs the status, `Retry-After` and a little of the body for the error
log; one request per connection (`Connection: close`) keeps it small and correct,
and avoids a dependency. TLS uses the system trust store (ssl default context).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import anyio
import anyio.abc

__all__ = ["HttpError", "HttpTransport", "Response", "Transport"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 4096


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes  # at most the first 4 KiB


class HttpError(Exception):
    """A request that got no HTTP answer: connection, TLS, protocol or timeout."""


class Transport(Protocol):
    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> Response: ...


class HttpTransport:
    """POST over a fresh TCP (and TLS for https) connection per request."""

    def __init__(self, user_agent: str = "tracehound/0.1") -> None:
        self.user_agent = user_agent
        self._ssl: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def post(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout: float
    ) -> Response:
        u = urlsplit(url)
        tls = u.scheme == "https"
        try:
            port = u.port or (443 if tls else 80)
        except ValueError:  # a port out of range, or not a number
            port = -1
        if u.scheme not in ("http", "https") or not u.hostname or port < 0:
            raise HttpError(f"not an http(s) URL: {url}")
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        host = u.hostname if u.port is None else f"{u.hostname}:{u.port}"
        lines = [
            f"POST {target} HTTP/1.1",
            f"Host: {host}",
            f"User-Agent: {self.user_agent}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        try:
            with anyio.fail_after(timeout):
                stream: anyio.abc.ByteStream
                if tls:
                    stream = await anyio.connect_tcp(
                        u.hostname,
                        port,
                        ssl_context=self._context(),
                        tls_standard_compatible=False,
                    )
                else:
                    stream = await anyio.connect_tcp(u.hostname, port)
                async with stream:
                    await stream.send(request)
                    return await _read_response(stream)
        except TimeoutError:
            raise HttpError(f"timed out after {timeout:g}s") from None
        except (OSError, anyio.BrokenResourceError, anyio.EndOfStream, ssl.SSLError) as e:
            raise HttpError(f"{type(e).__name__}: {e}") from None


async def _read_response(stream: anyio.abc.ByteStream) -> Response:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > _MAX_HEAD:
            raise HttpError("response head too large")
        try:
            chunk = await stream.receive(65536)
        except anyio.EndOfStream:
            raise HttpError("connection closed before a response") from None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP response: {status_line[:80]!r}")
    hdrs: dict[str, str] = {}
    for line in header_lines:
        k, sep, v = line.partition(":")
        if sep:
            hdrs[k.strip().lower()] = v.strip()
    status = int(parts[1])
    want = 0 if 200 <= status < 300 else _MAX_BODY  # a body only helps the error log
    if "content-length" in hdrs and hdrs["content-length"].isdigit():
        want = min(want, int(hdrs["content-length"]))
    body = rest
    with anyio.move_on_after(1):  # the body is only for the error log: don't wait long
        while len(body) < want:
            try:
                body += await stream.receive(want - len(body))
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                break
    return Response(status, hdrs, body[:want])
