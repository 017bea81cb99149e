"""The MAVLink numbers the endpoint uses, as typed enums (values from `common.xml`).

Kept apart from pymavlink so the pure modules (modes, missions, commands) need no codec, and
mypy sees ints rather than pymavlink's untyped constants. `tests/unit/test_mavlink_modes.py`
checks every value against pymavlink's generated dialect.
"""

from enum import IntEnum, IntFlag

AUTOPILOT_COMPONENT = 1
"""`MAV_COMP_ID_AUTOPILOT1`: the endpoint's component id."""

ONBOARD_COMPUTER_COMPONENT = 191
"""`MAV_COMP_ID_ONBOARD_COMPUTER`: the agent; hearing it feeds the companion-link failsafe."""


class MavType(IntEnum):
    """`MAV_TYPE`, the vehicle type in a HEARTBEAT."""

    QUADROTOR = 2


class MavAutopilot(IntEnum):
    """`MAV_AUTOPILOT`: whose firmware (and so whose `custom_mode` encoding) this is."""

    PX4 = 12


class ModeFlag(IntFlag):
    """`MAV_MODE_FLAG`, the bits of a HEARTBEAT's `base_mode`."""

    CUSTOM_MODE_ENABLED = 1
    AUTO_ENABLED = 4
    GUIDED_ENABLED = 8
    STABILIZE_ENABLED = 16
    SAFETY_ARMED = 128


class MavState(IntEnum):
    """`MAV_STATE`, a HEARTBEAT's `system_status`."""

    STANDBY = 3
    ACTIVE = 4
    CRITICAL = 5
    EMERGENCY = 6


class LandedState(IntEnum):
    """`MAV_LANDED_STATE`, in EXTENDED_SYS_STATE."""

    ON_GROUND = 1
    IN_AIR = 2
    TAKEOFF = 3
    LANDING = 4


class Severity(IntEnum):
    """`MAV_SEVERITY` of a STATUSTEXT."""

    EMERGENCY = 0
    CRITICAL = 2
    WARNING = 4
    INFO = 6


class MavResult(IntEnum):
    """`MAV_RESULT` of a COMMAND_ACK."""

    ACCEPTED = 0
    DENIED = 2
    UNSUPPORTED = 3
    FAILED = 4


class MissionResult(IntEnum):
    """`MAV_MISSION_RESULT` of a MISSION_ACK."""

    ACCEPTED = 0
    ERROR = 1
    UNSUPPORTED_FRAME = 2
    UNSUPPORTED = 3
    NO_SPACE = 4
    INVALID_SEQUENCE = 13
    OPERATION_CANCELLED = 15


class MissionType(IntEnum):
    """`MAV_MISSION_TYPE`: only plain missions are kept (no fence, no rally points)."""

    MISSION = 0


class MissionState(IntEnum):
    """`MISSION_STATE`, in MISSION_CURRENT."""

    NO_MISSION = 1
    NOT_STARTED = 2
    ACTIVE = 3
    PAUSED = 4
    COMPLETE = 5


class Frame(IntEnum):
    """`MAV_FRAME` values a position may come in; home is at 0 m AMSL, so all four agree."""

    GLOBAL = 0
    GLOBAL_RELATIVE_ALT = 3
    GLOBAL_INT = 5
    GLOBAL_RELATIVE_ALT_INT = 6


GLOBAL_FRAMES = frozenset(Frame)


class Cmd(IntEnum):
    """`MAV_CMD` ids the endpoint knows."""

    NAV_WAYPOINT = 16
    NAV_RETURN_TO_LAUNCH = 20
    NAV_LAND = 21
    NAV_TAKEOFF = 22
    DO_SET_MODE = 176
    DO_REPOSITION = 192
    DO_PAUSE_CONTINUE = 193
    DO_GRIPPER = 211
    MISSION_START = 300
    COMPONENT_ARM_DISARM = 400
    SET_MESSAGE_INTERVAL = 511
    REQUEST_MESSAGE = 512


class GripperAction(IntEnum):
    """`GRIPPER_ACTIONS`, DO_GRIPPER's param2."""

    RELEASE = 0
    GRAB = 1


class BatteryChargeState(IntEnum):
    """`MAV_BATTERY_CHARGE_STATE` in BATTERY_STATUS."""

    OK = 1
    LOW = 2
    CRITICAL = 3


class MsgId(IntEnum):
    """Ids of the messages the endpoint streams (what SET_MESSAGE_INTERVAL may name)."""

    HEARTBEAT = 0
    SYS_STATUS = 1
    GPS_RAW_INT = 24
    GLOBAL_POSITION_INT = 33
    MISSION_CURRENT = 42
    BATTERY_STATUS = 147
    HOME_POSITION = 242
    EXTENDED_SYS_STATE = 245


class Px4MainMode(IntEnum):
    """PX4's `custom_main_mode` (px4_custom_mode.h); the simulator flies only AUTO."""

    AUTO = 4


class Px4AutoMode(IntEnum):
    """PX4's `custom_sub_mode` under AUTO."""

    TAKEOFF = 2
    LOITER = 3
    MISSION = 4
    RTL = 5
    LAND = 6


INT32_MAX = 2**31 - 1
"""In COMMAND_INT x/y, "no position given" (keep the current one)."""
