"""The Delivery service's handlers: every change of a delivery, published as its status.

Stages move only forward (`stages.forward`), so duplicates and late events change nothing.
Job updates count only for the delivery's current job; an update that arrives before the
job's `DroneAssigned` (the drone is one hop closer than the scheduler) is parked and
replayed when the assignment arrives. Every event of a delivery it hears or publishes goes
into the delivery's journal, which answers `murmur trace` (docs/trace.md).
"""

from typing import TYPE_CHECKING, Any

from bus.bus import Bus
from bus.consumer import Handler
from bus.outbox import Outbox
from cloud.delivery import journal
from cloud.delivery.stages import BEFORE_PICKUP, eta, eta_moved, forward, stages_for_phase
from cloud.delivery.store import DeliveryStore, Tracked
from cloud.ownership import refuse_foreign
from contracts import Envelope, Event, decode
from contracts.events import (
    TRACE_LIMIT,
    DeliveryCancellationRequested,
    DeliveryRequested,
    DeliveryStatusChanged,
    DeliveryTraced,
    DeliveryTraceRequested,
    DeliveryUnassignable,
    DroneAssigned,
    DroneEvent,
    DroneEventKind,
    JobAccepted,
    JobCancellationRefused,
    JobCancelled,
    JobFailed,
    JobOffered,
    JobProgressed,
    JobRejected,
    JobSucceeded,
    PackageReady,
    PackageRejected,
    PackageState,
    PackageStranded,
    TelemetryReported,
)
from contracts.states import TERMINAL_STAGES, DeliveryStage
from flight_model.airframe import Airframe
from flight_model.clock import Clock

if TYPE_CHECKING:
    from contracts.ids import Location

_S = DeliveryStage


