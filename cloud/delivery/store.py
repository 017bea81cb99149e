"""The Delivery service's tables: deliveries, their history and journal, jobs, parked updates."""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from contracts.events import TraceEntry
from contracts.ids import Location
from contracts.states import TERMINAL_STAGES, DeliveryStage


@dataclass(frozen=True)
class Tracked:
    """One delivery as its client sees it, plus what the service needs to move it on."""

    delivery_id: str
    stage: DeliveryStage
    version: int  # 0 until first published
    drone_id: str | None = None
    job_id: str | None = None
    eta: datetime | None = None
    location: Location | None = None
    package_ready: bool = False
    pickup: Location | None = None
    dropoff: Location | None = None


@dataclass(frozen=True)
class KnownJob:
    """A job the scheduler assigned to this delivery."""

    job_id: str
    delivery_id: str
    drone_id: str
    retired: bool  # failed, cancelled or replaced: its updates no longer count


_TRACKED = (
    "SELECT delivery_id, stage, version, drone_id, job_id, eta, location, package_ready,"
    " pickup, dropoff FROM deliveries"
)


class DeliveryStore:
    """All of the Delivery service's durable state, in the same database as its bus."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS deliveries (
                delivery_id TEXT PRIMARY KEY, stage TEXT NOT NULL, version INTEGER NOT NULL,
                drone_id TEXT, job_id TEXT, eta TEXT, location TEXT, reason TEXT,
                package_ready INTEGER NOT NULL DEFAULT 0, pickup TEXT, dropoff TEXT,
                updated_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS delivery_history (
                delivery_id TEXT NOT NULL, version INTEGER NOT NULL, stage TEXT NOT NULL,
                at TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
                reason TEXT, PRIMARY KEY (delivery_id, version));
            CREATE TABLE IF NOT EXISTS delivery_jobs (
                job_id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, drone_id TEXT NOT NULL,
                retired INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS delivery_parked (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL,
                topic TEXT NOT NULL, payload BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS delivery_parked_job ON delivery_parked (job_id);
            CREATE TABLE IF NOT EXISTS delivery_journal (
                seq INTEGER PRIMARY KEY AUTOINCREMENT, delivery_id TEXT NOT NULL,
                event_id TEXT NOT NULL, entry TEXT NOT NULL, UNIQUE (delivery_id, event_id));
            """
        )

    def get(self, delivery_id: str) -> Tracked | None:
        """One delivery."""
        row = self._db.execute(f"{_TRACKED} WHERE delivery_id = ?", [delivery_id]).fetchone()
        return _tracked(row) if row else None

    def ensure(self, delivery_id: str) -> Tracked:
        """The delivery, created as Requested (unpublished) by whichever event comes first."""
        self._db.execute(
            "INSERT OR IGNORE INTO deliveries (delivery_id, stage, version, updated_at)"
            " VALUES (?, ?, 0, ?)",
            [delivery_id, DeliveryStage.REQUESTED, time.time()],
        )
        tracked = self.get(delivery_id)
        assert tracked is not None  # noqa: S101 - just written
        return tracked

    def update(self, delivery_id: str, **changes: Any) -> None:  # noqa: ANN401
        """Change columns of one delivery (models and times are stored as JSON text)."""
        values = [_column(v) for v in changes.values()]
        columns = ", ".join(f"{name} = ?" for name in changes)
        self._db.execute(
            f"UPDATE deliveries SET {columns}, updated_at = ? WHERE delivery_id = ?",  # noqa: S608
            [*values, time.time(), delivery_id],
        )

    def record_version(
        self,
        tracked: Tracked,
        *,
        at: datetime,
        event_id: str,
        event_type: str,
        reason: str | None,
    ) -> None:
        """Keep the published version in the history."""
        self._db.execute(
            "INSERT INTO delivery_history (delivery_id, version, stage, at, event_id,"
            " event_type, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                tracked.delivery_id,
                tracked.version,
                tracked.stage,
                at.isoformat(),
                event_id,
                event_type,
                reason,
            ],
        )

    def history(self, delivery_id: str) -> list[tuple[int, DeliveryStage, str | None]]:
        """(version, stage, reason) of every published version, oldest first."""
        rows = self._db.execute(
            "SELECT version, stage, reason FROM delivery_history WHERE delivery_id = ?"
            " ORDER BY version",
            [delivery_id],
        ).fetchall()
        return [(v, DeliveryStage(s), r) for v, s, r in rows]

    def flying(self) -> dict[str, str]:
        """Drone -> delivery for every delivery that is under way with a drone."""
        terminal = ", ".join(f"'{s.value}'" for s in TERMINAL_STAGES)
        rows = self._db.execute(
            "SELECT drone_id, delivery_id FROM deliveries WHERE drone_id IS NOT NULL"  # noqa: S608 - enum values
            f" AND stage NOT IN ({terminal})"
        ).fetchall()
        return dict(rows)

    # --- journal ---------------------------------------------------------------------------

    def journal(self, delivery_id: str, entry: TraceEntry) -> None:
        """Keep one event of a delivery; the same event again is kept once."""
        self._db.execute(
            "INSERT OR IGNORE INTO delivery_journal (delivery_id, event_id, entry)"
            " VALUES (?, ?, ?)",
            [delivery_id, entry.id, entry.model_dump_json(exclude_none=True)],
        )

    def journal_of(self, delivery_id: str, limit: int) -> tuple[list[TraceEntry], bool]:
        """The first `limit` journal entries of a delivery in arrival order, and whether more."""
        rows = self._db.execute(
            "SELECT entry FROM delivery_journal WHERE delivery_id = ? ORDER BY seq LIMIT ?",
            [delivery_id, limit + 1],
        ).fetchall()
        entries = [TraceEntry.model_validate_json(row[0]) for row in rows[:limit]]
        return entries, len(rows) > limit

    # --- jobs ------------------------------------------------------------------------------

    def job(self, job_id: str) -> KnownJob | None:
        """A job assigned to some delivery."""
        row = self._db.execute(
            "SELECT job_id, delivery_id, drone_id, retired FROM delivery_jobs WHERE job_id = ?",
            [job_id],
        ).fetchone()
        return KnownJob(row[0], row[1], row[2], bool(row[3])) if row else None

    def add_job(self, job_id: str, delivery_id: str, drone_id: str, *, retired: bool) -> None:
        """Record an assignment."""
        self._db.execute(
            "INSERT INTO delivery_jobs (job_id, delivery_id, drone_id, retired)"
            " VALUES (?, ?, ?, ?)",
            [job_id, delivery_id, drone_id, int(retired)],
        )

    def retire_job(self, job_id: str) -> None:
        """A job whose updates no longer move its delivery."""
        self._db.execute("UPDATE delivery_jobs SET retired = 1 WHERE job_id = ?", [job_id])

    def park(self, job_id: str, topic: str, payload: bytes) -> None:
        """Keep an update of a job whose assignment has not arrived yet."""
        self._db.execute(
            "INSERT INTO delivery_parked (job_id, topic, payload) VALUES (?, ?, ?)",
            [job_id, topic, payload],
        )

    def unpark(self, job_id: str) -> list[tuple[str, bytes]]:
        """The parked updates of a job, in arrival order, removed."""
        rows = self._db.execute(
            "SELECT topic, payload FROM delivery_parked WHERE job_id = ? ORDER BY seq", [job_id]
        ).fetchall()
        self._db.execute("DELETE FROM delivery_parked WHERE job_id = ?", [job_id])
        return [(t, bytes(p)) for t, p in rows]


def _column(value: object) -> object:
    if isinstance(value, Location):
        return value.model_dump_json()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _tracked(row: tuple[Any, ...]) -> Tracked:
    delivery_id, stage, version, drone_id, job_id, eta, location, ready, pickup, dropoff = row
    return Tracked(
        delivery_id=delivery_id,
        stage=DeliveryStage(stage),
        version=version,
        drone_id=drone_id,
        job_id=job_id,
        eta=datetime.fromisoformat(eta) if eta else None,
        location=Location.model_validate_json(location) if location else None,
        package_ready=bool(ready),
        pickup=Location.model_validate_json(pickup) if pickup else None,
        dropoff=Location.model_validate_json(dropoff) if dropoff else None,
    )
