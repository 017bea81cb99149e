"""The drone agent: answers offers by its own rules, flies jobs, reports on the bus.

Handlers run inside the bus's transaction (decide, record, emit); flying is an asyncio
task that reads the flight controller's state and records each step in the same
database, so a restarted agent resumes the job where it was. Job updates and drone
events go through the outbox: while the broker is unreachable they wait, in order, in
SQLite. Telemetry is published only while connected and is dropped otherwise.
"""

import asyncio
import logging
from contextlib import suppress
from typing import Any

from bus.bus import Bus, Presence
from bus.outbox import Outbox
from contracts import Envelope
from contracts.events import (
    CommandName,
    CommandReply,
    CommandResult,
    DroneCommand,
    DroneEventKind,
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
    Link,
    PackageState,
)
from contracts.ids import Location
from drone_agent.flight import FailsafeError, FlightCommandError, FlightController
from drone_agent.jobs import Readiness, can_abandon, failure_reason, phases_from, rejection_reason
from drone_agent.reporting import Reporter, fc_ready
from drone_agent.settings import AgentSettings
from drone_agent.store import AgentStore, JobRecord
from flight_model.clock import Clock
from flight_model.energy import EnergyModel
from flight_model.geo import haversine_m

log = logging.getLogger("murmur.agent")

_ARRIVED_M = 5.0


def drone_presence(drone_id: str) -> Presence:
    """The retained status a drone's bus publishes (and leaves as its last will)."""
    return lambda link, session: DroneStatus(drone_id=drone_id, link=link, session=session)


