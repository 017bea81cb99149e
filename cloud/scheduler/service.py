"""The Drone Scheduler's handlers and timers (see docs/choreography.md).

Handlers and timer rounds each run in one bus transaction: read the booking, decide with
`fleet`, write, emit. Telemetry only refreshes an in-memory "last seen" per drone.
"""

import asyncio
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bus.bus import Bus
from bus.outbox import Outbox
from cloud.ownership import refuse_foreign
from cloud.scheduler.fleet import DroneView, Trip, best_candidate, free
from cloud.scheduler.store import OPEN_JOB_STATES, Booking, JobRow, Plan, SchedulerStore
from contracts import Envelope
from contracts.events import (
    Availability,
    DeliveryCancellationRequested,
    DeliveryRequested,
    DeliveryUnassignable,
    DroneAssigned,
    DroneState,
    DroneStatus,
    JobAccepted,
    JobCancellationRefused,
    JobCancelled,
    JobFailed,
    JobOffered,
    JobPhase,
    JobProgressed,
    JobRejected,
    JobSucceeded,
    PackageRejected,
    PackageState,
    TelemetryReported,
)
from contracts.states import JobState
from flight_model.clock import Clock
from flight_model.energy import EnergyModel

# Phases that mean the package is on board: the pivot of the delivery.
AFTER_PICKUP = frozenset(
    {JobPhase.TO_DROPOFF, JobPhase.RELEASING, JobPhase.RETURNING, JobPhase.LANDING}
)
_WAITING_BATCH = 500


@dataclass(frozen=True)
class SchedulerSettings:
    """Timers of the scheduler, in seconds of the service clock."""

    offer_timeout_s: float = 10.0
    step_timeout_s: float = 1800.0
    stale_after_s: float = 15.0
    assign_within_s: float = 4 * 3600.0
    tick_s: float = 1.0  # timer resolution; at a high speed-up, make it coarser


