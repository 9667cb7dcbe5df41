"""Webhook bodies per format, and the Standard Webhooks signature checked independently."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest

from engine.findings import Finding
from engine.sinks import formats

from .helpers import make_finding

NOW = 1_700_000_000.25


def _body(fmt: str, f: Finding | None = None, **kw: str) -> dict:  # type: ignore[type-arg]
    f = f or make_finding()
    return json.loads(formats.body(fmt, f, host="db1", now=NOW, **kw))


def test_json_is_the_finding_plus_id_host_time() -> None:
    f = make_finding()
    b = _body("json", f)
    assert b["id"] == f.id and b["host"] == "db1"
    assert b["time"] == "2023-11-14T22:13:20.250Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", b["time"])
    own = json.loads(f.to_json())
    assert {k: b[k] for k in own} == own
    assert b["trigger"]["txg"] == 8812 and b["window"] == [12_300_000_000, 12_500_000_000]


def test_standard_webhooks_vector() -> None:
    # the example of the Standard Webhooks specification
    sig = formats.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signed_headers_verify() -> None:
    payload = formats.body("json", make_finding(), host="db1", now=NOW)
    h = formats.headers("abc123", payload, secret="s3cret", now=NOW)
    assert h["webhook-id"] == "abc123" and h["webhook-timestamp"] == "1700000000"
    mac = hmac.new(b"s3cret", b"abc123.1700000000." + payload, hashlib.sha256).digest()
    assert h["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    unsigned = formats.headers("abc123", payload, secret="", now=NOW)
    assert unsigned == {"content-type": "application/json", "webhook-id": "abc123"}


def test_alertmanager_v4() -> None:
    f = make_finding(labels={"team": "storage"}, description="disk vs txg")
    b = _body("alertmanager", f, receiver="ops")
    for k in (
        "version",
        "groupKey",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "truncatedAlerts",
        "alerts",
    ):
        assert k in b, k
    assert b["version"] == "4" and b["status"] == "firing" and b["receiver"] == "ops"
    (a,) = b["alerts"]
    for k in (
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    ):
        assert k in a, k
    assert a["labels"] == {
        "alertname": f.rule,
        "severity": "critical",
        "dev": "sda",
        "host": "db1",
        "team": "storage",
    }
    assert a["annotations"]["summary"] == f.summary
    assert a["annotations"]["description"] == "disk vs txg"
    assert "1.05ms -> 2.1ms" in a["annotations"]["histogram"]
    assert a["fingerprint"] == f.id and a["startsAt"] == "2023-11-14T22:13:20.250Z"


def test_slack_within_limits() -> None:
    b = _body("slack")
    assert "p99 write latency" in b["text"]
    assert 1 <= len(b["blocks"]) <= 50
    texts = [blk["text"]["text"] for blk in b["blocks"] if blk["type"] == "section"]
    assert all(len(t) <= 3000 for t in texts)
    code = [t for t in texts if t.startswith("```")]
    assert code and "window" in code[0] and "baseline" in code[0] and code[0].endswith("```")
    assert any("p99(disk.io.latency)" in t and "3ms" in t for t in texts)


def test_slack_long_summary_is_cut() -> None:
    f = make_finding(summary="x" * 5000, lost=3)
    b = _body("slack", f)
    assert all(len(blk["text"]["text"]) <= 3000 for blk in b["blocks"] if "text" in blk)
    assert "3 samples lost" in json.dumps(b)


def test_pagerduty_events_v2() -> None:
    f = make_finding(summary="y" * 2000)
    b = _body("pagerduty", f, routing_key="R1")
    assert b["routing_key"] == "R1" and b["event_action"] == "trigger"
    assert b["dedup_key"] == f.id
    p = b["payload"]
    assert len(p["summary"]) <= 1024
    assert p["source"] == "db1" and p["severity"] == "critical"
    assert p["component"] == "disk.io" and p["group"] == f.rule
    assert p["timestamp"] == "2023-11-14T22:13:20.250Z"
    d = p["custom_details"]
    assert d["key"] == {"dev": "sda"} and d["values"]["p99(disk.io.latency)"] == "3ms"
    assert "disk.io.latency" in d["histograms"]


@pytest.mark.parametrize("sev", ["info", "warning", "critical"])
def test_pagerduty_severity(sev: str) -> None:
    b = _body("pagerduty", make_finding(severity=sev), routing_key="R")
    assert b["payload"]["severity"] == sev


def test_unknown_format() -> None:
    with pytest.raises(ValueError):
        formats.body("xml", make_finding(), host="h", now=NOW)


def test_slack_many_fields_stay_under_50_blocks() -> None:
    f = make_finding()
    ev = next(iter(f.evidence.values()))
    many = make_finding(evidence={f"disk.io.f{i}": ev for i in range(80)}, lost=1)
    b = _body("slack", many)
    assert len(b["blocks"]) <= 50
