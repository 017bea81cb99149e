"""The MAVLink messages the adapter reads, as typed values, and the numbers it needs.

`codec` turns pymavlink's untyped messages into these; everything after that is typed. The
numbers are MAVLink common's (a unit test checks them against pymavlink).
"""

from dataclasses import dataclass
from enum import IntEnum

AUTOPILOT_COMPONENT = 1  # MAV_COMP_ID_AUTOPILOT1
ONBOARD_COMPONENT = 191  # MAV_COMP_ID_ONBOARD_COMPUTER

MAV_AUTOPILOT_ARDUPILOTMEGA = 3
MAV_AUTOPILOT_INVALID = 8
MAV_AUTOPILOT_PX4 = 12
MAV_TYPE_ONBOARD_CONTROLLER = 18
MAV_MODE_FLAG_CUSTOM_MODE_ENABLED = 1
MAV_MODE_FLAG_SAFETY_ARMED = 128
MAV_STATE_ACTIVE = 4
MAV_STATE_CRITICAL = 5
MAV_STATE_EMERGENCY = 6
MAV_SEVERITY_CRITICAL = 2  # EMERGENCY 0, ALERT 1, CRITICAL 2: lower is more severe
MAV_FRAME_GLOBAL_RELATIVE_ALT_INT = 6
GPS_FIX_TYPE_3D_FIX = 3
GRIPPER_ACTION_RELEASE = 0
GRIPPER_ACTION_GRAB = 1
MAV_DO_REPOSITION_FLAGS_CHANGE_MODE = 1

MSG_ID_GLOBAL_POSITION_INT = 33
MSG_ID_BATTERY_STATUS = 147
MSG_ID_HOME_POSITION = 242


class Command(IntEnum):
    """MAV_CMD values the adapter sends."""

    NAV_RETURN_TO_LAUNCH = 20
    NAV_LAND = 21
    NAV_TAKEOFF = 22
    DO_REPOSITION = 192
    DO_PAUSE_CONTINUE = 193
    DO_GRIPPER = 211
    COMPONENT_ARM_DISARM = 400
    SET_MESSAGE_INTERVAL = 511
    REQUEST_MESSAGE = 512


class MavResult(IntEnum):
    """MAV_RESULT: a COMMAND_ACK's verdict."""

    ACCEPTED = 0
    TEMPORARILY_REJECTED = 1
    DENIED = 2
    UNSUPPORTED = 3
    FAILED = 4
    IN_PROGRESS = 5
    CANCELLED = 6
    COMMAND_LONG_ONLY = 7
    COMMAND_INT_ONLY = 8
    COMMAND_UNSUPPORTED_MAV_FRAME = 9


class LandedState(IntEnum):
    """MAV_LANDED_STATE, from EXTENDED_SYS_STATE."""

    UNDEFINED = 0
    ON_GROUND = 1
    IN_AIR = 2
    TAKEOFF = 3
    LANDING = 4


def result_name(result: int) -> str:
    """A MAV_RESULT in `CommandResult`'s spelling ("denied"), or its number if unknown."""
    try:
        return MavResult(result).name.lower()
    except ValueError:
        return f"result {result}"


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """HEARTBEAT (0)."""

    vehicle_type: int
    autopilot: int
    base_mode: int
    custom_mode: int
    system_status: int


@dataclass(frozen=True, slots=True)
class GlobalPosition:
    """GLOBAL_POSITION_INT (33): degE7, mm (relative_alt: above home), cm/s, cdeg."""

    time_boot_ms: int
    lat: int
    lon: int
    relative_alt: int
    vx: int
    vy: int
    vz: int
    hdg: int


@dataclass(frozen=True, slots=True)
class GpsRaw:
    """GPS_RAW_INT (24)."""

    fix_type: int


@dataclass(frozen=True, slots=True)
class SysStatus:
    """SYS_STATUS (1); `battery_remaining` -1 is unknown."""

    battery_remaining: int


@dataclass(frozen=True, slots=True)
class BatteryStatus:
    """BATTERY_STATUS (147); `battery_remaining` -1 is unknown."""

    battery_id: int
    battery_remaining: int


@dataclass(frozen=True, slots=True)
class ExtendedSysState:
    """EXTENDED_SYS_STATE (245)."""

    landed_state: int


@dataclass(frozen=True, slots=True)
class HomePosition:
    """HOME_POSITION (242): degE7, altitude mm AMSL."""

    latitude: int
    longitude: int
    altitude: int


@dataclass(frozen=True, slots=True)
class StatusText:
    """STATUSTEXT (253)."""

    severity: int
    text: str


@dataclass(frozen=True, slots=True)
class CommandAck:
    """COMMAND_ACK (77); targets 0 when the sender left them out (MAVLink 1 style)."""

    command: int
    result: int
    target_system: int = 0
    target_component: int = 0


Message = (
    Heartbeat
    | GlobalPosition
    | GpsRaw
    | SysStatus
    | BatteryStatus
    | ExtendedSysState
    | HomePosition
    | StatusText
    | CommandAck
)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded message and who sent it."""

    system_id: int
    component_id: int
    message: Message
