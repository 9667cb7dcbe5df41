"""Console and JSON-lines sinks, the router, open_delivery, metrics, `findings` CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import anyio
import pytest

from engine.cli import main
from engine.config import parse_config
from engine.sinks.console import ConsoleSink
from engine.sinks.delivery import open_delivery
from engine.sinks.jsonl import JsonlSink
from engine.sinks.metrics import FAMILIES, Metrics, serve_metrics
from engine.sinks.store import Store

from .helpers import Server, make_finding


async def test_console_text_and_json() -> None:
    out = io.StringIO()
    c = ConsoleSink(out=out)
    await c.send(make_finding())
    assert "CRITICAL disk_p99_near_txg" in out.getvalue() and "distribution" in out.getvalue()
    out = io.StringIO()
    c = ConsoleSink(json=True, out=out)
    await c.send(make_finding())
    await c.send(make_finding(rule="b"))
    lines = out.getvalue().splitlines()
    assert [json.loads(ln)["rule"] for ln in lines] == ["disk_p99_near_txg", "b"]


async def test_jsonl_appends(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "f.jsonl"
    for rule in ("a", "b"):
        s = JsonlSink(p)
        await s.send(make_finding(rule=rule))
        await s.aclose()
    assert [json.loads(ln)["rule"] for ln in p.read_text().splitlines()] == ["a", "b"]


async def test_open_delivery_routes_by_severity_and_notify(tmp_path: Path) -> None:
    server = Server([])
    out = io.StringIO()
    metrics = Metrics()
    async with anyio.create_task_group() as tg:
        await tg.start(server.serve)
        cfg = parse_config(
            f'[engine]\nstate_dir = "{tmp_path}"\n'
            f'[[sink]]\nname = "hook"\nurl = "{server.url}"\nmin_severity = "critical"\n'
            f'[[sink]]\nname = "file"\ntype = "jsonl"\npath = "{tmp_path}/f.jsonl"\n'
        )
        async with open_delivery(
            cfg, console=ConsoleSink(json=True, out=out), metrics=metrics
        ) as r:
            assert r.names == ["hook", "file"]
            await r.send(make_finding(rule="crit"))
            await r.send(make_finding(rule="warn", severity="warning"))
            await r.send(make_finding(rule="only_file"), notify=["file"])
            await r.send(make_finding(rule="nowhere"), notify=[])
            assert 'tracehound_outbox_depth{sink="hook"}' in metrics.exposition()
        tg.cancel_scope.cancel()
    # console and store get everything; the webhook only critical and notified
    assert len(out.getvalue().splitlines()) == 4
    assert [json.loads(r.body)["rule"] for r in server.requests] == ["crit"]
    rules = [json.loads(ln)["rule"] for ln in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert rules == ["crit", "warn", "only_file"]
    st = Store.open(tmp_path)
    assert len(st.findings()) == 4
    assert st.outbox("hook")[0].state == "delivered"
    st.close()
    assert metrics.get("tracehound_findings_total", {"rule": "warn", "severity": "warning"}) == 1
    metrics.exposition()  # the closed store is no longer asked


async def _get_metrics(port: int) -> bytes:
    """The whole response to GET /metrics (the server closes the connection)."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        with anyio.fail_after(5):
            while True:
                try:
                    data += await stream.receive()
                except anyio.EndOfStream:
                    return data


async def test_metrics_endpoint() -> None:
    m = Metrics()
    m.inc("tracehound_findings_total", {"rule": "r", "severity": "warning"})
    m.inc("tracehound_findings_total", {"rule": "r", "severity": "warning"}, by=2)
    m.add_collector(
        lambda mm: mm.set("tracehound_events_received_total", {"stream": "disk.io"}, 42)
    )
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_metrics, m, "127.0.0.1", 0)
        data = await _get_metrics(port)
        tg.cancel_scope.cancel()
    head, _, body = data.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200") and "text/plain; version=0.0.4" in head
    assert 'tracehound_findings_total{rule="r",severity="warning"} 3' in body
    assert 'tracehound_events_received_total{stream="disk.io"} 42' in body
    for fam in FAMILIES:
        assert f"# TYPE {fam} " in body
    rss = [ln for ln in body.splitlines() if ln.startswith("process_resident_memory_bytes ")]
    assert rss and float(rss[0].split()[1]) > 0


async def test_metrics_survive_clients_that_hang_up() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_metrics, Metrics(), "127.0.0.1", 0)
        for request in (b"", b"GET /met"):  # nothing, or half a request, then gone
            s = await anyio.connect_tcp("127.0.0.1", port)
            if request:
                await s.send(request)
            await s.aclose()
        await anyio.sleep(0.2)
        data = await _get_metrics(port)
        tg.cancel_scope.cancel()
    assert data.startswith(b"HTTP/1.1 200")


def test_findings_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[engine]\nstate_dir = "{tmp_path / "state"}"\n')
    assert main(["findings", "--config", str(cfg)]) == 0  # nothing stored yet
    assert capsys.readouterr().out == ""
    st = Store.open(tmp_path / "state")
    st.add_finding(make_finding(rule="old"), now_ns=1_000_000_000)  # 1970
    st.add_finding(make_finding(rule="new"))
    st.close()
    assert main(["findings", "--config", str(cfg), "--json"]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["rule"] for r in rows] == ["old", "new"]
    assert main(["findings", "--config", str(cfg), "--json", "--since", "1h"]) == 0
    assert [json.loads(ln)["rule"] for ln in capsys.readouterr().out.splitlines()] == ["new"]
    assert main(["findings", "--config", str(cfg), "--rule", "old"]) == 0
    text = capsys.readouterr().out
    assert "old" in text and "CRITICAL".lower() in text and "new" not in text
    assert "dev=sda" in text and "p99 write latency" in text


def test_findings_command_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[engine]\nstate = "x"\n')
    assert main(["findings", "--config", str(cfg)]) == 2
    assert "engine.state" in capsys.readouterr().err
    cfg.write_text(f'[engine]\nstate_dir = "{tmp_path}"\n')
    assert main(["findings", "--config", str(cfg), "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert "--since" in err and "Traceback" not in err