class DroneAgent:
    """The companion-computer side of one drone."""

    def __init__(
        self,
        *,
        settings: AgentSettings,
        bus: Bus,
        fc: FlightController,
        clock: Clock,
        energy: EnergyModel,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.fc = fc
        self.clock = clock
        self.energy = energy
        self.store = AgentStore(bus.db)
        self._flight: asyncio.Task[None] | None = None
        self._commands: set[asyncio.Task[None]] = set()
        self._reporter = Reporter(settings, bus, fc, self.store, clock)
        me = settings.drone_id
        bus.route(JobOffered, self._on_offer, drone_id=me)
        bus.route(JobCancelled, self._on_cancel, drone_id=me)
        bus.route(DroneCommand, self._on_command, drone_id=me)

    async def run(self) -> None:
        """Run until cancelled: the bus, the reporting loop, and any job left unfinished."""
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.fc.run(), name=f"{self.settings.drone_id}.fc")
                tasks.create_task(self.bus.run(), name=f"{self.settings.drone_id}.bus")
                # Nothing is reported, and no job flown, before the flight controller said
                # where the vehicle is; offers meanwhile find it not ready (no link).
                await self.fc.ready.wait()
                tasks.create_task(self._reporter.run(), name=f"{self.settings.drone_id}.report")
                job = self.store.active_job()
                if job is not None:
                    log.info(
                        "%s: resuming job %s at %s", self.settings.drone_id, job.job_id, job.phase
                    )
                    self._start_flight()
        finally:
            # The flight and command tasks run beside the bus's handlers, outside the group:
            # an agent that stops takes them with it (a restart resumes the job from SQLite).
            await self._stop_own_tasks()

    async def _stop_own_tasks(self) -> None:
        own = [*self._commands, *([self._flight] if self._flight is not None else [])]
        for task in own:
            task.cancel()
        await asyncio.gather(*own, return_exceptions=True)

    # --- handlers: inside the bus transaction ---------------------------------------------

    def _on_offer(self, event: Envelope[Any], out: Outbox) -> None:
        offer: JobOffered = event.data
        if self.store.job(offer.job_id) is not None:
            return  # answered already, under another event id
        state = self.fc.state()
        readiness = Readiness(
            busy=self.store.active_job() is not None or not state.landed,
            fc_ready=fc_ready(state),
            max_payload_kg=self.settings.max_payload_kg,
            energy_ok=self.energy.feasible(
                energy_wh=state.energy_wh,
                start=state.position,
                pickup=offer.pickup,
                dropoff=offer.dropoff,
                home=state.home,
                payload_kg=offer.payload_kg,
            ),
        )
        reason = rejection_reason(offer, readiness, now=self.clock.now())
        ids = {"drone_id": offer.drone_id, "job_id": offer.job_id, "delivery_id": offer.delivery_id}
        if reason is not None:
            out.emit(JobRejected(**ids, reason=reason), sequence=0)
            return
        self.store.start(offer, offer_event_id=event.id)
        out.emit(JobAccepted(**ids), sequence=0)
        self._reporter.emit_state(out)
        asyncio.get_running_loop().call_soon(self._start_flight)

    def _on_cancel(self, event: Envelope[Any], out: Outbox) -> None:
        cancel: JobCancelled = event.data
        job = self.store.job(cancel.job_id)
        if job is None or job.outcome is not None:
            return  # never ours, or already over
        if not can_abandon(job.package):
            seq = self.store.next_sequence(job.job_id)
            out.emit(
                JobCancellationRefused(
                    drone_id=cancel.drone_id,
                    job_id=cancel.job_id,
                    delivery_id=cancel.delivery_id,
                    reason=f"package {job.package.value}: past pickup, the job cannot be cancelled",
                ),
                sequence=seq,
            )
            return
        self.store.update(job.job_id, outcome="cancelled", phase=JobPhase.RETURNING)
        # The answer the scheduler waits for before giving the delivery to another drone: this
        # one ended the job without the package (a refusal above says it has it).
        out.emit(
            JobFailed(
                **_ids(job),
                reason=f"cancelled: {cancel.reason}"[:500],
                package_state=job.package,
                location=self.fc.state().position,
            ),
            correlationid=job.offer.delivery_id,
            causationid=event.id,
            sequence=self.store.next_sequence(job.job_id),
        )
        asyncio.get_running_loop().call_soon(self._start_flight)

    def _on_command(self, event: Envelope[Any], _: Outbox) -> None:
        # Executed after the ack: a command lost in a crash is not replayed later, when it
        # may no longer be safe; the operator sees no reply and decides again.
        task = asyncio.get_running_loop().create_task(self._execute(event))
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    # --- flying ----------------------------------------------------------------------------

    def _start_flight(self) -> None:
        if self._flight is not None and not self._flight.done():
            self._flight.cancel()
        self._flight = asyncio.get_running_loop().create_task(
            self._fly(), name=f"{self.settings.drone_id}.flight"
        )

    async def _fly(self) -> None:
        job = self.store.active_job()
        if job is None:
            return
        try:
            for phase in phases_from(job.phase):
                job = self._enter(job, phase)
                await self._fly_phase(job, phase)
        except FailsafeError as exc:
            await self._fail(job, failure_reason(exc.failsafe))
        except FlightCommandError as exc:
            await self._fail(job, f"flight_controller_refused: {exc.reason}")
        except TimeoutError:
            await self._fail(job, "stalled: no progress within the flight time budget")

    def _enter(self, job: JobRecord, phase: JobPhase) -> JobRecord:
        """Record the phase; while the job can still succeed, tell the cloud."""
        with self.bus.transaction() as out:
            current = self.store.job(job.job_id)
            self.store.update(job.job_id, phase=phase)
            if current is not None and current.outcome is None:
                seq = self.store.next_sequence(job.job_id)
                state = self.fc.state()
                out.emit(
                    JobProgressed(
                        **_ids(job), phase=phase, position=state.position, eta_s=state.eta_s
                    ),
                    correlationid=job.offer.delivery_id,
                    causationid=job.offer_event_id,
                    sequence=seq,
                )
            self._reporter.emit_state(out)
        refreshed = self.store.job(job.job_id)
        assert refreshed is not None  # noqa: S101 - we just wrote it
        return refreshed

    async def _fly_phase(self, job: JobRecord, phase: JobPhase) -> None:
        offer = job.offer
        if phase is JobPhase.TO_PICKUP:
            await self._fly_to(offer.pickup)
        elif phase is JobPhase.LOADING:
            if job.package is PackageState.NOT_LOADED:
                await self.fc.load_payload(offer.payload_kg)
                await self.clock.sleep(self.settings.dwell_s)
                self._record_package(job, PackageState.ON_BOARD, DroneEventKind.PACKAGE_LOADED)
        elif phase is JobPhase.TO_DROPOFF:
            await self._fly_to(offer.dropoff)
        elif phase is JobPhase.RELEASING:
            if job.package is PackageState.ON_BOARD:
                await self.fc.release_payload()
                await self.clock.sleep(self.settings.dwell_s)
                self._record_package(job, PackageState.RELEASED, DroneEventKind.PACKAGE_RELEASED)
        elif phase is JobPhase.RETURNING:
            await self._fly_to(self.fc.state().home, land=False)
        elif phase is JobPhase.LANDING:
            await self.fc.land()
            await self.fc.wait_until(lambda s: s.landed, timeout_s=self._budget(100))
            self._close(job)

    async def _fly_to(self, target: Location, *, land: bool = True) -> None:
        state = self.fc.state()
        if state.landed and haversine_m(state.position, target) <= _ARRIVED_M:
            return
        if state.landed:
            await self.fc.arm()
            await self.fc.takeoff(self.settings.cruise_altitude_m)
        await self.fc.goto(target)
        await self.fc.wait_until(
            lambda s: haversine_m(s.position, target) <= _ARRIVED_M,
            timeout_s=self._budget(haversine_m(state.position, target)),
        )
        if land:
            await self.fc.land()
            await self.fc.wait_until(lambda s: s.landed, timeout_s=self._budget(100))

    def _budget(self, distance_m: float) -> float:
        """Simulated seconds a leg may take before the agent calls it stalled."""
        return 3 * (distance_m / 10.0 + 2 * self.settings.cruise_altitude_m / 1.0) + 120

    def _record_package(self, job: JobRecord, package: PackageState, kind: DroneEventKind) -> None:
        with self.bus.transaction() as out:
            released = package is PackageState.RELEASED
            self.store.update(
                job.job_id, package=package, outcome="succeeded" if released else None
            )
            state = self.fc.state()
            self._reporter.emit_event(out, kind, job=job, state=state)
            if released:
                out.emit(
                    JobSucceeded(**_ids(job), location=state.position),
                    correlationid=job.offer.delivery_id,
                    causationid=job.offer_event_id,
                    sequence=self.store.next_sequence(job.job_id),
                )

    async def _fail(self, job: JobRecord, reason: str) -> None:
        """Report the failure once, then let the flight controller's failsafe bring it down."""
        current = self.store.job(job.job_id)
        if current is not None and current.outcome is None:
            with self.bus.transaction() as out:
                self.store.update(job.job_id, outcome="failed")
                seq = self.store.next_sequence(job.job_id)
                out.emit(
                    JobFailed(
                        **_ids(job),
                        reason=reason[:500],
                        package_state=current.package,
                        location=self.fc.state().position,
                    ),
                    correlationid=job.offer.delivery_id,
                    causationid=job.offer_event_id,
                    sequence=seq,
                )
                self._reporter.emit_state(out)
        with suppress(FailsafeError, TimeoutError):
            await self.fc.wait_until(lambda s: s.landed, timeout_s=self._budget(20_000))
        self._close(job)

    def _close(self, job: JobRecord) -> None:
        with self.bus.transaction() as out:
            self.store.update(job.job_id, closed=True)
            self._reporter.emit_state(out)

    # --- operator commands -----------------------------------------------------------------

    async def _execute(self, event: Envelope[Any]) -> None:
        command: DroneCommand = event.data
        actions = {
            CommandName.HOLD: self.fc.hold,
            CommandName.RESUME: self.fc.resume,
            CommandName.RETURN: self.fc.return_home,
            CommandName.LAND: self.fc.land,
        }
        result, detail = CommandResult.ACCEPTED, None
        try:
            await actions[command.command]()
        except FlightCommandError as exc:
            result, detail = CommandResult.DENIED, exc.reason
        job = self.store.active_job()
        aborts = command.command in (CommandName.RETURN, CommandName.LAND)
        if result is CommandResult.ACCEPTED and aborts and job is not None and job.outcome is None:
            if self._flight is not None:
                self._flight.cancel()
            self._flight = asyncio.get_running_loop().create_task(
                self._fail(job, f"operator_{command.command.value}")
            )
        with self.bus.transaction() as out:
            out.emit(
                CommandReply(
                    drone_id=command.drone_id,
                    command_id=command.command_id,
                    command=command.command,
                    result=result,
                    detail=detail,
                ),
                correlationid=event.correlationid,
                causationid=event.id,
            )


def _ids(job: JobRecord) -> dict[str, str]:
    return {
        "drone_id": job.offer.drone_id,
        "job_id": job.offer.job_id,
        "delivery_id": job.offer.delivery_id,
    }


__all__ = ["DroneAgent", "Link", "drone_presence"]
