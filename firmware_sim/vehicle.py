"""The simulated flight controller of one drone: commands in, state and events out.

Synchronous and deterministic: time moves only through `step(dt)`, so the same commands and
steps always give the same flight. The controller counts its own time from boot (`time_s`);
nothing here reads the wall clock.
"""

import math
from typing import Any

from contracts.ids import Location
from firmware_sim import failsafes, guidance
from firmware_sim.autopilot import Autopilot
from firmware_sim.battery import Battery
from firmware_sim.failsafes import FailsafeConfig
from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.flight import Flight
from firmware_sim.state import ACCEPTED, CommandAck, SimEvent, VehicleState, denied
from flight_model.airframe import Airframe
from flight_model.geo import from_enu, to_enu
from flight_model.phases import FlightPhase

__all__ = ["CommandAck", "SimEvent", "SimVehicle", "VehicleState"]

MAX_STEP_S = 1.0
"""Longer steps are split, so a late simulator tick cannot make the physics jump."""

_STILL_MPS = 0.5  # slower than this a hovering drone counts as steady enough to release


class SimVehicle:
    """A PX4-flavoured flight controller for one simulated drone.

    Commands answer at once with a `CommandAck`, as a controller answers COMMAND_LONG; their
    effects unfold over later `step` calls.

    Args:
        vehicle_id: the drone's id.
        home: take-off point: the local frame's origin and where a return goes.
        airframe: physical parameters.
        battery: its pack; a full one of `airframe.battery_wh` when omitted.
        failures: scheduled failures, if any.
        failsafe_config: failsafe thresholds.
    """

    def __init__(
        self,
        *,
        vehicle_id: str,
        home: Location,
        airframe: Airframe | None = None,
        battery: Battery | None = None,
        failures: FailurePlan | None = None,
        failsafe_config: FailsafeConfig | None = None,
    ) -> None:
        self.vehicle_id = vehicle_id
        self.home = Location(latitude=home.latitude, longitude=home.longitude)
        self.autopilot = Autopilot(
            airframe=airframe, battery=battery, failures=failures, config=failsafe_config
        )
        self.flight = Flight()
        self.last_heartbeat_s: float | None = None
        self._pending: list[SimEvent] = []

    @property
    def airframe(self) -> Airframe:
        """The vehicle's physical parameters."""
        return self.autopilot.airframe

    @property
    def battery(self) -> Battery:
        """The vehicle's pack."""
        return self.autopilot.battery

    def step(self, dt: float) -> list[SimEvent]:
        """Advance physics, energy, failure injection and failsafes by `dt` simulated seconds."""
        if dt < 0:
            raise ValueError(f"dt must not be negative, got {dt}")
        events, self._pending = self._pending, []
        remaining = dt
        while remaining > 1e-9:  # noqa: PLR2004 - float residue of the split, not time
            chunk = min(remaining, MAX_STEP_S)
            self.autopilot.tick(self.flight, chunk, events)
            remaining -= chunk
        return events

    # --- commands ----------------------------------------------------------------------------

    def arm(self) -> CommandAck:
        """Spin up on the ground; refused without GPS, with a failed motor or a low battery."""
        if self.flight.armed:
            return CommandAck(accepted=True, reason="already armed")
        health = self.autopilot.health(self.flight)
        reason = failsafes.arming_denial(health, self.autopilot.config)
        if reason is not None:
            return denied(reason)
        self.flight.armed, self.flight.phase = True, FlightPhase.ARMED
        return ACCEPTED

    def disarm(self) -> CommandAck:
        """Stop the motors on the ground; this also clears a failsafe, as in PX4."""
        f = self.flight
        if not f.armed:
            return CommandAck(accepted=True, reason="already disarmed")
        if not f.motion.on_ground:
            return denied("in air")
        f.armed, f.phase, f.target, f.failsafe, f.land_at_s = (
            False, FlightPhase.DISARMED, None, None, None,
        )  # fmt: skip
        f.clear_goto()
        self.battery.on_disarm()
        return ACCEPTED

    def takeoff(self, altitude_m: float) -> CommandAck:
        """Climb vertically to `altitude_m` above home, then hold."""
        refusal = self._refuse_flight("takeoff", altitude_m)
        if refusal is not None:
            return refusal
        m = self.flight.motion
        self.flight.target = (m.east, m.north, altitude_m)
        self.flight.phase = FlightPhase.TAKEOFF
        return ACCEPTED

    def goto(self, target: Location, *, altitude_m: float | None = None) -> CommandAck:
        """Fly to above `target` at `altitude_m` (cruise altitude by default), then hold.

        The vehicle first climbs or descends to that altitude, then flies level; from the
        ground it takes off on its own.
        """
        altitude = self.airframe.cruise_altitude_m if altitude_m is None else altitude_m
        refusal = self._refuse_flight("goto", altitude)
        if refusal is not None:
            return refusal
        east, north = to_enu(self.home, target)
        f = self.flight
        f.target = f.goto = (east, north, altitude)
        f.goto_location = Location(
            latitude=target.latitude, longitude=target.longitude, altitude_m=altitude
        )
        f.phase = FlightPhase.CRUISE
        return ACCEPTED

    def hold(self) -> CommandAck:
        """Brake and hover; a goto under way can be taken up again with `resume`."""
        refusal = self._refuse_in_air("hold")
        if refusal is not None:
            return refusal
        self.flight.phase, self.flight.target = FlightPhase.HOLD, None
        return ACCEPTED

    def resume(self) -> CommandAck:
        """Continue the goto a `hold` interrupted."""
        refusal = self._refuse_in_air("resume")
        if refusal is not None:
            return refusal
        f = self.flight
        if f.phase is not FlightPhase.HOLD or f.goto is None:
            return denied("nothing to resume")
        f.target, f.phase = f.goto, FlightPhase.CRUISE
        return ACCEPTED

    def land(self) -> CommandAck:
        """Descend vertically where it is and stay armed on the ground."""
        f = self.flight
        if not f.armed:
            return denied("not armed")
        if f.motion.on_ground:
            return CommandAck(accepted=True, reason="already landed")
        if f.phase not in {FlightPhase.LAND, FlightPhase.EMERGENCY_LAND}:
            f.phase, f.target, f.land_at_s = FlightPhase.LAND, None, None
            f.clear_goto()
        return ACCEPTED

    def return_to_launch(self) -> CommandAck:
        """Climb to at least cruise altitude, fly home and land there."""
        f = self.flight
        if not f.armed:
            return denied("not armed")
        reason = failsafes.command_denial(f.failsafe, "return_to_launch")
        if reason is not None:
            return denied(reason)
        m = f.motion
        if m.on_ground and math.hypot(m.east, m.north) <= self.airframe.waypoint_radius_m:
            return CommandAck(accepted=True, reason="already home")
        if f.phase is not FlightPhase.RTL:
            self.autopilot.start_rtl(f)
        return ACCEPTED

    def load_payload(self, kg: float) -> CommandAck:
        """Take `kg` on board; only on the ground, and only up to the airframe's maximum."""
        f = self.flight
        if not f.motion.on_ground:
            return denied("not landed")
        if kg <= 0:
            return denied("payload must be positive")
        if f.payload_kg + kg > self.airframe.max_payload_kg:
            return denied(f"over max payload ({self.airframe.max_payload_kg} kg)")
        f.payload_kg += kg
        return ACCEPTED

    def release_payload(self) -> CommandAck:
        """Let the package go, landed or hovering steadily low; the ack says how many kg."""
        f = self.flight
        m = f.motion
        if f.payload_kg <= 0:
            return denied("no payload")
        if not m.on_ground:
            if m.up > self.airframe.release_max_height_m:
                return denied(f"too high to release ({m.up:.1f} m)")
            if m.ground_speed_mps > _STILL_MPS or abs(m.v_up) > _STILL_MPS:
                return denied("moving")
        kg, f.payload_kg = f.payload_kg, 0.0
        return CommandAck(accepted=True, released_kg=kg)

    def companion_heartbeat(self, now_s: float | None = None) -> None:
        """Hear the companion computer (the agent); its silence while flying triggers a return.

        Args:
            now_s: the caller's clock, kept in `last_heartbeat_s` for the record. Silence is
                timed on the controller's own clock, as a real one times from its boot, so the
                caller's time base does not matter.
        """
        if not self.flight.companion_link_ok:
            return  # the link is cut: the heartbeat never arrives
        self.flight.heartbeat_at_s = self.flight.time_s
        self.last_heartbeat_s = now_s

    def inject(self, failure: Failure) -> CommandAck:
        """Make `failure` happen now (MAV_CMD_INJECT_FAILURE); its event comes next step."""
        self.autopilot.apply(self.flight, failure, self._pending)
        return ACCEPTED

    def recharge(self) -> CommandAck:
        """Fill the battery (a swap at the pad); only while disarmed."""
        if self.flight.armed:
            return denied("armed")
        self.battery.recharge()
        return ACCEPTED

    def _refuse_in_air(self, command: str) -> CommandAck | None:
        f = self.flight
        if not f.armed or f.motion.on_ground:
            return denied("not flying")
        reason = failsafes.command_denial(f.failsafe, command)
        return None if reason is None else denied(reason)

    def _refuse_flight(self, command: str, altitude_m: float) -> CommandAck | None:
        f = self.flight
        if not f.armed:
            return denied("not armed")
        reason = failsafes.command_denial(f.failsafe, command)
        if reason is not None:
            return denied(reason)
        if not f.gps_ok:
            return denied("no GPS fix")
        if not f.motors_ok:
            return denied("motor failure")
        if not 0 < altitude_m <= self.airframe.max_altitude_m:
            return denied(f"altitude must be in (0, {self.airframe.max_altitude_m:g}] m")
        return None

    # --- reporting and snapshots -------------------------------------------------------------

    def state(self) -> VehicleState:
        """What the controller would report now."""
        f, m = self.flight, self.flight.motion
        return VehicleState(
            vehicle_id=self.vehicle_id,
            position=from_enu(self.home, m.east, m.north, m.up),
            home=self.home,
            phase=f.phase,
            armed=f.armed,
            landed=m.on_ground,
            ground_speed_mps=m.ground_speed_mps,
            climb_rate_mps=m.v_up,
            heading_deg=f.heading_deg,
            battery_pct=self.battery.percent,
            energy_wh=self.battery.energy_wh,
            voltage_v=self.battery.voltage(f.load_w),
            gps_ok=f.gps_ok,
            payload_kg=f.payload_kg,
            failsafe=None if f.failsafe is None else f.failsafe.kind,
            failsafe_reason=None if f.failsafe is None else f.failsafe.reason,
            target=self._target_location(),
            eta_s=guidance.eta_s(f.phase, m, f.target, self.airframe),
        )

    def _target_location(self) -> Location | None:
        f, m = self.flight, self.flight.motion
        if f.phase in {FlightPhase.LAND, FlightPhase.EMERGENCY_LAND}:
            return from_enu(self.home, m.east, m.north)
        if f.target is None:
            return None
        if f.phase is FlightPhase.RTL:
            return self.home
        if f.phase is FlightPhase.CRUISE and f.goto_location is not None:
            return f.goto_location
        return from_enu(self.home, f.target[0], f.target[1], f.target[2])

    def to_dict(self) -> dict[str, Any]:
        """The whole controller as JSON-able data, for `from_dict` to bring back."""
        return {
            "vehicle_id": self.vehicle_id,
            "home": self.home.model_dump(mode="json"),
            "autopilot": self.autopilot.to_dict(),
            "flight": self.flight.to_dict(),
            "last_heartbeat_s": self.last_heartbeat_s,
            "pending": [[e.kind, e.detail] for e in self._pending],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SimVehicle":
        """Restore a controller saved by `to_dict`: it carries on exactly where it was."""
        vehicle = cls(vehicle_id=data["vehicle_id"], home=Location.model_validate(data["home"]))
        vehicle.autopilot = Autopilot.from_dict(data["autopilot"])
        vehicle.flight = Flight.from_dict(data["flight"])
        vehicle.last_heartbeat_s = data["last_heartbeat_s"]
        vehicle._pending = [SimEvent(kind, detail) for kind, detail in data["pending"]]
        return vehicle