class SchedulerService:
    """Places each delivery on one drone, and only one job on each drone."""

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        settings: SchedulerSettings | None = None,
        energy: EnergyModel | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.settings = settings or SchedulerSettings()
        self.energy = energy or EnergyModel()
        self.store = SchedulerStore(bus.db)
        self._seen: dict[str, float] = {}  # drone -> clock.monotonic() of its last telemetry
        bus.route(DeliveryRequested, self._on_requested)
        bus.route(DeliveryCancellationRequested, self._on_withdrawn)
        bus.route(PackageRejected, self._on_withdrawn)
        bus.route(JobAccepted, self._on_accepted)
        bus.route(JobRejected, self._on_rejected)
        bus.route(JobProgressed, self._on_progress)
        bus.route(JobSucceeded, self._on_succeeded)
        bus.route(JobFailed, self._on_failed)
        bus.route(JobCancellationRefused, self._on_cancel_refused)
        bus.route(DroneStatus, self._on_drone_status)
        bus.route(DroneState, self._on_drone_state)
        bus.route(TelemetryReported, self._on_telemetry)

    async def run(self) -> None:
        """Serve and run the timers until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.bus.run(), name="scheduler.bus")
            tasks.create_task(self._timers(), name="scheduler.timers")

    def _now(self) -> float:
        return self.clock.now().timestamp()

    # --- deliveries --------------------------------------------------------------------------

    def _on_requested(self, event: Envelope[Any], out: Outbox) -> None:
        request: DeliveryRequested = event.data
        if self.store.booking(request.delivery_id) is not None:
            return  # already placed, or closed before its request arrived
        now = self._now()
        deadline = (
            request.deadline.timestamp()
            if request.deadline is not None
            else now + self.settings.assign_within_s
        )
        self.store.add_booking(request, event_id=event.id, deadline=deadline, now=now)
        booking = self.store.booking(request.delivery_id)
        assert booking is not None  # noqa: S101 - just written
        self._place([booking], out)

    def _on_withdrawn(self, event: Envelope[Any], out: Outbox) -> None:
        """Package rejected or client cancel: close the delivery and cancel its job."""
        delivery_id = event.data.delivery_id
        reason = (
            f"package rejected: {event.data.reason}"
            if isinstance(event.data, PackageRejected)
            else "cancelled by the client"
        )
        booking = self.store.booking(delivery_id)
        if booking is None:
            self.store.close_unseen(delivery_id, Plan.CLOSED, reason, now=self._now())
            return
        if booking.picked_up or booking.plan not in _BEFORE_PICKUP:
            return  # past the pivot, or over: not the scheduler's to undo
        self.store.update_booking(delivery_id, plan=Plan.CLOSED, reason=reason)
        job = self.store.job(booking.job_id) if booking.job_id else None
        if job is not None and job.state in OPEN_JOB_STATES:
            self._cancel(job, JobState.CANCELLED, reason, out)

    def _place(
        self,
        bookings: list[Booking],
        out: Outbox,
        *,
        cause: str | None = None,
        fleet: dict[str, DroneView] | None = None,
    ) -> None:
        """Offer each waiting delivery to its best free drone, each drone at most once."""
        now = self._now()
        fleet = fleet if fleet is not None else self._fleet()
        # Only free drones can be candidates: a backlog of waiting deliveries then costs a look
        # at the few free drones each, not at the whole fleet each.
        available = [drone for drone in fleet.values() if free(drone)]
        for booking in bookings:
            if booking.plan is not Plan.WAITING or booking.request is None:
                continue
            if now > booking.deadline:
                self._give_up(booking, out, cause=cause)
                continue
            if not available:
                continue
            request = booking.request
            trip = Trip(request.pickup, request.dropoff, request.package.weight_kg)
            drone = best_candidate(available, trip, self.energy, declined=booking.declined)
            if drone is None:
                continue
            self._offer(booking, drone.drone_id, out, cause=cause, now=now)
            fleet.pop(drone.drone_id)
            available.remove(drone)

    def _place_waiting(self, out: Outbox) -> None:
        """Offer waiting deliveries, if any drone is free at all (the common case: none)."""
        fleet = self._fleet()
        if any(free(drone) for drone in fleet.values()):
            self._place(self.store.waiting(_WAITING_BATCH), out, fleet=fleet)

    def _give_up(self, booking: Booking, out: Outbox, *, cause: str | None = None) -> None:
        self.store.update_booking(booking.delivery_id, plan=Plan.UNASSIGNABLE)
        reason = (
            "its drone went silent before pickup and never answered"
            if booking.plan is Plan.WITHDRAWING
            else "no drone took the delivery before its deadline"
        )
        out.emit(
            DeliveryUnassignable(delivery_id=booking.delivery_id, reason=reason),
            correlationid=booking.delivery_id,
            causationid=cause or booking.request_event_id,
        )

    def _offer(
        self, booking: Booking, drone_id: str, out: Outbox, *, cause: str | None, now: float
    ) -> None:
        request = booking.request
        assert request is not None  # noqa: S101 - only requested deliveries are placed
        job_id = f"j-{uuid.uuid4().hex[:16]}"
        answer_by = now + self.settings.offer_timeout_s
        self.store.add_job(
            job_id=job_id,
            delivery_id=booking.delivery_id,
            drone_id=drone_id,
            answer_by=answer_by,
            now=now,
        )
        self.store.update_booking(booking.delivery_id, plan=Plan.OFFERED, job_id=job_id)
        out.emit(
            JobOffered(
                drone_id=drone_id,
                job_id=job_id,
                delivery_id=booking.delivery_id,
                pickup=request.pickup,
                dropoff=request.dropoff,
                payload_kg=request.package.weight_kg,
                answer_by=datetime.fromtimestamp(answer_by, UTC),
            ),
            correlationid=booking.delivery_id,
            causationid=cause or booking.request_event_id,
        )

    def _fleet(self) -> dict[str, DroneView]:
        fresh_since = self.clock.monotonic() - self.settings.stale_after_s
        busy = self.store.drones_with_open_jobs()
        return {
            state.drone_id: DroneView(
                state=state,
                state_seq=seq,
                online=online,
                fresh=self._seen.get(state.drone_id, -math.inf) >= fresh_since,
                has_open_job=state.drone_id in busy,
            )
            for state, seq, online in self.store.drones()
        }

    def _reopen(self, job: JobRow, out: Outbox, *, cause: str | None = None) -> None:
        """The job ended before pickup: place the delivery again, not on the same drone."""
        booking = self.store.booking(job.delivery_id)
        if booking is None or booking.job_id != job.job_id or booking.plan in _OVER:
            return
        declined = {**booking.declined, job.drone_id: self.store.state_seq(job.drone_id)}
        self.store.update_booking(
            job.delivery_id, plan=Plan.WAITING, job_id=None, declined=declined
        )
        reopened = self.store.booking(job.delivery_id)
        assert reopened is not None  # noqa: S101 - just written
        self._place([reopened], out, cause=cause)

    def _cancel(self, job: JobRow, state: JobState, reason: str, out: Outbox) -> None:
        self.store.set_job(job.job_id, state)
        out.emit(
            JobCancelled(
                drone_id=job.drone_id,
                job_id=job.job_id,
                delivery_id=job.delivery_id,
                reason=reason,
            ),
            correlationid=job.delivery_id,
        )

    # --- job updates -------------------------------------------------------------------------

    def _job_of(self, event: Envelope[Any], out: Outbox) -> JobRow | None:
        """The job an update is about, if the scheduler offered it to that drone."""
        job = self.store.job(event.data.job_id)
        if job is not None and job.drone_id != event.data.drone_id:
            refuse_foreign(event, job.drone_id, out)
            return None
        return job

    def _on_accepted(self, event: Envelope[Any], out: Outbox) -> None:
        job = self._job_of(event, out)
        if job is None or job.state in (JobState.ACCEPTED, JobState.IN_PROGRESS):
            return
        if job.state is not JobState.OFFERED:
            # Too late (timed out, withdrawn): make sure the drone does not fly it.
            self._cancel(job, job.state, "the offer was withdrawn before it was accepted", out)
            return
        self.store.set_job(job.job_id, JobState.ACCEPTED, progress_at=self._now())
        self.store.update_booking(job.delivery_id, plan=Plan.ASSIGNED)
        out.emit(
            DroneAssigned(delivery_id=job.delivery_id, job_id=job.job_id, drone_id=job.drone_id)
        )

    def _on_rejected(self, event: Envelope[Any], out: Outbox) -> None:
        job = self._job_of(event, out)
        if job is None or job.state is not JobState.OFFERED:
            return
        self.store.set_job(job.job_id, JobState.REJECTED)
        self._reopen(job, out)

    def _on_progress(self, event: Envelope[Any], out: Outbox) -> None:
        job = self._job_of(event, out)
        if job is None or job.state not in (JobState.ACCEPTED, JobState.IN_PROGRESS):
            return
        self.store.set_job(job.job_id, JobState.IN_PROGRESS, progress_at=self._now())
        if event.data.phase in AFTER_PICKUP:
            self.store.update_booking(job.delivery_id, picked_up=1)

    def _on_succeeded(self, event: Envelope[Any], out: Outbox) -> None:
        job = self._job_of(event, out)
        if job is None or not self._answerable(job):
            return
        if job.state in _LIVE:
            self.store.set_job(job.job_id, JobState.SUCCEEDED)
        self.store.update_booking(job.delivery_id, plan=Plan.DONE, picked_up=1)

    def _on_failed(self, event: Envelope[Any], out: Outbox) -> None:
        failure: JobFailed = event.data
        job = self._job_of(event, out)
        if job is None or not self._answerable(job):
            return
        if job.state in _LIVE:
            self.store.set_job(job.job_id, JobState.FAILED)
        if failure.package_state is PackageState.NOT_LOADED:
            self._reopen(job, out)
        elif failure.package_state is PackageState.ON_BOARD:
            self.store.update_booking(job.delivery_id, plan=Plan.FAILED, picked_up=1)

    def _on_cancel_refused(self, event: Envelope[Any], out: Outbox) -> None:
        job = self._job_of(event, out)
        booking = None if job is None else self.store.booking(job.delivery_id)
        if job is None or booking is None or booking.job_id != job.job_id:
            return  # a refusal about a job the delivery no longer has changes nothing
        self.store.update_booking(job.delivery_id, picked_up=1)
        if booking.plan is Plan.WITHDRAWING:
            # The silent drone has the package: the job is its again, its step timer restarted.
            self.store.update_booking(job.delivery_id, plan=Plan.ASSIGNED)
            self.store.set_job(job.job_id, JobState.IN_PROGRESS, progress_at=self._now())

    def _answerable(self, job: JobRow) -> bool:
        """Whether the drone's word on this job still decides.

        It does while the job is open, and after a step timeout while the delivery waits for
        the drone to say where the package is.
        """
        if job.state in _LIVE:
            return True
        booking = self.store.booking(job.delivery_id)
        return (
            booking is not None
            and booking.plan is Plan.WITHDRAWING
            and booking.job_id == job.job_id
        )

    # --- the fleet -----------------------------------------------------------------------------

    def _on_drone_status(self, event: Envelope[Any], out: Outbox) -> None:
        if self.store.record_status(event.data):
            self._place_waiting(out)

    def _on_drone_state(self, event: Envelope[Any], out: Outbox) -> None:
        state: DroneState = event.data
        self.store.record_state(state)
        if state.availability is Availability.IDLE:
            self._place_waiting(out)

    def _on_telemetry(self, event: Envelope[Any], _: Outbox) -> None:
        self._seen[event.data.drone_id] = self.clock.monotonic()

    # --- timers ----------------------------------------------------------------------------------

    async def _timers(self) -> None:
        # The timers judge silence only while the scheduler could hear, and only once what was
        # queued for it meanwhile has had the grace of an offer to arrive: after a restart or
        # a lost connection, an accept waiting in the session taken for no answer would give
        # the delivery to a second drone while the first flies it (seen in the chaos run).
        # Placing waiting deliveries and deadlines judge nothing silent: they go on at once.
        grace_s = self.settings.offer_timeout_s / 2
        while True:
            await self.bus.connected.wait()
            listening_since = self.clock.monotonic()
            while self.bus.connected.is_set():
                await self.clock.sleep(self.settings.tick_s)
                heard_enough = self.clock.monotonic() - listening_since >= grace_s
                with self.bus.transaction() as out:
                    self.tick(out, judge_silence=heard_enough)

    def tick(self, out: Outbox, *, judge_silence: bool = True) -> None:
        """Expire unanswered offers, time out stalled jobs, retry waiting deliveries.

        Without `judge_silence` only the deadlines and the waiting deliveries are looked at.
        """
        now = self._now()
        # A batch per tick, not one transaction holding every row of a burst that expires at
        # once; the rest go at the next ticks.
        for late in self.store.overdue(now, _WAITING_BATCH):
            self._give_up(late, out)
        if judge_silence:
            self._judge_silence(now, out)
        self._place_waiting(out)

    def _judge_silence(self, now: float, out: Outbox) -> None:
        """Withdraw offers nobody answered and jobs that stopped reporting progress."""
        # The drone refuses an offer past `answer_by` itself; the grace covers an accept
        # sent just in time and still on its way.
        for job in self.store.expired_offers(now - self.settings.offer_timeout_s / 2):
            self._cancel(job, JobState.TIMED_OUT, "offer timed out: no answer in time", out)
            self._reopen(job, out)
        for job in self.store.stalled_jobs(now - self.settings.step_timeout_s):
            booking = self.store.booking(job.delivery_id)
            limit = self.settings.step_timeout_s
            self._cancel(job, JobState.TIMED_OUT, f"timed out: no progress for {limit:g} s", out)
            # Only the silent drone knows where the package is: its answer settles the delivery.
            if booking is not None and booking.job_id == job.job_id:
                self.store.update_booking(job.delivery_id, plan=Plan.WITHDRAWING)


_OVER = frozenset({Plan.DONE, Plan.FAILED, Plan.CLOSED, Plan.UNASSIGNABLE})
_LIVE = (JobState.ACCEPTED, JobState.IN_PROGRESS)
_BEFORE_PICKUP = (Plan.WAITING, Plan.OFFERED, Plan.ASSIGNED, Plan.WITHDRAWING)
