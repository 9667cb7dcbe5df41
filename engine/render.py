"""A finding as text for people: what `replay` and `watch` print without `--json`.

The evidence histograms are drawn side by side (window beside baseline) in bcc's
`count distribution` layout, with bucket bounds in a human unit, because the
shape change between the two is usually the whole story.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .findings import Finding, Histogram
from .model import CATALOG, resolve_dotted
from .units import Kind, format_value

__all__ = [
    "field_kind",
    "format_ts",
    "key_text",
    "render_finding",
    "side_by_side",
    "trigger_text",
    "value_kind",
]

BAR = 24  # stars per histogram column; two columns fit a 100-column terminal
_AGG = re.compile(r"\s*(\w+)\(\s*([A-Za-z_][\w.]*)")


def field_kind(dotted: str) -> Kind:
    """The kind of `stream.field` from the catalog; NUMBER when it is not a field."""
    r = resolve_dotted(dotted)
    if r is None or r[1] is None:
        return Kind.NUMBER
    spec = CATALOG[r[0]].fields.get(r[1])
    return spec.kind if spec is not None else Kind.NUMBER


def value_kind(text: str) -> Kind:
    """The kind of an aggregate from its canonical text (`p99(disk.io.latency)`)."""
    m = _AGG.match(text)
    if m is None:
        return Kind.NUMBER
    func, arg = m.group(1), m.group(2)
    if func == "count":
        return Kind.NUMBER
    if func == "rate":
        return Kind.RATE
    kind = field_kind(arg)
    if func == "growth":
        return kind.per_second()
    return kind


def format_ts(ts: int) -> str:
    """Event time (ns on the monotonic clock) as seconds with microseconds."""
    return f"{ts / 1e9:.6f}s"


def _bound(x: int, kind: Kind) -> str:
    return format_value(float(x), kind) if x else "0"


def _rows(h: Histogram) -> dict[tuple[int, int], int]:
    return {(lo, hi): c for lo, hi, c in h.buckets}


def _bar(count: int, peak: int) -> str:
    n = 0 if peak == 0 else round(count * BAR / peak)
    if count and n == 0:
        n = 1  # a non-empty bucket always shows
    return "|" + ("*" * n).ljust(BAR) + "|"


def side_by_side(
    window: Histogram, baseline: Histogram, kind: Kind, titles: tuple[str, str]
) -> list[str]:
    """Two histograms over the same bucket rows, bcc style, one line per bucket."""
    w, b = _rows(window), _rows(baseline)
    bounds = sorted(set(w) | set(b))
    if bounds:
        # Fill the gaps so both columns read as one continuous scale.
        lo_i = bounds[0][1].bit_length() - 1
        hi_i = bounds[-1][1].bit_length() - 1
        bounds = [((0 if i == 0 else 1 << (i - 1)), 1 << i) for i in range(lo_i, hi_i + 1)]
    labels = [f"{_bound(lo, kind)} -> {_bound(hi, kind)}" for lo, hi in bounds]
    lw = max([len(s) for s in labels] + [len(_unit_name(kind))])
    col = 8 + BAR + 2
    head = f"{'':>{lw}}   {titles[0]:<{col}}   {titles[1]}"
    sub = f"{_unit_name(kind):>{lw}} : {'count':<7} distribution{'':<{col - 20}}"
    sub += f" : {'count':<7} distribution"
    out = [head.rstrip(), sub.rstrip()]
    pw = max(w.values(), default=0)
    pb = max(b.values(), default=0)
    for label, key in zip(labels, bounds, strict=True):
        cw, cb = w.get(key, 0), b.get(key, 0)
        out.append(f"{label:>{lw}} : {cw:<7} {_bar(cw, pw)} : {cb:<7} {_bar(cb, pb)}")
    if not bounds:
        out.append(f"{'':>{lw}}   (no samples in either)")
    return out


def _unit_name(kind: Kind) -> str:
    return {Kind.DURATION: "latency", Kind.SIZE: "size"}.get(kind, "value")


def _stats(h: Histogram, kind: Kind) -> str:
    if h.count == 0:
        return "n=0"
    f = [format_value(x, kind) for x in (h.p50, h.p90, h.p99, h.max)]
    return f"n={h.count} p50={f[0]} p90={f[1]} p99={f[2]} max={f[3]}"


def _field_text(stream: str | None, name: str, value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and stream in CATALOG:
        spec = CATALOG[stream].fields.get(name)
        if spec is not None and spec.kind in (Kind.DURATION, Kind.SIZE):
            return f"{name}={format_value(float(value), spec.kind)}"
    return f"{name}={value}"


def trigger_text(trigger: Mapping[str, Any]) -> str:
    """`zfs.txg.sync at 12.3s (190ms) pool=tank txg=8812`."""
    stream = trigger.get("stream")
    ts = trigger.get("ts")
    end = trigger.get("end")
    parts = [str(stream)]
    if isinstance(ts, int):
        parts.append(f"at {format_ts(ts)}")
        if isinstance(end, int) and end != ts:
            parts.append(f"({format_value(float(end - ts), Kind.DURATION)})")
    s = str(stream) if isinstance(stream, str) else None
    parts += [
        _field_text(s, k, v)
        for k, v in trigger.items()
        if k not in ("stream", "ts", "end") and v is not None
    ]
    return " ".join(parts)


def key_text(key: Mapping[str, Any]) -> str:
    """`{dev=sda}`; empty for a rule without `by`."""
    return "{" + ", ".join(f"{k}={v}" for k, v in key.items()) + "}" if key else ""


def render_finding(f: Finding) -> str:
    """The whole finding as readable text; value units are read off each value's text."""
    start, end = f.window
    lines = [
        f"[{format_ts(f.ts)}] {f.severity.upper()} {f.rule} {key_text(f.key)}".rstrip(),
        f"  {f.summary}",
        f"  window: {format_ts(start)} .. {format_ts(end)}"
        f" ({format_value(float(end - start), Kind.DURATION)})",
    ]
    if f.values:
        lines.append("  values:")
        for text, v in f.values.items():
            lines.append(f"    {text} = {format_value(v, value_kind(text))}")
    if f.trigger is not None:
        lines.append(f"  trigger: {trigger_text(f.trigger)}")
    for name, ev in f.evidence.items():
        kind = field_kind(name)
        lines.append(f"  {name}:")
        lines.append(f"    window:   {_stats(ev.window, kind)}")
        lines.append(f"    baseline: {_stats(ev.baseline, kind)}")
        titles = (f"window (n={ev.window.count})", f"baseline (n={ev.baseline.count})")
        lines += ["    " + s for s in side_by_side(ev.window, ev.baseline, kind, titles)]
    if f.period is not None:
        n = len(f.episodes or [])
        eps = ", ".join(format_ts(t) for t in f.episodes or [])
        lines.append(
            f"  period: {format_value(float(f.period), Kind.DURATION)} over {n} episodes"
            + (f": {eps}" if eps else "")
        )
    if f.explain:
        lines.append("  explain (best first):")
        lines.append(f"    {'stream':<20} {'lift':>7} {'support':>8} {'coverage':>9}")
        for e in f.explain:
            lines.append(
                f"    {e.stream:<20} {e.lift:>7.2f} {e.support:>8} {e.coverage * 100:>8.1f}%"
            )
    if f.lost > 0:
        lines.append(f"  note: evidence may be incomplete: {f.lost} samples lost")
    return "\n".join(lines)
