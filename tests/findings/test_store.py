"""The SQLite store: findings round trip, insert-or-ignore, filters, outbox rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.config import SinkConfig
from engine.errors import ConfigError
from engine.sinks.store import Store, StoreSink
from engine.sinks.webhook import WebhookSink

from .helpers import make_finding


def test_findings_round_trip(tmp_path: Path) -> None:
    st = Store.open(tmp_path / "state")
    f = make_finding()
    assert st.add_finding(f, now_ns=1000)
    assert not st.add_finding(f, now_ns=2000)  # same id: ignored
    other = make_finding(rule="other", window=(1, 2), severity="info", lost=5)
    assert st.add_finding(other, now_ns=3000)
    st.close()

    st = Store.open(tmp_path / "state")  # survives reopening
    rows = st.findings()
    assert [r.finding.rule for r in rows] == ["disk_p99_near_txg", "other"]
    assert rows[0].time == 1000 and rows[0].finding == f
    assert rows[0].finding.evidence == f.evidence and rows[0].finding.id == f.id
    assert rows[1].finding.lost == 5
    assert [r.finding.rule for r in st.findings(since_ns=2500)] == ["other"]
    assert [r.finding.rule for r in st.findings(rule="disk_p99_near_txg")] == ["disk_p99_near_txg"]
    assert st.findings(rule="nope") == []
    st.close()


def test_outbox_states(tmp_path: Path) -> None:
    st = Store(tmp_path / "t.db")
    assert st.enqueue("a", "ops", b"{}", now=100.0)
    assert not st.enqueue("a", "ops", b"{}", now=101.0)
    assert st.enqueue("a", "pager", b"{}", now=100.0)  # same finding, another sink
    assert st.enqueue("b", "ops", b"{}", now=105.0)
    assert [r.id for r in st.due("ops", 104.0, 10)] == ["a"]
    st.retry("a", "ops", 200.0, "HTTP 500")
    assert [r.id for r in st.due("ops", 150.0, 10)] == ["b"]
    assert st.next_due("ops") == 105.0
    st.finish("b", "ops", "delivered")
    assert st.next_due("ops") == 200.0
    assert st.depth() == {"ops": 1, "pager": 1}
    (a,) = [r for r in st.outbox("ops") if r.id == "a"]
    assert a.attempts == 1 and a.last_error == "HTTP 500" and a.state == "pending"
    st.finish("a", "ops", "failed", "HTTP 400")
    assert st.next_due("ops") is None and st.depth() == {"pager": 1}


def test_readonly_listing(tmp_path: Path) -> None:
    st = Store.open(tmp_path)
    st.add_finding(make_finding())
    st.close()
    ro = Store(tmp_path / "tracehound.db", readonly=True)
    assert len(ro.findings()) == 1
    with pytest.raises(sqlite3.OperationalError):
        ro.add_finding(make_finding(rule="x"))
    ro.close()


def test_unwritable_state_dir_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="state_dir"):
        Store.open(tmp_path / "file" / "sub")


def test_prune_keeps_pending(tmp_path: Path) -> None:
    st = Store(tmp_path / "t.db")
    for i, state in enumerate(["delivered", "failed", "expired", "pending"]):
        st.enqueue(str(i), "ops", b"{}", now=100.0)
        if state != "pending":
            st.finish(str(i), "ops", state)
    st.enqueue("new", "ops", b"{}", now=500.0)
    st.finish("new", "ops", "delivered")
    assert st.prune(200.0) == 3
    assert sorted(r.id for r in st.outbox()) == ["3", "new"]


class _FullStore(Store):
    """A store on a full disk: every write fails as SQLite reports it."""

    def add_finding(self, f: object, now_ns: int | None = None) -> bool:
        raise sqlite3.OperationalError("database or disk is full")

    def enqueue(self, id: str, sink: str, body: bytes, now: float) -> bool:
        raise sqlite3.OperationalError("database or disk is full")


async def test_full_disk_does_not_stop_the_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = _FullStore(tmp_path / "t.db")
    sink = StoreSink(st)
    cfg = SinkConfig(name="ops", type="webhook", url="http://127.0.0.1:9/")
    hook = WebhookSink(cfg, st, host="h1")
    for _ in range(3):
        await sink.send(make_finding())
        await hook.send(make_finding())
    err = capsys.readouterr().err
    assert err.count("sink store: cannot store findings") == 1
    assert err.count("sink ops: cannot write the outbox: database or disk is full") == 1
    st.close()
