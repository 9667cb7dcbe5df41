"""Counters and gauges, exposed at /metrics in the Prometheus text format.

The bus, sources and runtime keep their own counts (they must not depend on
sinks); the CLI registers collectors that copy those counts in at scrape time, so
a scrape costs the pipeline nothing between scrapes.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable, Mapping

import anyio
from anyio.abc import SocketStream

__all__ = ["FAMILIES", "Metrics", "serve_metrics"]

Labels = tuple[tuple[str, str], ...]

# name -> (type, help). Every family is listed even before its first sample.
FAMILIES: dict[str, tuple[str, str]] = {
    "tracehound_events_received_total": ("counter", "Events received, per stream."),
    "tracehound_events_lost_total": (
        "counter",
        "Events a probe lost (ring full, a run the kernel skipped, ...), per probe.",
    ),
    "tracehound_bus_dropped_total": ("counter", "Batches' events dropped, per subscriber."),
    "tracehound_late_events_total": ("counter", "Events that arrived behind the watermark."),
    "tracehound_rule_evaluations_total": ("counter", "Rule evaluations, per rule."),
    "tracehound_findings_total": ("counter", "Findings reported, per rule and severity."),
    "tracehound_deliveries_total": (
        "counter",
        "Webhook delivery attempts, per sink and outcome (delivered, failed, retry, expired).",
    ),
    "tracehound_outbox_depth": ("gauge", "Deliveries pending in the outbox, per sink."),
    "process_cpu_seconds_total": ("counter", "User and system CPU time of this process."),
    "process_resident_memory_bytes": ("gauge", "Resident memory of this process."),
}


def _labels(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class Metrics:
    """A registry of samples keyed by family and label set."""

    def __init__(self) -> None:
        self._values: dict[str, dict[Labels, float]] = {n: {} for n in FAMILIES}
        self._collectors: list[Callable[[Metrics], None]] = []

    def inc(self, name: str, labels: Mapping[str, str] | None = None, by: float = 1) -> None:
        fam = self._values.setdefault(name, {})
        key = _labels(labels)
        fam[key] = fam.get(key, 0) + by

    def set(self, name: str, labels: Mapping[str, str] | None, value: float) -> None:
        """Set a gauge, or a counter copied from a module that keeps its own count."""
        self._values.setdefault(name, {})[_labels(labels)] = value

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        return self._values.get(name, {}).get(_labels(labels), 0)

    def add_collector(self, fn: Callable[[Metrics], None]) -> None:
        """`fn(metrics)` runs before each exposition and may `set` current counts."""
        self._collectors.append(fn)

    def remove_collector(self, fn: Callable[[Metrics], None]) -> None:
        if fn in self._collectors:
            self._collectors.remove(fn)

    def _process(self) -> None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.set("process_cpu_seconds_total", None, ru.ru_utime + ru.ru_stime)
        try:
            with open("/proc/self/statm") as f:
                pages = int(f.read().split()[1])
            self.set("process_resident_memory_bytes", None, pages * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, IndexError):
            self.set("process_resident_memory_bytes", None, ru.ru_maxrss * 1024)

    def exposition(self) -> str:
        """The Prometheus text format (version 0.0.4)."""
        for fn in self._collectors:
            fn(self)
        self._process()
        out: list[str] = []
        for name in sorted(self._values):
            kind, help_ = FAMILIES.get(name, ("untyped", name))
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, v in sorted(self._values[name].items()):
                lab = ",".join(f'{k}="{_escape(val)}"' for k, val in labels)
                out.append(f"{name}{{{lab}}} {_num(v)}" if lab else f"{name} {_num(v)}")
        return "\n".join(out) + "\n"


async def _handle(metrics: Metrics, stream: SocketStream) -> None:
    async with stream:
        data = b""
        # A client may hang up before a whole request (a TCP health check, a port
        # scan): answer what arrived, never let it take the server down.
        gone = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
        with anyio.move_on_after(5), contextlib.suppress(*gone):
            while b"\r\n\r\n" not in data and len(data) < 16384:
                data += await stream.receive(4096)
        parts = data.split(b"\r\n", 1)[0].split()
        if len(parts) >= 2 and parts[0] == b"GET" and parts[1].split(b"?")[0] == b"/metrics":
            status, ctype = "200 OK", "text/plain; version=0.0.4; charset=utf-8"
            body = metrics.exposition().encode()
        else:
            status, ctype, body = "404 Not Found", "text/plain", b"try /metrics\n"
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(*gone):
            await stream.send(head.encode() + body)


async def serve_metrics(
    metrics: Metrics,
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve /metrics until cancelled; `task_status` gets the bound port (port 0 works)."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    async with listener:
        bound = listener.extra(anyio.abc.SocketAttribute.local_port)
        task_status.started(bound)
        await listener.serve(lambda s: _handle(metrics, s))
