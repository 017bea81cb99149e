"""From a simulated vehicle's state to what a PX4 autopilot would say about itself. Pure.

The table of docs/mavlink.md ("Modes, PX4 encoding"): a flight phase becomes a PX4 AUTO sub
mode, the armed flag a `base_mode` bit, an engaged failsafe a CRITICAL or EMERGENCY
`system_status` plus the STATUSTEXT that names it.
"""

from dataclasses import dataclass

from firmware_sim.failsafes import BY_REASON, FailsafeAction
from firmware_sim.mavlink.protocol import (
    LandedState,
    MavState,
    ModeFlag,
    Px4AutoMode,
    Px4MainMode,
    Severity,
)
from firmware_sim.state import VehicleState
from flight_model.geo import haversine_m
from flight_model.phases import FlightPhase

# PX4 sets these with every AUTO mode (px4_map in pymavlink: base_mode 29 for AUTO.*).
_AUTO_FLAGS = (
    ModeFlag.CUSTOM_MODE_ENABLED
    | ModeFlag.AUTO_ENABLED
    | ModeFlag.GUIDED_ENABLED
    | ModeFlag.STABILIZE_ENABLED
)

_MODE_BY_PHASE = {
    FlightPhase.DISARMED: Px4AutoMode.LOITER,
    FlightPhase.ARMED: Px4AutoMode.LOITER,
    FlightPhase.TAKEOFF: Px4AutoMode.TAKEOFF,
    # PX4 flies a reposition in Hold, so cruise and hold share a mode.
    FlightPhase.CRUISE: Px4AutoMode.LOITER,
    FlightPhase.HOLD: Px4AutoMode.LOITER,
    FlightPhase.LAND: Px4AutoMode.LAND,
    FlightPhase.EMERGENCY_LAND: Px4AutoMode.LAND,
    FlightPhase.RTL: Px4AutoMode.RTL,
}

_LANDED_BY_PHASE = {
    FlightPhase.TAKEOFF: LandedState.TAKEOFF,
    FlightPhase.CRUISE: LandedState.IN_AIR,
    FlightPhase.HOLD: LandedState.IN_AIR,
    FlightPhase.LAND: LandedState.LANDING,
    FlightPhase.EMERGENCY_LAND: LandedState.LANDING,
    FlightPhase.RTL: LandedState.IN_AIR,
}

# Failsafes that keep the vehicle flying (return, hold) are CRITICAL; those that put it down
# now are EMERGENCY, as PX4 raises system_status.
_STATUS_BY_ACTION = {
    FailsafeAction.RTL: MavState.CRITICAL,
    FailsafeAction.HOLD_THEN_LAND: MavState.CRITICAL,
    FailsafeAction.LAND: MavState.EMERGENCY,
    FailsafeAction.EMERGENCY_LAND: MavState.EMERGENCY,
}


@dataclass(frozen=True, slots=True)
class Px4Status:
    """The HEARTBEAT fields and EXTENDED_SYS_STATE's `landed_state` for one vehicle state."""

    base_mode: int
    custom_mode: int
    system_status: MavState
    landed_state: LandedState

    @property
    def sub_mode(self) -> Px4AutoMode:
        """The AUTO sub mode encoded in `custom_mode`."""
        return Px4AutoMode(self.custom_mode >> 24)


@dataclass(frozen=True, slots=True)
class StatusText:
    """A STATUSTEXT to send."""

    severity: Severity
    text: str


def custom_mode(sub: Px4AutoMode, main: Px4MainMode = Px4MainMode.AUTO) -> int:
    """PX4's `custom_mode`: main mode in bits 16-23, sub mode in bits 24-31."""
    return (int(main) << 16) | (int(sub) << 24)


def px4_status(
    state: VehicleState, *, mission_active: bool = False, home_radius_m: float = 2.0
) -> Px4Status:
    """What the heartbeat and EXTENDED_SYS_STATE report for `state`.

    Args:
        state: the vehicle's state.
        mission_active: a mission is being flown: the mode is AUTO.MISSION whatever the phase.
        home_radius_m: an RTL this close to home is descending onto it (LANDING), as
            the simulator's return lands once within its waypoint radius.
    """
    sub = Px4AutoMode.MISSION if mission_active else _MODE_BY_PHASE[state.phase]
    base = _AUTO_FLAGS | (ModeFlag.SAFETY_ARMED if state.armed else 0)
    return Px4Status(
        base_mode=int(base),
        custom_mode=custom_mode(sub),
        system_status=system_status(state),
        landed_state=landed_state(state, home_radius_m=home_radius_m),
    )


def system_status(state: VehicleState) -> MavState:
    """STANDBY on the ground disarmed, ACTIVE armed, CRITICAL/EMERGENCY under a failsafe."""
    failsafe = BY_REASON.get(state.failsafe_reason) if state.failsafe_reason else None
    if failsafe is not None:
        return _STATUS_BY_ACTION[failsafe.action]
    if state.phase is FlightPhase.EMERGENCY_LAND:
        return MavState.EMERGENCY
    return MavState.ACTIVE if state.armed else MavState.STANDBY


def landed_state(state: VehicleState, *, home_radius_m: float = 2.0) -> LandedState:
    """ON_GROUND, TAKEOFF, IN_AIR or LANDING, from the phase and whether it is on the ground."""
    if state.phase in {FlightPhase.DISARMED, FlightPhase.ARMED}:
        return LandedState.ON_GROUND
    if state.landed and state.phase in {FlightPhase.CRUISE, FlightPhase.RTL}:
        return LandedState.TAKEOFF  # a goto or return from the ground lifts off by itself
    if state.phase is FlightPhase.RTL and haversine_m(state.position, state.home) <= home_radius_m:
        return LandedState.LANDING  # over home, the return is its final descent
    return _LANDED_BY_PHASE[state.phase]


def failsafe_text(state: VehicleState) -> StatusText | None:
    """The STATUSTEXT naming the engaged failsafe, `"failsafe_<kind>: <rule>"`, if any.

    Its severity matches the heartbeat: EMERGENCY when the status is, else CRITICAL.
    """
    if state.failsafe is None:
        return None
    status = system_status(state)
    severity = Severity.EMERGENCY if status is MavState.EMERGENCY else Severity.CRITICAL
    return StatusText(severity, f"{state.failsafe}: {state.failsafe_reason}")


def phase_for_mode(sub: int) -> str | None:
    """DO_SET_MODE's AUTO sub mode as the name of what to do, None when not flown here."""
    names = {
        Px4AutoMode.LOITER: "hold",
        Px4AutoMode.RTL: "rtl",
        Px4AutoMode.LAND: "land",
        Px4AutoMode.MISSION: "mission",
        Px4AutoMode.TAKEOFF: "takeoff",
    }
    try:
        return names[Px4AutoMode(sub)]
    except ValueError:
        return None
