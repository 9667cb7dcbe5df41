"""The stream catalog: one typed record per stream, each field with its unit.

This is the one place streams are declared. The compiler reads field kinds from
`CATALOG`; the trace reader decodes lines into these records with msgspec (the
`stream` key is the tag); probes produce the same fields as columns. Adding a
stream is adding one class here.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Annotated, ClassVar

import msgspec

from .units import Kind

__all__ = [
    "CATALOG",
    "Event",
    "FieldSpec",
    "IntervalEvent",
    "StreamSpec",
    "resolve_dotted",
]

# Field types carry their unit as msgspec metadata; the catalog reads it back.
Duration = Annotated[int, msgspec.Meta(ge=0, extra={"kind": "duration"})]
Size = Annotated[int, msgspec.Meta(extra={"kind": "size"})]
Count = Annotated[int, msgspec.Meta(extra={"kind": "number"})]


class Event(msgspec.Struct, kw_only=True, tag_field="stream", omit_defaults=True):
    """A point event. `ts` is ns on CLOCK_MONOTONIC."""

    ts: int
    doc: ClassVar[str] = ""


class IntervalEvent(Event, kw_only=True):
    """An interval event: [ts, end], emitted at `end`."""

    end: int


class DiskIo(Event, tag="disk.io", kw_only=True):
    doc = "a block I/O request, at completion"
    dev: str
    op: str
    bytes: Size
    latency: Duration
    queue: Duration | None = None
    pid: Count
    comm: str


class ZfsTxgSync(IntervalEvent, tag="zfs.txg.sync", kw_only=True):
    doc = "a ZFS transaction group sync"
    pool: str
    txg: Count
    dirty: Size | None = None


class FsCommit(IntervalEvent, tag="fs.commit", kw_only=True):
    doc = "an ext4/jbd2 journal commit"
    dev: str
    tid: Count


class Memcg(Event, tag="memcg", kw_only=True):
    doc = "a memory cgroup's charge, sampled"
    cgroup: str
    usage: Size
    limit: Size | None = None


class OomKill(Event, tag="oom.kill", kw_only=True):
    doc = "the OOM killer chose a victim"
    pid: Count
    comm: str
    cgroup: str
    constraint: str
    rss: Size | None = None


class SchedRunq(Event, tag="sched.runq", kw_only=True):
    doc = "a task switched in after waiting on a run queue"
    pid: Count
    comm: str
    cpu: Count
    latency: Duration


class TcpRetransmit(Event, tag="tcp.retransmit", kw_only=True):
    doc = "a TCP segment retransmitted"
    saddr: str
    daddr: str
    sport: Count
    dport: Count
    state: str


class NetDrop(Event, tag="net.drop", kw_only=True):
    doc = "the kernel freed a packet it dropped"
    reason: str
    protocol: Count


class MmReclaim(IntervalEvent, tag="mm.reclaim", kw_only=True):
    doc = "a task in direct memory reclaim"
    pid: Count
    comm: str


class ProcExec(Event, tag="proc.exec", kw_only=True):
    doc = "a process called exec"
    pid: Count
    ppid: Count
    comm: str
    filename: str


class Lost(Event, tag="lost", kw_only=True):
    doc = "samples a probe lost (perf-buffer loss), stamped when the loss was seen"
    probe: str
    count: Count


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind  # NUMBER, DURATION, SIZE or STRING
    optional: bool


@dataclass(frozen=True, slots=True)
class StreamSpec:
    name: str
    interval: bool
    fields: dict[str, FieldSpec]  # not including ts/end
    record: type[Event]
    doc: str

    def numeric_fields(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.kind is not Kind.STRING]

    def string_fields(self) -> list[str]:
        return [f.name for f in self.fields.values() if f.kind is Kind.STRING]


def _field_kind(tp: object) -> tuple[Kind, bool]:
    optional = False
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        optional = len(inner) != len(args)
        tp = inner[0]
    if typing.get_origin(tp) is Annotated:
        base, *meta = typing.get_args(tp)
        for m in meta:
            if isinstance(m, msgspec.Meta) and m.extra and "kind" in m.extra:
                return Kind(m.extra["kind"]), optional
        tp = base
    if tp is str:
        return Kind.STRING, optional
    return Kind.NUMBER, optional


def _build_catalog() -> dict[str, StreamSpec]:
    out: dict[str, StreamSpec] = {}
    todo: list[type[Event]] = list(Event.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        tag = cls.__struct_config__.tag
        if cls is IntervalEvent or not isinstance(tag, str):
            continue
        hints = typing.get_type_hints(cls, include_extras=True)
        fields = {}
        for name in cls.__struct_fields__:
            if name in ("ts", "end"):
                continue
            kind, optional = _field_kind(hints[name])
            fields[name] = FieldSpec(name, kind, optional)
        out[tag] = StreamSpec(tag, issubclass(cls, IntervalEvent), fields, cls, cls.doc)
    return dict(sorted(out.items()))


CATALOG: dict[str, StreamSpec] = _build_catalog()


def resolve_dotted(dotted: str) -> tuple[str, str | None] | None:
    """Split `disk.io.latency` into (`disk.io`, `latency`), longest stream first.

    Returns (stream, None) for a bare stream name, None when no stream matches.
    The field is not checked against the stream here.
    """
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        head = ".".join(parts[:i])
        if head in CATALOG:
            rest = parts[i:]
            if not rest:
                return head, None
            return head, ".".join(rest)
    return None
