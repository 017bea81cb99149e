"""The controller's loop: one tick of failure injection, failsafes, guidance, physics and energy."""

from dataclasses import asdict
from typing import Any

from firmware_sim import failsafes, guidance, physics
from firmware_sim.battery import Battery
from firmware_sim.failsafes import Failsafe, FailsafeAction, FailsafeConfig, Health
from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.flight import Flight
from firmware_sim.physics import Motion
from firmware_sim.state import SimEvent
from flight_model.airframe import Airframe
from flight_model.energy import EnergyModel
from flight_model.geo import heading_deg
from flight_model.phases import FlightPhase

_GROUNDED = frozenset({FlightPhase.DISARMED, FlightPhase.ARMED})
_LANDING = frozenset({FlightPhase.LAND, FlightPhase.EMERGENCY_LAND})
_MIN_TRACK_SPEED_MPS = 0.3  # below this the heading is kept: hover jitter must not spin it


class Autopilot:
    """Steps one vehicle's `Flight` record; holds its fixed parts, its battery and its faults.

    Args:
        airframe: the default airframe when omitted.
        battery: a full pack of `airframe.battery_wh` when omitted.
        failures: scheduled failures, if any.
        config: failsafe thresholds, PX4-like defaults when omitted.
    """

    def __init__(
        self,
        *,
        airframe: Airframe | None = None,
        battery: Battery | None = None,
        failures: FailurePlan | None = None,
        config: FailsafeConfig | None = None,
    ) -> None:
        a = self.airframe = airframe if airframe is not None else Airframe()
        self.battery = (
            battery
            if battery is not None
            else Battery(
                a.battery_wh, cells=a.cells, internal_resistance_ohm=a.internal_resistance_ohm
            )
        )
        self.failures = failures
        self.config = config if config is not None else FailsafeConfig()
        self.energy = EnergyModel(a)

    def to_dict(self) -> dict[str, Any]:
        """Airframe, thresholds, battery and failure plan as JSON-able data."""
        return {
            "airframe": asdict(self.airframe),
            "config": asdict(self.config),
            "battery": self.battery.to_dict(),
            "failures": None if self.failures is None else self.failures.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Autopilot":
        """Rebuild an autopilot saved by `to_dict`."""
        plan = data["failures"]
        return cls(
            airframe=Airframe(**data["airframe"]),
            battery=Battery.from_dict(data["battery"]),
            failures=None if plan is None else FailurePlan.from_dict(plan),
            config=FailsafeConfig(**data["config"]),
        )

    def tick(self, flight: Flight, dt: float, events: list[SimEvent]) -> None:
        """Advance `flight` by `dt` seconds (short enough for the physics), adding events."""
        flight.time_s += dt
        if flight.armed:
            flight.armed_s += dt
        if self.failures is not None:
            for failure in self.failures.due(flight.armed_s, flight.phase):
                self.apply(flight, failure, events)
        self._check_failsafes(flight, events)
        if flight.phase not in _GROUNDED:
            before = flight.motion
            sp = guidance.setpoint(flight.phase, before, flight.target, self.airframe)
            flight.motion = physics.step(before, sp, self.airframe, dt)
            self._after_move(flight, before, events)
        m = flight.motion
        phase = physics.power_phase(m, armed=flight.armed)
        mass = self.airframe.empty_mass_kg + flight.payload_kg
        flight.load_w = self.energy.power_w(phase, mass, m.v_up)
        self.battery.drain(flight.load_w, dt, armed=flight.armed, factor=flight.drain_factor)

    def apply(self, flight: Flight, failure: Failure, events: list[SimEvent]) -> None:
        """Make `failure` take effect now."""
        if failure.component == "battery" and failure.value is not None:
            if failure.kind == "drop":
                self.battery.drop_to(failure.value)
            else:
                flight.drain_factor = failure.value
        elif failure.component == "gps":
            flight.gps_ok = failure.kind == "ok"
        elif failure.component == "motor":
            flight.motors_ok = False
        else:
            flight.companion_link_ok = failure.kind == "ok"
            if flight.heartbeat_at_s is None:  # a cut link is watched even before any heartbeat
                flight.heartbeat_at_s = flight.time_s
        events.append(SimEvent("failure", str(failure)))

    def health(self, flight: Flight) -> Health:
        """What the failsafe rules see now."""
        silent = None if flight.heartbeat_at_s is None else flight.time_s - flight.heartbeat_at_s
        return Health(
            in_air=not flight.motion.on_ground,
            battery_pct=self.battery.percent,
            gps_ok=flight.gps_ok,
            motors_ok=flight.motors_ok,
            link_silent_s=silent,
        )

    def start_rtl(self, flight: Flight) -> None:
        """Return home: climb to at least cruise altitude, fly home, land."""
        altitude = max(flight.motion.up, self.airframe.cruise_altitude_m)
        flight.target = (0.0, 0.0, min(altitude, self.airframe.max_altitude_m))
        flight.clear_goto()
        flight.phase = FlightPhase.RTL

    def _after_move(self, flight: Flight, before: Motion, events: list[SimEvent]) -> None:
        m = flight.motion
        if m.ground_speed_mps > _MIN_TRACK_SPEED_MPS:
            flight.heading_deg = heading_deg(m.v_east, m.v_north)
        if before.on_ground and not m.on_ground:
            events.append(SimEvent("takeoff"))
        elif m.on_ground and not before.on_ground:
            flight.phase, flight.target, flight.land_at_s = FlightPhase.ARMED, None, None
            events.append(SimEvent("landed"))
        elif guidance.reached(flight.phase, m, flight.target, self.airframe):
            if flight.phase is FlightPhase.CRUISE:
                flight.clear_goto()
                events.append(SimEvent("reached", "target"))
            else:
                events.append(SimEvent("reached", "altitude"))
            flight.phase = FlightPhase.HOLD  # loiter at the target (guidance.setpoint)

    def _check_failsafes(self, flight: Flight, events: list[SimEvent]) -> None:
        health = self.health(flight)
        if not flight.armed:
            # Disarmed, the failsafe just mirrors the faults, so a repaired drone is ready again.
            now = failsafes.check(health, active=None, config=self.config)
            if now is not flight.failsafe:
                flight.failsafe = now
                if now is not None:
                    self._announce(now, events, grounded=True)
            return
        engage = failsafes.check(health, active=flight.failsafe, config=self.config)
        if engage is not None:
            self._engage(flight, engage, events)
        if (
            flight.land_at_s is not None
            and flight.time_s >= flight.land_at_s
            and flight.phase is FlightPhase.HOLD
        ):
            flight.phase, flight.land_at_s = FlightPhase.LAND, None

    def _announce(self, failsafe: Failsafe, events: list[SimEvent], *, grounded: bool) -> None:
        for kind in failsafe.events:
            if kind == "battery_low":
                events.append(SimEvent(kind, f"{self.battery.percent:.1f}%"))
            else:
                events.append(SimEvent(kind, "grounded" if grounded else str(failsafe.action)))

    def _engage(self, flight: Flight, failsafe: Failsafe, events: list[SimEvent]) -> None:
        grounded = flight.motion.on_ground
        flight.failsafe = failsafe
        flight.clear_goto()
        flight.land_at_s = None
        self._announce(failsafe, events, grounded=grounded)
        if grounded:
            flight.phase, flight.target = FlightPhase.ARMED, None  # a take-off not yet begun stops
        elif failsafe.action is FailsafeAction.EMERGENCY_LAND:
            flight.phase, flight.target = FlightPhase.EMERGENCY_LAND, None
        elif flight.phase in _LANDING:
            pass  # already coming down: anything but an emergency would only prolong the flight
        elif failsafe.action is FailsafeAction.RTL:
            if flight.phase is not FlightPhase.RTL:
                self.start_rtl(flight)
        elif failsafe.action is FailsafeAction.HOLD_THEN_LAND:
            flight.phase, flight.target = FlightPhase.HOLD, None
            flight.land_at_s = flight.time_s + self.config.gps_hold_s
        else:
            flight.phase, flight.target = FlightPhase.LAND, None
