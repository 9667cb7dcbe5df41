"""Webhook bodies (config.md "Formats") and Standard Webhooks signing.

A body is built once, when the finding enters the outbox, so every retry sends the
same bytes; headers (and the signature's timestamp) are made per attempt, because
receivers reject stale Standard Webhooks timestamps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..config import WEBHOOK_FORMATS
from ..findings import Finding
from ..model import resolve_dotted
from ..render import field_kind, key_text, side_by_side, value_kind
from ..units import Kind, format_value

__all__ = [
    "FORMATS",
    "body",
    "evidence_text",
    "headers",
    "rfc3339",
    "sign",
]

FORMATS = WEBHOOK_FORMATS  # what config accepts is what body() can build
SLACK_SECTION = 3000  # characters of a section block's text
SLACK_BLOCKS = 50
PAGERDUTY_SUMMARY = 1024
_PD_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}


def rfc3339(t: float) -> str:
    """Wall-clock seconds as RFC 3339 in UTC with milliseconds (`…T12:00:00.000Z`)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def evidence_text(f: Finding) -> dict[str, str]:
    """Each evidence field's two histograms, side by side, as plain text."""
    out = {}
    for name, ev in f.evidence.items():
        titles = (f"window (n={ev.window.count})", f"baseline (n={ev.baseline.count})")
        out[name] = "\n".join(side_by_side(ev.window, ev.baseline, field_kind(name), titles))
    return out


def values_text(f: Finding) -> dict[str, str]:
    """Each value in its field's unit (`3ms`), as every format shows it to people."""
    return {k: format_value(v, value_kind(k)) for k, v in f.values.items()}


def _stream(f: Finding) -> str:
    """The stream the finding is about: its first value's, else evidence, else trigger."""
    for text in [*f.values, *f.evidence]:
        inner = text.split("(", 1)[-1].split(")")[0].split()[0] if text else ""
        r = resolve_dotted(inner)
        if r is not None:
            return r[0]
    if f.trigger is not None:
        return str(f.trigger.get("stream", ""))
    return ""


def _json(f: Finding, host: str, now: float) -> dict[str, Any]:
    obj: dict[str, Any] = msgspec.to_builtins(f)
    obj.update(id=f.id, host=host, time=rfc3339(now))
    return obj


def _alertmanager(f: Finding, host: str, now: float, receiver: str) -> dict[str, Any]:
    labels = {"alertname": f.rule, "severity": f.severity}
    for k, v in f.key.items():
        labels.setdefault(k, str(v))
    labels["host"] = host
    for k, v in (f.labels or {}).items():
        labels.setdefault(k, v)
    histograms = evidence_text(f)
    annotations = {
        "summary": f.summary,
        "description": f.description or f.summary,
        "values": ", ".join(f"{k} = {v}" for k, v in values_text(f).items()),
    }
    if histograms:
        annotations["histogram"] = "\n\n".join(f"{k}\n{t}" for k, t in histograms.items())
    group = {"alertname": f.rule}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{f.rule}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(now),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": f.id,
            }
        ],
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack(f: Finding, host: str) -> dict[str, Any]:
    title = f"*{f.severity.upper()}* `{f.rule}` {key_text(f.key)} on {host}".strip()
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(f"{title}\n{f.summary}", SLACK_SECTION)},
        }
    ]
    vals = "\n".join(f"• `{k}` = {v}" for k, v in values_text(f).items())
    if vals:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(vals, SLACK_SECTION)}}
        )
    for name, text in evidence_text(f).items():
        if len(blocks) >= SLACK_BLOCKS - 1:
            break
        code = _cut(f"{name}\n{text}", SLACK_SECTION - 6)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{code}```"}})
    if f.lost:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"evidence may be incomplete: {f.lost} samples lost"}
                ],
            }
        )
    return {
        "text": _cut(f"[{f.severity}] {f.rule}: {f.summary}", 3000),
        "blocks": blocks[:SLACK_BLOCKS],
    }


def _pagerduty(f: Finding, host: str, now: float, routing_key: str) -> dict[str, Any]:
    details: dict[str, Any] = {
        "values": values_text(f),
        "key": f.key,
        "histograms": evidence_text(f),
        "window": list(f.window),
    }
    if f.period is not None:
        details["period"] = format_value(float(f.period), Kind.DURATION)
    if f.lost:
        details["lost"] = f.lost
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": f.id,
        "payload": {
            "summary": _cut(f"{f.rule}: {f.summary}", PAGERDUTY_SUMMARY),
            "source": host,
            "severity": _PD_SEVERITY.get(f.severity, "warning"),
            "timestamp": rfc3339(now),
            "component": _stream(f),
            "group": f.rule,
            "class": f.rule,
            "custom_details": details,
        },
    }


def body(
    fmt: str, f: Finding, *, host: str, now: float, receiver: str = "", routing_key: str = ""
) -> bytes:
    """The request body of one finding in one format (`now`: wall-clock seconds)."""
    if fmt == "json":
        obj = _json(f, host, now)
    elif fmt == "alertmanager":
        obj = _alertmanager(f, host, now, receiver)
    elif fmt == "slack":
        obj = _slack(f, host)
    elif fmt == "pagerduty":
        obj = _pagerduty(f, host, now, routing_key)
    else:
        raise ValueError(f"unknown webhook format {fmt!r}")
    return msgspec.json.encode(obj)


def _key(secret: str) -> bytes:
    """Standard Webhooks secrets are `whsec_<base64>`; anything else is used as bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:], validate=True)
        except ValueError:
            pass
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, payload: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (Standard Webhooks)."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + payload, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def headers(msg_id: str, payload: bytes, *, secret: str, now: float) -> dict[str, str]:
    """Per-attempt headers: always `webhook-id`; signed when the sink has a secret."""
    h = {"content-type": "application/json", "webhook-id": msg_id}
    if secret:
        ts = int(now)
        h["webhook-timestamp"] = str(ts)
        h["webhook-signature"] = sign(secret, msg_id, ts, payload)
    return h
