"""The scheduler's tables: its view of the fleet, the deliveries it places, their jobs."""

import json
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

import sqlite_utils

from contracts.events import DeliveryRequested, DroneState, DroneStatus, Link
from contracts.states import JobState

OPEN_JOB_STATES = (JobState.OFFERED, JobState.ACCEPTED, JobState.IN_PROGRESS)


class Plan(StrEnum):
    """Where one delivery is in the scheduler's hands."""

    WAITING = "waiting"  # for a free, able drone
    OFFERED = "offered"  # to one drone, answer pending
    ASSIGNED = "assigned"  # a drone accepted and flies it
    # Its job timed out: it waits for the silent drone's answer to the cancellation, since the
    # drone may have picked the package up (or delivered it) meanwhile.
    WITHDRAWING = "withdrawing"
    DONE = "done"
    FAILED = "failed"  # the job failed with the package on board
    CLOSED = "closed"  # rejected package or cancelled before pickup
    UNASSIGNABLE = "unassignable"


@dataclass(frozen=True)
class Booking:
    """One delivery as the scheduler sees it."""

    delivery_id: str
    request: DeliveryRequested | None  # None for a delivery closed before its request came
    request_event_id: str | None
    plan: Plan
    deadline: float  # timestamp on the service clock
    job_id: str | None
    picked_up: bool
    declined: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class JobRow:
    """One job offered to one drone."""

    job_id: str
    delivery_id: str
    drone_id: str
    state: JobState
    answer_by: float
    last_progress: float


_BOOKING = (
    "SELECT delivery_id, request, request_event_id, plan, deadline, job_id, picked_up, declined"
    " FROM sched_deliveries"
)
_JOB = "SELECT job_id, delivery_id, drone_id, state, answer_by, last_progress FROM sched_jobs"


