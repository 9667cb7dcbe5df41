"""The SQLite store in `state_dir`: findings, and the durable webhook outbox.

One database file holds both so that a finding and its pending deliveries are
written together and survive a restart together. Writes are single small
statements on a local file (WAL), cheap enough to run on the event loop.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ..errors import ConfigError
from ..findings import Finding
from .base import FailureNote

__all__ = ["DB_NAME", "OutboxRow", "Store", "StoreSink", "StoredFinding"]

DB_NAME = "tracehound.db"
KEEP_FINISHED = 7 * 86400.0  # seconds a finished outbox row is kept for inspection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    ts INTEGER NOT NULL,
    key TEXT NOT NULL,
    json TEXT NOT NULL,
    time INTEGER NOT NULL  -- wall clock (ns since the epoch) when stored
);
CREATE INDEX IF NOT EXISTS findings_time ON findings(time);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT NOT NULL,
    sink TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,  -- wall clock, seconds
    state TEXT NOT NULL DEFAULT 'pending',  -- pending delivered failed expired
    last_error TEXT,
    created REAL NOT NULL,  -- wall clock, seconds: max_age counts from here
    PRIMARY KEY (id, sink)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(sink, state, next_attempt);
"""


@dataclass(frozen=True, slots=True)
class StoredFinding:
    time: int  # wall clock ns when stored
    finding: Finding
    json: bytes


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: str
    sink: str
    body: bytes
    attempts: int
    next_attempt: float
    state: str
    last_error: str | None
    created: float


_decoder = msgspec.json.Decoder(Finding)


class Store:
    """Findings and outbox in one SQLite file."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """`readonly`: for listing (`tracehound findings`) by users who cannot write."""
        self.path = Path(path)
        try:
            if readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, isolation_level=None)
                self.db.execute("SELECT 1 FROM findings LIMIT 1")
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self.prune(time.time() - KEEP_FINISHED)
        except (OSError, sqlite3.Error) as e:
            raise ConfigError(
                f"cannot open the findings store {self.path}: {e}"
                " (set engine.state_dir to a writable folder)"
            ) from None

    @classmethod
    def open(cls, state_dir: str | Path) -> Store:
        return cls(Path(state_dir) / DB_NAME)

    def close(self) -> None:
        self.db.close()

    # ---- findings ----

    def add_finding(self, f: Finding, now_ns: int | None = None) -> bool:
        """Insert unless a finding with this id is stored already; True if inserted."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        cur = self.db.execute(
            "INSERT OR IGNORE INTO findings (id, rule, severity, ts, key, json, time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                f.id,
                f.rule,
                f.severity,
                f.ts,
                msgspec.json.encode(f.key).decode(),
                f.to_json().decode(),
                now_ns,
            ),
        )
        return cur.rowcount == 1

    def findings(
        self, since_ns: int | None = None, rule: str | None = None, limit: int | None = None
    ) -> list[StoredFinding]:
        """Stored findings, oldest first; `since_ns` is wall-clock ns since the epoch."""
        q = "SELECT time, json FROM findings WHERE 1=1"
        args: list[object] = []
        if since_ns is not None:
            q += " AND time >= ?"
            args.append(since_ns)
        if rule is not None:
            q += " AND rule = ?"
            args.append(rule)
        q += " ORDER BY time, ts, id"
        if limit is not None:
            q += " LIMIT ?"
            args.append(limit)
        out = []
        for t, js in self.db.execute(q, args):
            raw = js.encode()
            out.append(StoredFinding(int(t), _decoder.decode(raw), raw))
        return out

    # ---- outbox ----

    def enqueue(self, id: str, sink: str, body: bytes, now: float) -> bool:
        """Add a pending delivery (before any attempt); False if it was there already."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO outbox (id, sink, body, next_attempt, created)"
            " VALUES (?, ?, ?, ?, ?)",
            (id, sink, body, now, now),
        )
        return cur.rowcount == 1

    def due(self, sink: str, now: float, limit: int) -> list[OutboxRow]:
        return self._rows(
            "WHERE sink = ? AND state = 'pending' AND next_attempt <= ?"
            " ORDER BY next_attempt, created LIMIT ?",
            (sink, now, limit),
        )

    def next_due(self, sink: str) -> float | None:
        """When the earliest pending delivery of this sink is due (None: nothing pending)."""
        row = self.db.execute(
            "SELECT MIN(next_attempt) FROM outbox WHERE sink = ? AND state = 'pending'", (sink,)
        ).fetchone()
        return None if row[0] is None else float(row[0])

    def outbox(self, sink: str | None = None) -> list[OutboxRow]:
        if sink is None:
            return self._rows("ORDER BY created, id", ())
        return self._rows("WHERE sink = ? ORDER BY created, id", (sink,))

    def _rows(self, where: str, args: tuple[object, ...]) -> list[OutboxRow]:
        q = (
            "SELECT id, sink, body, attempts, next_attempt, state, last_error, created"
            f" FROM outbox {where}"
        )
        return [OutboxRow(*r) for r in self.db.execute(q, args)]

    def finish(self, id: str, sink: str, state: str, error: str | None = None) -> None:
        """delivered, failed or expired: the row leaves the pending set for good."""
        self.db.execute(
            "UPDATE outbox SET state = ?, attempts = attempts + ?, last_error = ?"
            " WHERE id = ? AND sink = ?",
            (state, 0 if state == "expired" else 1, error, id, sink),
        )

    def retry(self, id: str, sink: str, next_attempt: float, error: str) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ?"
            " WHERE id = ? AND sink = ?",
            (next_attempt, error, id, sink),
        )

    def prune(self, before: float) -> int:
        """Drop finished (not pending) outbox rows created before `before` (wall s)."""
        cur = self.db.execute(
            "DELETE FROM outbox WHERE state != 'pending' AND created < ?", (before,)
        )
        return cur.rowcount

    def depth(self) -> dict[str, int]:
        """Pending deliveries per sink (the outbox-depth metric)."""
        q = "SELECT sink, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY sink"
        return {s: int(n) for s, n in self.db.execute(q)}


class StoreSink:
    """The store as a sink: every finding is kept, whatever its severity."""

    name = "store"

    def __init__(self, store: Store) -> None:
        self.store = store
        self._note = FailureNote(f"sink store: cannot store findings in {store.path}")

    async def send(self, finding: Finding) -> None:
        try:
            self.store.add_finding(finding)
        except sqlite3.Error as e:
            self._note.failed(e)
        else:
            self._note.worked()

    async def aclose(self) -> None:
        """The store outlives this sink (webhooks share it); its owner closes it."""
