"""The agent's SQLite state: the current job, so a restarted agent resumes it."""

import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from contracts.events import JobOffered, JobPhase, PackageState


@dataclass(frozen=True)
class JobRecord:
    """A job this drone accepted, as far as it got."""

    offer: JobOffered
    offer_event_id: str
    phase: JobPhase
    package: PackageState
    outcome: str | None  # None while the job can still succeed: succeeded | failed | cancelled
    closed: bool  # landed again after the job; the drone is free
    update_seq: int

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self.offer.job_id


class AgentStore:
    """Jobs of one drone, in the same database as its bus (one transaction for both)."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        db.execute(
            """CREATE TABLE IF NOT EXISTS agent_jobs (
                job_id TEXT PRIMARY KEY, offer TEXT NOT NULL, offer_event_id TEXT NOT NULL,
                phase TEXT NOT NULL, package TEXT NOT NULL, outcome TEXT,
                closed INTEGER NOT NULL DEFAULT 0, update_seq INTEGER NOT NULL,
                updated_at REAL NOT NULL)"""
        )

    def active_job(self) -> JobRecord | None:
        """The job not yet closed, if any (at most one: the agent never takes two)."""
        row = self._db.execute(f"{_SELECT} WHERE closed = 0").fetchone()
        return _record(row) if row else None

    def job(self, job_id: str) -> JobRecord | None:
        """Any job this drone accepted."""
        row = self._db.execute(f"{_SELECT} WHERE job_id = ?", [job_id]).fetchone()
        return _record(row) if row else None

    def start(self, offer: JobOffered, *, offer_event_id: str) -> None:
        """Record an accepted job at its first phase."""
        self._db.execute(
            "INSERT INTO agent_jobs (job_id, offer, offer_event_id, phase, package, update_seq,"
            " updated_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
            [
                offer.job_id,
                offer.model_dump_json(),
                offer_event_id,
                JobPhase.TO_PICKUP.value,
                PackageState.NOT_LOADED.value,
                time.time(),
            ],
        )

    def update(
        self,
        job_id: str,
        *,
        phase: JobPhase | None = None,
        package: PackageState | None = None,
        outcome: str | None = None,
        closed: bool | None = None,
    ) -> None:
        """Change a job."""
        changes: dict[str, Any] = {"updated_at": time.time()}
        if phase is not None:
            changes["phase"] = phase.value
        if package is not None:
            changes["package"] = package.value
        if outcome is not None:
            changes["outcome"] = outcome
        if closed is not None:
            changes["closed"] = int(closed)
        sets = ", ".join(f"{name} = ?" for name in changes)
        self._db.execute(
            f"UPDATE agent_jobs SET {sets} WHERE job_id = ?",  # noqa: S608 - column names are ours
            [*changes.values(), job_id],
        )

    def next_sequence(self, job_id: str) -> int:
        """The `sequence` of the job's next update: 0 was the answer, then 1, 2, ..."""
        self._db.execute(
            "UPDATE agent_jobs SET update_seq = update_seq + 1 WHERE job_id = ?", [job_id]
        )
        row = self._db.execute(
            "SELECT update_seq FROM agent_jobs WHERE job_id = ?", [job_id]
        ).fetchone()
        return int(row[0])


_SELECT = (
    "SELECT offer, offer_event_id, phase, package, outcome, closed, update_seq FROM agent_jobs"
)


def _record(row: tuple[Any, ...]) -> JobRecord:
    offer, offer_event_id, phase, package, outcome, closed, update_seq = row
    return JobRecord(
        offer=JobOffered.model_validate_json(offer),
        offer_event_id=offer_event_id,
        phase=JobPhase(phase),
        package=PackageState(package),
        outcome=outcome,
        closed=bool(closed),
        update_seq=int(update_seq),
    )