class SchedulerStore:
    """All of the scheduler's durable state, in the same database as its bus."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        # Each drone's latest state as stored and as parsed: a placement reads the whole fleet,
        # and parsing it again each time was most of the cost. Derived from the rows read, so a
        # rolled-back write cannot leave it stale.
        self._parsed: dict[str, tuple[str, DroneState]] = {}
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS sched_drones (
                drone_id TEXT PRIMARY KEY, online INTEGER NOT NULL DEFAULT 0,
                session INTEGER NOT NULL DEFAULT -1, state TEXT,
                state_seq INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS sched_deliveries (
                delivery_id TEXT PRIMARY KEY, request TEXT, request_event_id TEXT,
                plan TEXT NOT NULL, deadline REAL NOT NULL, job_id TEXT,
                picked_up INTEGER NOT NULL DEFAULT 0, declined TEXT NOT NULL DEFAULT '{}',
                priority INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,
                reason TEXT);
            CREATE INDEX IF NOT EXISTS sched_deliveries_plan
                ON sched_deliveries (plan, priority DESC, created);
            CREATE INDEX IF NOT EXISTS sched_deliveries_deadline
                ON sched_deliveries (plan, deadline);
            CREATE TABLE IF NOT EXISTS sched_jobs (
                job_id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, drone_id TEXT NOT NULL,
                state TEXT NOT NULL, answer_by REAL NOT NULL, last_progress REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS sched_jobs_state ON sched_jobs (state);
            """
        )

    # --- the fleet ---------------------------------------------------------------------

    def record_status(self, status: DroneStatus) -> bool:
        """Keep a drone's link; an older session's will cannot mark a newer one offline."""
        cursor = self._db.execute(
            "INSERT INTO sched_drones (drone_id, online, session) VALUES (?, ?, ?)"
            " ON CONFLICT (drone_id) DO UPDATE SET online = excluded.online,"
            " session = excluded.session WHERE excluded.session >= sched_drones.session",
            [status.drone_id, int(status.link is Link.ONLINE), status.session],
        )
        return cursor.rowcount == 1

    def record_state(self, state: DroneState) -> None:
        """Keep a drone's latest state and count it."""
        self._db.execute(
            "INSERT INTO sched_drones (drone_id, state, state_seq) VALUES (?, ?, 1)"
            " ON CONFLICT (drone_id) DO UPDATE SET state = excluded.state,"
            " state_seq = sched_drones.state_seq + 1",
            [state.drone_id, state.model_dump_json()],
        )

    def drones(self) -> list[tuple[DroneState, int, bool]]:
        """Every drone with a known state: (state, state_seq, online)."""
        rows = self._db.execute(
            "SELECT drone_id, state, state_seq, online FROM sched_drones WHERE state IS NOT NULL"
        ).fetchall()
        return [(self._state(drone_id, text), seq, bool(on)) for drone_id, text, seq, on in rows]

    def _state(self, drone_id: str, text: str) -> DroneState:
        known = self._parsed.get(drone_id)
        if known is None or known[0] != text:
            known = (text, DroneState.model_validate_json(text))
            self._parsed[drone_id] = known
        return known[1]

    def state_seq(self, drone_id: str) -> int:
        """How many states this drone has published so far."""
        row = self._db.execute(
            "SELECT state_seq FROM sched_drones WHERE drone_id = ?", [drone_id]
        ).fetchone()
        return int(row[0]) if row else 0

    # --- deliveries ----------------------------------------------------------------------

    def booking(self, delivery_id: str) -> Booking | None:
        """One delivery."""
        row = self._db.execute(f"{_BOOKING} WHERE delivery_id = ?", [delivery_id]).fetchone()
        return _booking(row) if row else None

    def waiting(self, limit: int) -> list[Booking]:
        """Deliveries waiting for a drone: expedited first, then oldest first."""
        rows = self._db.execute(
            f"{_BOOKING} WHERE plan = ? ORDER BY priority DESC, created LIMIT ?",
            [Plan.WAITING, limit],
        ).fetchall()
        return [_booking(r) for r in rows]

    def overdue(self, now: float, limit: int) -> list[Booking]:
        """Deliveries past their deadline still waiting for a drone, or for a silent one.

        A drone silent after pickup is not given up on: the package is with it, only it can end
        the job. At most `limit`, earliest deadline first: a burst expiring at once goes in batches.
        """
        rows = self._db.execute(
            f"{_BOOKING} WHERE (plan = ? OR (plan = ? AND picked_up = 0)) AND deadline < ?"
            " ORDER BY deadline LIMIT ?",
            [Plan.WAITING, Plan.WITHDRAWING, now, limit],
        ).fetchall()
        return [_booking(r) for r in rows]

    def add_booking(
        self, request: DeliveryRequested, *, event_id: str, deadline: float, now: float
    ) -> None:
        """A new delivery to place."""
        self._db.execute(
            "INSERT INTO sched_deliveries (delivery_id, request, request_event_id, plan,"
            " deadline, priority, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                request.delivery_id,
                request.model_dump_json(),
                event_id,
                Plan.WAITING,
                deadline,
                int(request.expedited),
                now,
            ],
        )

    def close_unseen(self, delivery_id: str, plan: Plan, reason: str, *, now: float) -> None:
        """Remember a delivery closed before its request arrived, so the request is ignored."""
        self._db.execute(
            "INSERT INTO sched_deliveries (delivery_id, plan, deadline, created, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            [delivery_id, plan, now, now, reason],
        )

    def update_booking(self, delivery_id: str, **changes: Any) -> None:  # noqa: ANN401
        """Change columns of one delivery: plan, job_id, picked_up, declined, reason."""
        if "declined" in changes:
            changes["declined"] = json.dumps(changes["declined"])
        columns = ", ".join(f"{name} = ?" for name in changes)
        self._db.execute(
            f"UPDATE sched_deliveries SET {columns} WHERE delivery_id = ?",  # noqa: S608
            [*changes.values(), delivery_id],
        )

    # --- jobs ------------------------------------------------------------------------------

    def job(self, job_id: str) -> JobRow | None:
        """One job."""
        row = self._db.execute(f"{_JOB} WHERE job_id = ?", [job_id]).fetchone()
        return _job(row) if row else None

    def add_job(
        self, *, job_id: str, delivery_id: str, drone_id: str, answer_by: float, now: float
    ) -> None:
        """A job just offered."""
        self._db.execute(
            "INSERT INTO sched_jobs (job_id, delivery_id, drone_id, state, answer_by,"
            " last_progress) VALUES (?, ?, ?, ?, ?, ?)",
            [job_id, delivery_id, drone_id, JobState.OFFERED, answer_by, now],
        )

    def set_job(self, job_id: str, state: JobState, *, progress_at: float | None = None) -> None:
        """Move a job on; `progress_at` restarts its step timer."""
        self._db.execute(
            "UPDATE sched_jobs SET state = ?, last_progress = COALESCE(?, last_progress)"
            " WHERE job_id = ?",
            [state, progress_at, job_id],
        )

    def drones_with_open_jobs(self) -> set[str]:
        """Drones holding a job that is offered or accepted: they get no other."""
        marks = ", ".join("?" for _ in OPEN_JOB_STATES)
        rows = self._db.execute(
            f"SELECT DISTINCT drone_id FROM sched_jobs WHERE state IN ({marks})",  # noqa: S608
            list(OPEN_JOB_STATES),
        ).fetchall()
        return {r[0] for r in rows}

    def expired_offers(self, now: float) -> list[JobRow]:
        """Offers not answered in time."""
        rows = self._db.execute(
            f"{_JOB} WHERE state = ? AND answer_by < ?", [JobState.OFFERED, now]
        ).fetchall()
        return [_job(r) for r in rows]

    def stalled_jobs(self, progress_before: float) -> list[JobRow]:
        """Accepted jobs with no progress since `progress_before`."""
        rows = self._db.execute(
            f"{_JOB} WHERE state IN (?, ?) AND last_progress < ?",
            [JobState.ACCEPTED, JobState.IN_PROGRESS, progress_before],
        ).fetchall()
        return [_job(r) for r in rows]


def _booking(row: tuple[Any, ...]) -> Booking:
    delivery_id, request, event_id, plan, deadline, job_id, picked_up, declined = row
    return Booking(
        delivery_id=delivery_id,
        request=_request(request) if request else None,
        request_event_id=event_id,
        plan=Plan(plan),
        deadline=deadline,
        job_id=job_id,
        picked_up=bool(picked_up),
        declined=json.loads(declined),
    )


# Placements read the same first waiting deliveries again and again (`waiting`, at most 500 at
# a time): twice that covers them, and a backlog of thousands does not fill memory with them.
@lru_cache(maxsize=1024)
def _request(text: str) -> DeliveryRequested:
    """A stored request, parsed once: waiting deliveries are read again at every placement."""
    return DeliveryRequested.model_validate_json(text)


def _job(row: tuple[Any, ...]) -> JobRow:
    job_id, delivery_id, drone_id, state, answer_by, last_progress = row
    return JobRow(job_id, delivery_id, drone_id, JobState(state), answer_by, last_progress)
