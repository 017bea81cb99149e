"""The mutable memory of a flight controller, in one record that snapshots to JSON."""

from dataclasses import dataclass, field, fields
from typing import Any

from contracts.ids import Location
from firmware_sim.failsafes import BY_REASON, Failsafe
from firmware_sim.guidance import Point
from firmware_sim.physics import Motion
from flight_model.phases import FlightPhase


@dataclass(slots=True)
class Flight:
    """Everything a controller remembers between steps.

    Attributes:
        time_s: seconds stepped since the controller started (its boot clock).
        armed_s: seconds spent armed, summed over flights (what failure times count).
        target: where the current phase steers.
        goto: the last goto target, kept for `resume` after a hold.
        land_at_s: when a GPS-loss hold turns into a landing.
        heartbeat_at_s: `time_s` of the companion's last heartbeat; None before the first.
        drain_factor: battery drain multiplier (an injected failure).
        load_w: the last step's power draw, for the voltage under load.
    """

    motion: Motion = field(default_factory=Motion)
    phase: FlightPhase = FlightPhase.DISARMED
    armed: bool = False
    payload_kg: float = 0.0
    gps_ok: bool = True
    motors_ok: bool = True
    companion_link_ok: bool = True
    time_s: float = 0.0
    armed_s: float = 0.0
    target: Point | None = None
    goto: Point | None = None
    goto_location: Location | None = None
    failsafe: Failsafe | None = None
    land_at_s: float | None = None
    heartbeat_at_s: float | None = None
    drain_factor: float = 1.0
    heading_deg: float = 0.0
    load_w: float = 0.0

    def clear_goto(self) -> None:
        """Forget the paused goto: a new order replaced it."""
        self.goto = None
        self.goto_location = None

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-able data."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        m = self.motion
        data["motion"] = [m.east, m.north, m.up, m.v_east, m.v_north, m.v_up]
        data["phase"] = self.phase.value
        data["target"] = None if self.target is None else list(self.target)
        data["goto"] = None if self.goto is None else list(self.goto)
        if self.goto_location is not None:
            data["goto_location"] = self.goto_location.model_dump(mode="json")
        data["failsafe"] = None if self.failsafe is None else self.failsafe.reason
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Flight":
        """Rebuild a record saved by `to_dict`."""
        values = dict(data)
        values["motion"] = Motion(*data["motion"])
        values["phase"] = FlightPhase(data["phase"])
        values["target"] = _point(data["target"])
        values["goto"] = _point(data["goto"])
        location = data["goto_location"]
        values["goto_location"] = None if location is None else Location.model_validate(location)
        values["failsafe"] = None if data["failsafe"] is None else BY_REASON[data["failsafe"]]
        return cls(**values)


def _point(value: list[float] | None) -> Point | None:
    return None if value is None else (value[0], value[1], value[2])
