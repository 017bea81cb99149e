"""What the simulated flight controller reports: its state, its events and its command acks."""

from dataclasses import dataclass
from enum import StrEnum

from contracts.ids import Location
from flight_model.phases import FlightPhase


class SimEventKind(StrEnum):
    """Kinds of `SimEvent`; the names match `contracts.events.DroneEventKind` where they overlap."""

    TAKEOFF = "takeoff"  # left the ground
    REACHED = "reached"  # a take-off altitude ("altitude") or a goto target ("target")
    LANDED = "landed"  # touched down; the vehicle stays armed
    BATTERY_LOW = "battery_low"
    FAILSAFE_BATTERY = "failsafe_battery"
    FAILSAFE_GPS = "failsafe_gps"
    FAILSAFE_LINK = "failsafe_link"
    FAILSAFE_MOTOR = "failsafe_motor"
    FAILURE = "failure"  # an injected failure took effect, e.g. "gps off"


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something that happened during a step; `kind` is a `SimEventKind` value."""

    kind: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class CommandAck:
    """A flight controller's answer to a command, like MAVLink's COMMAND_ACK.

    Attributes:
        accepted: ACCEPTED when true, DENIED otherwise.
        reason: why it was denied, or a note on an accepted repeat ("already armed").
        released_kg: for `release_payload`, the mass let go.
    """

    accepted: bool
    reason: str | None = None
    released_kg: float = 0.0


ACCEPTED = CommandAck(accepted=True)


def denied(reason: str) -> CommandAck:
    """A refusal with its reason."""
    return CommandAck(accepted=False, reason=reason)


@dataclass(frozen=True, slots=True)
class VehicleState:
    """A snapshot of the vehicle as its telemetry would describe it.

    Attributes:
        position: where it is; `altitude_m` is the height above home.
        landed: on the ground, armed or not.
        heading_deg: direction of travel, kept from the last motion while hovering.
        failsafe: the engaged failsafe, named by its event in `DroneEventKind`'s vocabulary
            ("failsafe_battery", "failsafe_gps", "failsafe_link", "failsafe_motor"), if any.
        failsafe_reason: the rule behind it ("battery_low", "battery_critical", "gps",
            "companion_link", "motor").
        target: where the current phase is taking it (a landing's target is the ground below).
        eta_s: seconds to `target` at nominal speeds, None without a target.
    """

    vehicle_id: str
    position: Location
    home: Location
    phase: FlightPhase
    armed: bool
    landed: bool
    ground_speed_mps: float
    climb_rate_mps: float
    heading_deg: float
    battery_pct: float
    energy_wh: float
    voltage_v: float
    gps_ok: bool
    payload_kg: float
    failsafe: str | None
    failsafe_reason: str | None
    target: Location | None
    eta_s: float | None