class DeliveryService:
    """Derives each delivery's stage and ETA from the choreography's events."""

    def __init__(self, bus: Bus, clock: Clock, airframe: Airframe | None = None) -> None:
        self.bus = bus
        self.clock = clock
        self.airframe = airframe or Airframe()
        self.store = DeliveryStore(bus.db)
        self._flying = self.store.flying()  # drone -> delivery, for telemetry
        self._positions: dict[str, Location] = {}  # drone -> last reported position
        self._job_handlers: dict[type, Handler] = {
            JobProgressed: self._on_progress,
            JobSucceeded: self._on_succeeded,
            JobFailed: self._on_failed,
            JobCancelled: self._on_job_cancelled,
        }
        journaled: dict[type[Event], Handler | None] = {
            DeliveryRequested: self._on_requested,
            PackageReady: self._on_package_ready,
            PackageRejected: self._on_package_rejected,
            DroneAssigned: self._on_assigned,
            DeliveryUnassignable: self._on_unassignable,
            DeliveryCancellationRequested: self._on_cancel_requested,
            **self._job_handlers,
            DroneEvent: self._on_drone_event,
            # Heard only for the journal, so a trace shows the whole chain.
            JobOffered: None,
            JobAccepted: None,
            JobRejected: None,
            JobCancellationRefused: None,
            PackageStranded: None,
        }
        for event_cls, handler in journaled.items():
            bus.route(event_cls, self._journaled(handler))
        # Telemetry moves ETAs only; at several reports a second it would drown the journal.
        bus.route(TelemetryReported, self._on_telemetry)
        bus.route(DeliveryTraceRequested, self._on_trace_requested)

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.bus.run()

    # --- the journal -------------------------------------------------------------------------

    def _journaled(self, handler: Handler | None) -> Handler:
        """`handler`, after keeping the event in its delivery's journal."""

        def journal_then_handle(event: Envelope[Any], out: Outbox) -> None:
            if event.correlationid is not None:
                self.store.journal(event.correlationid, journal.entry(event))
            if handler is not None:
                handler(event, out)

        return journal_then_handle

    def _on_trace_requested(self, event: Envelope[Any], out: Outbox) -> None:
        request: DeliveryTraceRequested = event.data
        entries, truncated = self.store.journal_of(request.delivery_id, TRACE_LIMIT)
        out.emit(
            DeliveryTraced(
                delivery_id=request.delivery_id,
                request_id=request.request_id,
                entries=entries,
                truncated=truncated,
            )
        )

    # --- publishing ----------------------------------------------------------------------

    def _publish(
        self,
        tracked: Tracked,
        event: Envelope[Any],
        out: Outbox,
        *,
        stage: DeliveryStage | None = None,
        reason: str | None = None,
        **changes: Any,  # noqa: ANN401
    ) -> Tracked:
        """Write the next version of a delivery, keep it in the history, publish it."""
        stage = stage or tracked.stage
        version = tracked.version + 1
        self.store.update(tracked.delivery_id, stage=stage, version=version, **changes)
        updated = self.store.get(tracked.delivery_id)
        assert updated is not None  # noqa: S101 - just written
        self.store.record_version(
            updated, at=self.clock.now(), event_id=event.id, event_type=event.type, reason=reason
        )
        published = out.emit(
            DeliveryStatusChanged(
                delivery_id=updated.delivery_id,
                stage=updated.stage,
                version=updated.version,
                drone_id=updated.drone_id,
                job_id=updated.job_id,
                eta=updated.eta,
                last_known_location=updated.location,
                reason=reason,
            ),
            correlationid=updated.delivery_id,
        )
        self.store.journal(updated.delivery_id, journal.entry(published))
        if updated.stage in TERMINAL_STAGES or updated.drone_id is None:
            self._flying = {d: x for d, x in self._flying.items() if x != updated.delivery_id}
        return updated

    def _advance(
        self,
        tracked: Tracked,
        wanted: tuple[DeliveryStage, ...],
        event: Envelope[Any],
        out: Outbox,
        *,
        reason: str | None = None,
        **changes: Any,  # noqa: ANN401
    ) -> Tracked:
        """Move through the stages of `wanted` that lie ahead; the last carries `changes`."""
        moves = forward(tracked.stage, wanted)
        for i, stage in enumerate(moves):
            last = i == len(moves) - 1
            extra = changes if last else {}
            tracked = self._publish(
                tracked, event, out, stage=stage, reason=reason if last else None, **extra
            )
        return tracked

    # --- the delivery's own events -----------------------------------------------------------

    def _on_requested(self, event: Envelope[Any], out: Outbox) -> None:
        request: DeliveryRequested = event.data
        tracked = self.store.ensure(request.delivery_id)
        if tracked.pickup is not None:
            return  # the same request again
        self.store.update(tracked.delivery_id, pickup=request.pickup, dropoff=request.dropoff)
        if tracked.version == 0:
            tracked = self.store.ensure(request.delivery_id)
            self._publish(tracked, event, out)

    def _on_package_ready(self, event: Envelope[Any], out: Outbox) -> None:
        tracked = self.store.ensure(event.data.delivery_id)
        if tracked.package_ready:
            return
        self.store.update(tracked.delivery_id, package_ready=True)
        if tracked.job_id is not None:
            self._advance(self.store.ensure(tracked.delivery_id), (_S.SCHEDULED,), event, out)

    def _on_package_rejected(self, event: Envelope[Any], out: Outbox) -> None:
        rejected: PackageRejected = event.data
        tracked = self.store.ensure(rejected.delivery_id)
        detail = f": {rejected.detail}" if rejected.detail else ""
        self._end_before_pickup(
            tracked, _S.REJECTED, event, out, reason=f"package {rejected.reason.value}{detail}"
        )

    def _on_unassignable(self, event: Envelope[Any], out: Outbox) -> None:
        tracked = self.store.ensure(event.data.delivery_id)
        self._end_before_pickup(tracked, _S.UNASSIGNABLE, event, out, reason=event.data.reason)

    def _on_cancel_requested(self, event: Envelope[Any], out: Outbox) -> None:
        request: DeliveryCancellationRequested = event.data
        tracked = self.store.ensure(request.delivery_id)
        if tracked.stage in TERMINAL_STAGES:
            return
        if tracked.stage in BEFORE_PICKUP:
            reason = "cancelled by the client" + (f": {request.reason}" if request.reason else "")
            self._end_before_pickup(tracked, _S.CANCELLED, event, out, reason=reason)
            return
        self._publish(
            tracked,
            event,
            out,
            reason="cancellation refused: the package was picked up "
            f"(stage {tracked.stage.value}); it is delivered or reported failed",
        )

    def _end_before_pickup(
        self,
        tracked: Tracked,
        stage: DeliveryStage,
        event: Envelope[Any],
        out: Outbox,
        *,
        reason: str,
    ) -> None:
        if forward(tracked.stage, (stage,)) and tracked.job_id is not None:
            self.store.retire_job(tracked.job_id)
        self._advance(tracked, (stage,), event, out, reason=reason)

    def _on_assigned(self, event: Envelope[Any], out: Outbox) -> None:
        assigned: DroneAssigned = event.data
        if self.store.job(assigned.job_id) is not None:
            return
        tracked = self.store.ensure(assigned.delivery_id)
        usable = tracked.stage in BEFORE_PICKUP and tracked.job_id is None
        self.store.add_job(
            assigned.job_id, assigned.delivery_id, assigned.drone_id, retired=not usable
        )
        if not usable:
            return  # over, or already flown by another job: the scheduler cancels this one
        self.store.update(tracked.delivery_id, job_id=assigned.job_id, drone_id=assigned.drone_id)
        tracked = self.store.ensure(tracked.delivery_id)
        self._flying[assigned.drone_id] = assigned.delivery_id
        if tracked.package_ready:
            self._advance(tracked, (_S.SCHEDULED,), event, out)
        for topic, payload in self.store.unpark(assigned.job_id):
            parked = decode(topic, payload, root=self.bus.root)
            self._job_handlers[type(parked.data)](parked, out)

    # --- the current job's updates -----------------------------------------------------------

    def _current(self, event: Envelope[Any], out: Outbox) -> Tracked | None:
        """The delivery this job update moves, or None (parked, stale or refused)."""
        update = event.data
        job = self.store.job(update.job_id)
        if job is None:
            topic = update.resolved_topic(self.bus.root)
            self.store.park(update.job_id, topic, event.to_json())
            return None
        if job.drone_id != update.drone_id:
            refuse_foreign(event, job.drone_id, out)
            return None
        if job.retired:
            return None
        tracked = self.store.get(job.delivery_id)
        if tracked is None or tracked.job_id != job.job_id:
            return None
        return tracked

    def _on_progress(self, event: Envelope[Any], out: Outbox) -> None:
        tracked = self._current(event, out)
        if tracked is not None:
            self._advance(tracked, stages_for_phase(event.data.phase), event, out)

    def _on_succeeded(self, event: Envelope[Any], out: Outbox) -> None:
        tracked = self._current(event, out)
        if tracked is not None:
            location = event.data.location or tracked.location
            self._advance(tracked, (_S.DELIVERED,), event, out, location=location)

    def _on_failed(self, event: Envelope[Any], out: Outbox) -> None:
        failure: JobFailed = event.data
        tracked = self._current(event, out)
        if tracked is None or failure.package_state is PackageState.RELEASED:
            return
        self._job_over(tracked, event, out, reason=f"drone {failure.drone_id}: {failure.reason}")

    def _on_job_cancelled(self, event: Envelope[Any], out: Outbox) -> None:
        """The scheduler withdrew the current job (a step timeout): nothing is over yet.

        The scheduler waits for the silent drone's answer, which moves the status as any job
        update does. With the package on board the client is told why there is no news.
        """
        tracked = self._current(event, out)
        if tracked is None or tracked.stage in TERMINAL_STAGES or tracked.stage in BEFORE_PICKUP:
            return
        self._publish(
            tracked,
            event,
            out,
            reason=f"no word from drone {event.data.drone_id} ({event.data.reason}); "
            "the package is with it, waiting for its report",
        )

    def _job_over(
        self, tracked: Tracked, event: Envelope[Any], out: Outbox, *, reason: str
    ) -> None:
        """The current job ended without delivering: rescheduled before pickup, else failed."""
        assert tracked.job_id is not None  # noqa: S101 - only the current job ends
        assert tracked.drone_id is not None  # noqa: S101 - set with the job
        self.store.retire_job(tracked.job_id)
        if tracked.stage in BEFORE_PICKUP:
            self._advance(
                tracked, (_S.RESCHEDULED,), event, out, reason=reason, job_id=None, drone_id=None
            )
            return
        reported = getattr(event.data, "location", None)
        where = reported or self._positions.get(tracked.drone_id) or tracked.location
        self._advance(tracked, (_S.FAILED,), event, out, reason=reason, location=where)

    def _on_drone_event(self, event: Envelope[Any], out: Outbox) -> None:
        happened: DroneEvent = event.data
        if happened.kind is not DroneEventKind.PACKAGE_LOADED or happened.job_id is None:
            return
        job = self.store.job(happened.job_id)
        if job is not None and job.drone_id != happened.drone_id:
            refuse_foreign(event, job.drone_id, out)
            return
        if job is None or job.retired:
            return
        tracked = self.store.get(job.delivery_id)
        if tracked is not None and tracked.job_id == job.job_id:
            self._advance(tracked, (_S.PICKED_UP,), event, out, location=happened.position)

    def _on_telemetry(self, event: Envelope[Any], out: Outbox) -> None:
        report: TelemetryReported = event.data
        self._positions[report.drone_id] = report.position
        delivery_id = self._flying.get(report.drone_id)
        if delivery_id is None:
            return
        tracked = self.store.get(delivery_id)
        if tracked is None or tracked.job_id != report.job_id or tracked.pickup is None:
            return
        assert tracked.dropoff is not None  # noqa: S101 - stored with the pickup
        estimate = eta(
            now=self.clock.now(),
            stage=tracked.stage,
            eta_s=report.eta_s,
            pickup=tracked.pickup,
            dropoff=tracked.dropoff,
            airframe=self.airframe,
        )
        if estimate is not None and eta_moved(tracked.eta, estimate):
            self._publish(tracked, event, out, eta=estimate, location=report.position)
