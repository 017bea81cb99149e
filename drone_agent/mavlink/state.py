"""MAVLink messages folded into the agent's normalised `VehicleState` (docs/mavlink.md). Pure.

`fold` takes one message at a time into an immutable `Telemetry`; the adapter's own commands
go in as an `Intent` (where it sent the vehicle, whether it paused it, what the gripper
holds), because MAVLink reports neither a reposition target nor a payload; `normalise` turns
both into a `VehicleState`. No I/O, no clock: the link watchdog lives in the controller.

Past 400 lines because it is one table read two ways: every message the agent folds and every
rule that turns the fold into a phase, each a few lines, kept together so that a change to one
message shows its effect on the phase beside it.
"""

import math
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

from contracts.ids import Location
from drone_agent.flight import VehicleState
from drone_agent.mavlink.messages import (
    GPS_FIX_TYPE_3D_FIX,
    MAV_AUTOPILOT_ARDUPILOTMEGA,
    MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
    MAV_MODE_FLAG_SAFETY_ARMED,
    MAV_SEVERITY_CRITICAL,
    MAV_STATE_CRITICAL,
    MAV_STATE_EMERGENCY,
    BatteryStatus,
    CommandAck,
    ExtendedSysState,
    GlobalPosition,
    GpsRaw,
    Heartbeat,
    HomePosition,
    LandedState,
    Message,
    StatusText,
    SysStatus,
)
from flight_model.airframe import Airframe
from flight_model.geo import haversine_m

UNKNOWN_FAILSAFE = "failsafe_unknown"
"""The failsafe while the status is CRITICAL/EMERGENCY and no failsafe text said which."""

REBOOT_JUMP_MS = 10_000
"""A position this much older than the newest means the flight controller rebooted."""

_FAILSAFE_TEXT = re.compile(r"(failsafe_[a-z0-9_]+)\s*:")
_UNKNOWN_HEADING = 65_535
_MOVING_MPS = 0.5
_MIN_ALT_M, _MAX_ALT_M = -500.0, 10_000.0
_MAX_LAT, _MAX_LON = 90.0, 180.0
_MAX_PCT = 100
_NOWHERE = Location(latitude=0.0, longitude=0.0)


class ModeKind(StrEnum):
    """What a flight mode means for the agent, whatever the autopilot calls it."""

    TAKEOFF = "takeoff"
    POSITION = "position"  # hover, or fly to a commanded point (PX4 Hold, ArduPilot GUIDED)
    MISSION = "mission"
    RTL = "rtl"
    LAND = "land"
    OTHER = "other"  # manual, offboard, ...: a mode the agent never commands


@dataclass(frozen=True, slots=True)
class FlightMode:
    """A decoded `custom_mode`: the autopilot's own name and what it means."""

    name: str
    kind: ModeKind


# PX4: custom_mode = main << 16 | sub << 24 (px4_custom_mode.h).
_PX4_MAIN = {
    1: "MANUAL",
    2: "ALTCTL",
    3: "POSCTL",
    4: "AUTO",
    5: "ACRO",
    6: "OFFBOARD",
    7: "STABILIZED",
    8: "RATTITUDE",
    9: "SIMPLE",
    10: "TERMINATION",
}
_PX4_AUTO = {
    1: ("READY", ModeKind.OTHER),
    2: ("TAKEOFF", ModeKind.TAKEOFF),
    3: ("LOITER", ModeKind.POSITION),
    4: ("MISSION", ModeKind.MISSION),
    5: ("RTL", ModeKind.RTL),
    6: ("LAND", ModeKind.LAND),
    7: ("RTGS", ModeKind.RTL),
    8: ("FOLLOW_TARGET", ModeKind.OTHER),
    9: ("PRECLAND", ModeKind.LAND),
    10: ("VTOL_TAKEOFF", ModeKind.TAKEOFF),
}
_PX4_AUTO_MAIN = 4

# ArduCopter's mode numbers (pymavlink's mode_mapping_acm); decoded only, untested on hardware.
_ARDUCOPTER = {
    0: "STABILIZE",
    1: "ACRO",
    2: "ALT_HOLD",
    3: "AUTO",
    4: "GUIDED",
    5: "LOITER",
    6: "RTL",
    7: "CIRCLE",
    9: "LAND",
    11: "DRIFT",
    13: "SPORT",
    14: "FLIP",
    15: "AUTOTUNE",
    16: "POSHOLD",
    17: "BRAKE",
    18: "THROW",
    19: "AVOID_ADSB",
    20: "GUIDED_NOGPS",
    21: "SMART_RTL",
    22: "FLOWHOLD",
    23: "FOLLOW",
    24: "ZIGZAG",
    25: "SYSTEMID",
    26: "AUTOROTATE",
    27: "AUTO_RTL",
    28: "TURTLE",
}
_ARDUCOPTER_KINDS = {
    "GUIDED": ModeKind.POSITION,
    "LOITER": ModeKind.POSITION,
    "POSHOLD": ModeKind.POSITION,
    "BRAKE": ModeKind.POSITION,
    "AUTO": ModeKind.MISSION,
    "RTL": ModeKind.RTL,
    "SMART_RTL": ModeKind.RTL,
    "AUTO_RTL": ModeKind.RTL,
    "LAND": ModeKind.LAND,
}


