"""What a drone tells the cloud unasked: telemetry, drone events and its retained state.

Telemetry goes out at a fixed rate at QoS 0, only while connected; drone events and the
retained `DroneState` go through the outbox when something changed, so they wait in SQLite
while the broker is away.
"""

from contextlib import suppress

from bus.bus import Bus
from bus.outbox import Outbox
from contracts.events import (
    Availability,
    DroneEvent,
    DroneEventKind,
    DroneState,
    Event,
    TelemetryReported,
)
from drone_agent.flight import FlightController, VehicleState
from drone_agent.jobs import failure_reason
from drone_agent.settings import AgentSettings
from drone_agent.store import AgentStore, JobRecord
from flight_model.clock import Clock
from flight_model.geo import haversine_m

_STATE_MOVE_M = 100.0


class Reporter:
    """One drone's reports, and the last retained state it sent."""

    def __init__(
        self,
        settings: AgentSettings,
        bus: Bus,
        fc: FlightController,
        store: AgentStore,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.fc = fc
        self.store = store
        self.clock = clock
        self._telemetry_seq = 0
        self._last_state: DroneState | None = None

    async def run(self) -> None:
        """Telemetry at the configured rate; drone events and state on change."""
        period = 1.0 / self.settings.telemetry_hz
        previous = self.fc.state()
        due = self.clock.monotonic()
        while True:
            state = self.fc.state()
            self._telemetry_seq += 1
            job = self.store.active_job()
            await self.bus.publish_volatile(
                self._telemetry(state, job), sequence=self._telemetry_seq
            )
            kinds = transitions(previous, state, low_pct=self.settings.battery_low_pct)
            if kinds or self._state_event(state, job) != self._last_state:
                with self.bus.transaction() as out:
                    for kind in kinds:
                        self.emit_event(out, kind, job=job, state=state)
                    self.emit_state(out)
            previous = state
            # A fixed rate, not a fixed pause: the time a report takes must not stretch the
            # period (1,000 drones in one process reported at 0.94 Hz instead of 1 Hz). A loop
            # that fell behind starts afresh rather than catching up in a burst.
            due = max(due + period, self.clock.monotonic())
            await self.clock.sleep(due - self.clock.monotonic())

    def _telemetry(self, state: VehicleState, job: JobRecord | None) -> TelemetryReported:
        return TelemetryReported(
            drone_id=self.settings.drone_id,
            session=self.bus.session,
            position=state.position,
            ground_speed_mps=max(0.0, state.ground_speed_mps),
            climb_rate_mps=state.climb_rate_mps,
            heading_deg=state.heading_deg % 360.0,
            battery_pct=min(100.0, max(0.0, state.battery_pct)),
            phase=state.phase,
            job_id=job.job_id if job else None,
            eta_s=state.eta_s,
        )

    def _state_event(self, state: VehicleState, job: JobRecord | None) -> DroneState:
        if job is not None or not state.landed:
            availability = Availability.BUSY
        elif not fc_ready(state) or state.battery_pct < self.settings.battery_low_pct:
            availability = Availability.UNAVAILABLE
        else:
            availability = Availability.IDLE
        last = self._last_state
        battery_pct = float(round(min(100.0, max(0.0, state.battery_pct))))
        energy_wh = max(0.0, round(state.energy_wh, 1))
        position = state.position
        if last is not None:
            # In the air, battery and position are telemetry's: a scheduler reads the retained
            # state only of drones on the ground, and a flight would otherwise send dozens.
            if not state.landed or last.battery_pct == battery_pct:
                battery_pct, energy_wh = last.battery_pct, last.energy_wh
            if not state.landed or haversine_m(last.position, position) < _STATE_MOVE_M:
                position = last.position
        return DroneState(
            drone_id=self.settings.drone_id,
            availability=availability,
            battery_pct=battery_pct,
            energy_wh=energy_wh,
            position=position,
            home=state.home,
            max_payload_kg=self.settings.max_payload_kg,
            job_id=job.job_id if job else None,
        )

    def emit_state(self, out: Outbox) -> None:
        """Queue the retained state if it changed since the last one sent."""
        event = self._state_event(self.fc.state(), self.store.active_job())
        if event != self._last_state:
            out.emit(event)
            self._last_state = event

    def emit_event(
        self, out: Outbox, kind: DroneEventKind, *, job: JobRecord | None, state: VehicleState
    ) -> None:
        """Queue one drone event (about the job under way, if any)."""
        data: Event = DroneEvent(
            drone_id=self.settings.drone_id,
            kind=kind,
            job_id=job.job_id if job else None,
            position=state.position,
        )
        out.emit(data, correlationid=job.offer.delivery_id if job else None)


def fc_ready(state: VehicleState) -> bool:
    """Whether the vehicle could fly a job now: GPS fix, no failsafe, link to its controller."""
    return state.gps_ok and state.failsafe is None and state.link_ok


def transitions(
    before: VehicleState, after: VehicleState, *, low_pct: float
) -> list[DroneEventKind]:
    """Drone events implied by two consecutive states."""
    kinds = []
    if before.landed and not after.landed:
        kinds.append(DroneEventKind.TAKEOFF)
    if not before.landed and after.landed:
        kinds.append(DroneEventKind.LANDED)
    if before.battery_pct >= low_pct > after.battery_pct:
        kinds.append(DroneEventKind.BATTERY_LOW)
    if after.failsafe and after.failsafe != before.failsafe:
        with suppress(ValueError):
            kinds.append(DroneEventKind(failure_reason(after.failsafe)))
    if before.link_ok and not after.link_ok:
        kinds.append(DroneEventKind.FC_LINK_LOST)
    if not before.link_ok and after.link_ok:
        kinds.append(DroneEventKind.FC_LINK_RESTORED)
    return kinds
