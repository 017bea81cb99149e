"""The bus's own SQLite tables: inbox (handled event ids), outbox, dead letters, meta.

They live in the component's database, next to its state, so that a handler's state
change, the inbox record of its cause and the outbox rows of its effects share one
transaction.
"""

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

INBOX_RETENTION_S = 7 * 24 * 3600
_NORMAL = 1  # PRAGMA synchronous: in WAL mode, a commit that does not wait for the disk


def open_database(path: Path | str) -> sqlite_utils.Database:
    """Open (or create) a component database: WAL, fsync on commit, foreign keys on.

    `synchronous=FULL` makes a commit survive power loss, not only a process crash: the
    broker is told "done" (PUBACK) only after it, so it must outlive the machine.
    """
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    if str(path) != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


@dataclass(frozen=True)
class OutboxRow:
    """One event waiting to be published."""

    seq: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class BusStore:
    """Inbox, outbox, dead letters and the session counter of one component."""

    def __init__(self, db: sqlite_utils.Database, *, max_outbox: int = 10_000) -> None:
        self.db = db
        self.max_outbox = max_outbox
        self._synchronous = int(db.execute("PRAGMA synchronous").fetchone()[0])
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS bus_inbox (
                source TEXT NOT NULL, event_id TEXT NOT NULL, handled_at REAL NOT NULL,
                PRIMARY KEY (source, event_id));
            CREATE TABLE IF NOT EXISTS bus_outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
                droppable INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX IF NOT EXISTS bus_outbox_topic ON bus_outbox (topic);
            CREATE TABLE IF NOT EXISTS bus_dead_letters (
                id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, topic TEXT NOT NULL,
                reason TEXT NOT NULL, detail TEXT NOT NULL, event_id TEXT,
                payload_sha256 TEXT NOT NULL, payload_size INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS bus_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            """
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit: nested uses become savepoints."""
        with self.db.atomic():
            yield

    def claim(self, source: str, event_id: str) -> bool:
        """Record an event as handled; False if it already was (a redelivery)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO bus_inbox (source, event_id, handled_at) VALUES (?, ?, ?)",
            [source, event_id, time.time()],
        )
        return cursor.rowcount == 1

    def enqueue(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        retain: bool,
        droppable: bool = False,
        supersede: bool = False,
    ) -> None:
        """Queue one message for the relay, keeping the outbox bounded.

        A message that `supersede`s (a retained snapshot) replaces an unsent one on the same
        topic: the broker would keep only the last anyway. Past `max_outbox` rows, the oldest
        droppable rows go first; rows that are not droppable (job updates, assignments) are
        never dropped.
        """
        if supersede:
            self.db.execute("DELETE FROM bus_outbox WHERE topic = ? AND retain = 1", [topic])
        self.db.execute(
            "INSERT INTO bus_outbox (topic, payload, qos, retain, droppable)"
            " VALUES (?, ?, ?, ?, ?)",
            [topic, payload, qos, int(retain), int(droppable)],
        )
        excess = self.outbox_size() - self.max_outbox
        if excess > 0:
            self.db.execute(
                "DELETE FROM bus_outbox WHERE seq IN (SELECT seq FROM bus_outbox"
                " WHERE droppable = 1 ORDER BY seq LIMIT ?)",
                [excess],
            )

    def pending(self, limit: int) -> list[OutboxRow]:
        """The oldest unpublished messages, in the order they were queued."""
        rows = self.db.execute(
            "SELECT seq, topic, payload, qos, retain FROM bus_outbox ORDER BY seq LIMIT ?",
            [limit],
        ).fetchall()
        return [OutboxRow(s, t, bytes(p), q, bool(r)) for s, t, p, q, r in rows]

    def mark_sent(self, up_to_seq: int) -> None:
        """Forget messages the broker acknowledged.

        This commit does not wait for the disk (the next synced commit carries it): losing it
        to a power cut only republishes those messages, and every consumer dedupes them.
        """
        if self.db.conn.in_transaction or self._synchronous <= _NORMAL:
            self.db.execute("DELETE FROM bus_outbox WHERE seq <= ?", [up_to_seq])
            return
        self.db.execute(f"PRAGMA synchronous={_NORMAL}")
        try:
            self.db.execute("DELETE FROM bus_outbox WHERE seq <= ?", [up_to_seq])
        finally:
            self.db.execute(f"PRAGMA synchronous={self._synchronous}")

    def outbox_size(self) -> int:
        """How many messages wait for the relay."""
        return int(self.db.execute("SELECT count(*) FROM bus_outbox").fetchone()[0])

    def record_dead_letter(
        self,
        *,
        topic: str,
        reason: str,
        detail: str,
        event_id: str | None,
        payload: bytes,
    ) -> None:
        """Keep a local record of refused input (the DLQ topic gets the full event)."""
        self.db.execute(
            "INSERT INTO bus_dead_letters (at, topic, reason, detail, event_id, payload_sha256,"
            " payload_size) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                time.time(),
                topic,
                reason,
                detail,
                event_id,
                hashlib.sha256(payload).hexdigest(),
                len(payload),
            ],
        )

    def dead_letter_count(self) -> int:
        """How many inputs this component has refused."""
        return int(self.db.execute("SELECT count(*) FROM bus_dead_letters").fetchone()[0])

    def next_session(self) -> int:
        """Increment and return the session counter (one per process start)."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO bus_meta (key, value) VALUES ('session', 1)"
                " ON CONFLICT (key) DO UPDATE SET value = value + 1"
            )
            return int(
                self.db.execute("SELECT value FROM bus_meta WHERE key = 'session'").fetchone()[0]
            )

    def prune_inbox(self, *, older_than_s: float = INBOX_RETENTION_S) -> int:
        """Forget handled ids past the redelivery window; returns how many."""
        cursor = self.db.execute(
            "DELETE FROM bus_inbox WHERE handled_at < ?", [time.time() - older_than_s]
        )
        return cursor.rowcount