def decode_mode(autopilot: int, base_mode: int, custom_mode: int) -> FlightMode:
    """The flight mode in a HEARTBEAT: ArduCopter's numbering for ARDUPILOTMEGA, else PX4's."""
    if not base_mode & MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
        return FlightMode("UNKNOWN", ModeKind.OTHER)
    if autopilot == MAV_AUTOPILOT_ARDUPILOTMEGA:
        name = _ARDUCOPTER.get(custom_mode, f"MODE_{custom_mode}")
        return FlightMode(name, _ARDUCOPTER_KINDS.get(name, ModeKind.OTHER))
    main, sub = (custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF
    if main == _PX4_AUTO_MAIN:
        sub_name, kind = _PX4_AUTO.get(sub, (f"SUB_{sub}", ModeKind.OTHER))
        return FlightMode(f"AUTO.{sub_name}", kind)
    return FlightMode(_PX4_MAIN.get(main, f"MAIN_{main}"), ModeKind.OTHER)


@dataclass(frozen=True, slots=True)
class Intent:
    """What the adapter itself commanded: MAVLink reports none of it back.

    Attributes:
        target: the point of the last accepted goto, until reached or superseded.
        paused: a hold interrupted the goto; a resume continues it.
        takeoff_altitude_m: the height of the last accepted takeoff (for its ETA).
        payload_kg: from the adapter's own gripper commands.
    """

    target: Location | None = None
    paused: bool = False
    takeoff_altitude_m: float | None = None
    payload_kg: float = 0.0


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Everything learnt from the messages so far, plus the adapter's intent."""

    heartbeat: Heartbeat | None = None
    mode: FlightMode = FlightMode("UNKNOWN", ModeKind.OTHER)
    position: Location | None = None
    boot_ms: int | None = None  # the newest GLOBAL_POSITION_INT time_boot_ms
    ground_speed_mps: float = 0.0
    climb_rate_mps: float = 0.0
    heading_deg: float = 0.0
    home: Location | None = None
    home_amsl_m: float = 0.0
    gps_fix: int = 0
    battery_pct: float | None = None
    landed_state: LandedState = LandedState.UNDEFINED
    failsafe: str | None = None
    failsafe_text: str | None = None  # kind in a failsafe text not yet followed by a heartbeat
    intent: Intent = field(default_factory=Intent)

    @property
    def ready(self) -> bool:
        """A heartbeat, a position and a home arrived: the state means something."""
        return self.heartbeat is not None and self.position is not None and self.home is not None

    @property
    def armed(self) -> bool:
        """The HEARTBEAT's SAFETY_ARMED flag."""
        return self.heartbeat is not None and bool(
            self.heartbeat.base_mode & MAV_MODE_FLAG_SAFETY_ARMED
        )

    @property
    def critical(self) -> bool:
        """`system_status` is CRITICAL or EMERGENCY: a failsafe is engaged."""
        return self.heartbeat is not None and self.heartbeat.system_status in (
            MAV_STATE_CRITICAL,
            MAV_STATE_EMERGENCY,
        )

    @property
    def landed(self) -> bool:
        """EXTENDED_SYS_STATE says on the ground; without one, disarmed counts as landed."""
        if self.landed_state is LandedState.UNDEFINED:
            return not self.armed
        return self.landed_state is LandedState.ON_GROUND


def fold(t: Telemetry, message: Message, airframe: Airframe) -> Telemetry:  # noqa: PLR0911
    """`t` updated by one message from the autopilot."""
    match message:
        case Heartbeat():
            return _heartbeat(t, message)
        case GlobalPosition():
            return _position(t, message, airframe)
        case GpsRaw(fix_type=fix):
            return replace(t, gps_fix=fix)
        case SysStatus(battery_remaining=pct) | BatteryStatus(battery_id=0, battery_remaining=pct):
            return replace(t, battery_pct=float(pct)) if 0 <= pct <= _MAX_PCT else t
        case ExtendedSysState(landed_state=landed):
            try:
                return replace(t, landed_state=LandedState(landed))
            except ValueError:
                return replace(t, landed_state=LandedState.UNDEFINED)
        case HomePosition():
            return _home(t, message)
        case StatusText():
            return _status_text(t, message)
        case BatteryStatus() | CommandAck():
            return t
    return t  # pragma: no cover - the match is exhaustive


def link_lost(t: Telemetry) -> Telemetry:
    """After a silence the flight controller may have rebooted: accept any time_boot_ms."""
    return replace(t, boot_ms=None)


def _heartbeat(t: Telemetry, hb: Heartbeat) -> Telemetry:
    mode = decode_mode(hb.autopilot, hb.base_mode, hb.custom_mode)
    critical = hb.system_status in (MAV_STATE_CRITICAL, MAV_STATE_EMERGENCY)
    # The endpoint sends the failsafe text just before each heartbeat while it lasts: a text
    # belongs to the next heartbeat; without one, the failsafe already known stays.
    failsafe = (t.failsafe_text or t.failsafe or UNKNOWN_FAILSAFE) if critical else None
    intent = t.intent
    if not hb.base_mode & MAV_MODE_FLAG_SAFETY_ARMED:
        intent = replace(intent, target=None, paused=False, takeoff_altitude_m=None)
    elif mode.kind in (ModeKind.RTL, ModeKind.LAND, ModeKind.MISSION) and mode != t.mode:
        intent = replace(intent, target=None, paused=False)  # someone else took over
    return replace(t, heartbeat=hb, mode=mode, failsafe=failsafe, failsafe_text=None, intent=intent)


def _position(t: Telemetry, m: GlobalPosition, airframe: Airframe) -> Telemetry:
    if t.boot_ms is not None and t.boot_ms - REBOOT_JUMP_MS <= m.time_boot_ms < t.boot_ms:
        return t  # older than one already folded: reordered or duplicated on the way
    lat, lon = m.lat / 1e7, m.lon / 1e7
    if (m.lat == 0 and m.lon == 0) or abs(lat) > _MAX_LAT or abs(lon) > _MAX_LON:
        return t  # no global position yet (ArduPilot sends zeros), or nonsense
    alt = min(_MAX_ALT_M, max(_MIN_ALT_M, m.relative_alt / 1000))
    position = Location(latitude=lat, longitude=lon, altitude_m=alt)
    speed = math.hypot(m.vx, m.vy) / 100
    if m.hdg != _UNKNOWN_HEADING:
        heading = m.hdg / 100 % 360.0
    elif speed >= _MOVING_MPS:
        heading = math.degrees(math.atan2(m.vy, m.vx)) % 360.0  # NED: vx north, vy east
    else:
        heading = t.heading_deg
    intent = t.intent
    if intent.target is not None and haversine_m(position, intent.target) <= (
        airframe.waypoint_radius_m
    ):
        intent = replace(intent, target=None, paused=False)  # arrived: now it holds
    return replace(
        t,
        position=position,
        boot_ms=m.time_boot_ms,
        ground_speed_mps=speed,
        climb_rate_mps=-m.vz / 100,
        heading_deg=heading,
        intent=intent,
    )


def _home(t: Telemetry, m: HomePosition) -> Telemetry:
    lat, lon = m.latitude / 1e7, m.longitude / 1e7
    if abs(lat) > _MAX_LAT or abs(lon) > _MAX_LON:
        return t
    return replace(t, home=Location(latitude=lat, longitude=lon), home_amsl_m=m.altitude / 1000)


def failsafe_kind(text: StatusText) -> str | None:
    """The kind in a `failsafe_<kind>: <rule>` text of severity CRITICAL or worse."""
    if text.severity > MAV_SEVERITY_CRITICAL:
        return None
    found = _FAILSAFE_TEXT.match(text.text.lower())
    return found.group(1) if found else None


def _status_text(t: Telemetry, m: StatusText) -> Telemetry:
    kind = failsafe_kind(m)
    if kind is None:
        return t
    return replace(t, failsafe_text=kind, failsafe=kind if t.critical else t.failsafe)


# --- the adapter's own commands ---------------------------------------------------------------


def goto_commanded(t: Telemetry, target: Location) -> Telemetry:
    """An accepted goto: cruise toward `target` until within the waypoint radius."""
    return replace(t, intent=replace(t.intent, target=target, paused=False))


def takeoff_commanded(t: Telemetry, altitude_m: float) -> Telemetry:
    """An accepted takeoff to `altitude_m` above home."""
    return replace(
        t, intent=replace(t.intent, target=None, paused=False, takeoff_altitude_m=altitude_m)
    )


def hold_commanded(t: Telemetry) -> Telemetry:
    """An accepted hold: the goto target is kept for a resume."""
    return replace(t, intent=replace(t.intent, paused=True))


def resume_commanded(t: Telemetry) -> Telemetry:
    """An accepted resume: on to the goto target, if there is one."""
    return replace(t, intent=replace(t.intent, paused=False))


def descent_commanded(t: Telemetry) -> Telemetry:
    """An accepted land or return: no goto target any more."""
    return replace(t, intent=replace(t.intent, target=None, paused=False))


def payload_commanded(t: Telemetry, kg: float) -> Telemetry:
    """An accepted gripper command: `kg` on board (0 after a release)."""
    return replace(t, intent=replace(t.intent, payload_kg=kg))


# --- normalising ------------------------------------------------------------------------------


def phase(t: Telemetry) -> str:  # noqa: PLR0911 - one rule per phase
    """The agent's phase (the simulator's `FlightPhase` vocabulary) for this telemetry.

    A goto from the ground lifts off in Hold (landed_state TAKEOFF) and is `cruise`, as is a
    mission, whatever its item. A mode the agent never commands (manual, offboard, ...)
    reports its own name in lower case.
    """
    if not t.armed:
        return "disarmed"
    kind = t.mode.kind
    lifting = t.landed_state is LandedState.TAKEOFF and t.intent.target is None
    if kind is ModeKind.TAKEOFF or (kind is ModeKind.POSITION and lifting):
        return "takeoff"  # (ArduPilot takes off in GUIDED: only landed_state tells)
    if t.landed:
        return "armed"
    if kind is ModeKind.LAND:
        emergency = t.heartbeat is not None and t.heartbeat.system_status == MAV_STATE_EMERGENCY
        return "emergency_land" if emergency else "land"
    if kind is ModeKind.RTL:
        return "rtl"
    if kind is ModeKind.MISSION:
        return "cruise"
    if kind is ModeKind.POSITION:
        moving = t.intent.target is not None and not t.intent.paused
        return "cruise" if moving else "hold"
    return t.mode.name.lower()[:32]


def eta_s(t: Telemetry, flight_phase: str, airframe: Airframe) -> float | None:  # noqa: PLR0911
    """Seconds to where the vehicle is going, at the airframe's nominal speeds.

    As the simulator's estimate: horizontal at cruise speed, vertical at climb or descent
    speed, the last metres of a landing at land speed; none while holding or on the ground.
    """
    position = t.position or _NOWHERE
    height = position.altitude_m
    if flight_phase == "land":
        return _descent_s(height, airframe)
    if flight_phase == "emergency_land":
        return _descent_s(height, airframe, emergency=True)
    if flight_phase == "takeoff":
        target = t.intent.takeoff_altitude_m
        return None if target is None else max(0.0, target - height) / airframe.climb_speed_mps
    if flight_phase == "rtl" and t.home is not None:
        horizontal = haversine_m(position, t.home)
        if horizontal <= airframe.waypoint_radius_m:
            return _descent_s(height, airframe)
        cruise = airframe.cruise_altitude_m
        climb = max(0.0, cruise - height) / airframe.climb_speed_mps
        return climb + horizontal / airframe.cruise_speed_mps + _descent_s(cruise, airframe)
    if flight_phase == "cruise" and t.intent.target is not None:
        dz = airframe.cruise_altitude_m - height
        vertical = dz / airframe.climb_speed_mps if dz > 0 else -dz / airframe.descent_speed_mps
        horizontal = haversine_m(position, t.intent.target)
        return vertical + horizontal / airframe.cruise_speed_mps
    return None


def _descent_s(height_m: float, airframe: Airframe, *, emergency: bool = False) -> float:
    speed = airframe.emergency_descent_speed_mps if emergency else airframe.descent_speed_mps
    slow = min(max(0.0, height_m), airframe.land_slow_below_m)
    return max(0.0, height_m - slow) / speed + slow / airframe.land_speed_mps


def normalise(t: Telemetry, airframe: Airframe, *, link_ok: bool) -> VehicleState:
    """The `VehicleState` the agent reads; before `t.ready`, a placeholder that is not ready."""
    position = t.position or _NOWHERE
    home = t.home or Location(latitude=position.latitude, longitude=position.longitude)
    battery_pct = t.battery_pct if t.battery_pct is not None else 0.0
    flight_phase = phase(t)
    return VehicleState(
        position=position,
        home=home,
        phase=flight_phase,
        armed=t.armed,
        landed=t.landed,
        ground_speed_mps=t.ground_speed_mps,
        climb_rate_mps=t.climb_rate_mps,
        heading_deg=t.heading_deg,
        battery_pct=battery_pct,
        energy_wh=battery_pct / 100 * airframe.battery_wh,
        gps_ok=t.gps_fix >= GPS_FIX_TYPE_3D_FIX,
        payload_kg=t.intent.payload_kg,
        failsafe=t.failsafe,
        eta_s=eta_s(t, flight_phase, airframe),
        link_ok=link_ok,
    )
