"""The minimal HTTP client: answers, Retry-After, bodies for errors, timeouts, refusals."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from engine.sinks.http import HttpError, HttpTransport

from .helpers import Server


async def test_post_reads_status_headers_and_error_body() -> None:
    server = Server([(503, {"Retry-After": "7"}, b"busy"), (201, {}, b"ok")])
    t = HttpTransport()
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        r1 = await t.post(server.url + "?a=1", {"x-test": "1"}, b'{"k": 1}', 5)
        r2 = await t.post(server.url, {}, b"{}", 5)
        tg.cancel_scope.cancel()
    assert (r1.status, r1.headers["retry-after"], r1.body) == (503, "7", b"busy")
    assert r2.status == 201 and r2.body == b""  # a 2xx body is not needed
    req = server.requests[0]
    assert req.path == "/hook?a=1" and req.headers["x-test"] == "1"
    assert req.body == b'{"k": 1}' and req.headers["host"] == f"127.0.0.1:{server.port}"


async def test_timeout_and_refused_are_http_errors() -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await anyio.sleep_forever()

    t = HttpTransport()
    async with anyio.create_task_group() as tg:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, silent)
        with pytest.raises(HttpError, match="timed out"):
            await t.post(f"http://127.0.0.1:{port}/", {}, b"{}", 0.2)
        tg.cancel_scope.cancel()
    with pytest.raises(HttpError):
        await t.post("http://127.0.0.1:9/", {}, b"{}", 2)
    with pytest.raises(HttpError):
        await t.post("ftp://x/", {}, b"{}", 2)
    for bad_port in ("http://x:99999/", "http://x:abc/"):
        with pytest.raises(HttpError, match="not an http"):
            await t.post(bad_port, {}, b"{}", 2)


async def test_garbage_answer_is_an_http_error() -> None:
    async def garbage(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(b"SSH-2.0-OpenSSH\r\n\r\n")

    t = HttpTransport()
    async with anyio.create_task_group() as tg:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, garbage)
        with pytest.raises(HttpError, match="not an HTTP response"):
            await t.post(f"http://127.0.0.1:{port}/", {}, b"{}", 2)
        tg.cancel_scope.cancel()
