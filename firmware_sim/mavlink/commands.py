"""COMMAND_LONG / COMMAND_INT → the simulated vehicle's commands → a MAV_RESULT. Pure.

The table "Agent → vehicle: commands" of docs/mavlink.md. The vehicle's `CommandAck` becomes
ACCEPTED or DENIED (with its reason, which the endpoint sends as a STATUSTEXT first); a command
the endpoint does not know is UNSUPPORTED. A resend (confirmation > 0) of the command a source
just had executed gets the same answer without running it twice.
"""

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from contracts.ids import Location
from firmware_sim.mavlink.mission import MissionControl, MissionNews, RunState
from firmware_sim.mavlink.modes import phase_for_mode
from firmware_sim.mavlink.protocol import (
    GLOBAL_FRAMES,
    INT32_MAX,
    Cmd,
    GripperAction,
    MavResult,
    ModeFlag,
    MsgId,
    Px4MainMode,
)
from firmware_sim.mavlink.stream import StreamSchedule
from firmware_sim.state import CommandAck
from firmware_sim.vehicle import SimVehicle

if TYPE_CHECKING:
    from collections.abc import Callable

Source = tuple[int, int]
"""(system id, component id) of whoever sent a command."""


@dataclass(frozen=True, slots=True)
class Command:
    """A COMMAND_LONG or COMMAND_INT, in one shape.

    Attributes:
        params: param1 to param4.
        x: COMMAND_LONG param5 (degrees) or COMMAND_INT x (degE7).
        y: COMMAND_LONG param6 (degrees) or COMMAND_INT y (degE7).
        z: param7 / z.
        frame: COMMAND_INT's frame; None for COMMAND_LONG.
        confirmation: COMMAND_LONG's resend counter; always 0 for COMMAND_INT.
    """

    command: int
    params: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    frame: int | None = None
    confirmation: int = 0

    @property
    def is_int(self) -> bool:
        """Whether it came as COMMAND_INT."""
        return self.frame is not None

    def position(self) -> tuple[float, float] | None:
        """(latitude, longitude) in degrees, None for "where it is now"."""
        if self.is_int:
            if INT32_MAX in {int(self.x), int(self.y)}:
                return None
            return self.x / 1e7, self.y / 1e7
        if math.isnan(self.x) or math.isnan(self.y):
            return None
        return self.x, self.y

    def key(self) -> bytes:
        """Identity for resend detection: command and params, bit for bit (NaN equals NaN)."""
        return struct.pack("<I7d", self.command, *self.params, self.x, self.y, self.z)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one command.

    Attributes:
        result: the COMMAND_ACK result.
        reason: for DENIED, why (sent as a STATUSTEXT before the ack).
        message_id: a message to send now (REQUEST_MESSAGE).
        mission: what the mission did (items reached on the spot, a failure).
        cached: the answer to an earlier identical command, which was not run again.
    """

    result: MavResult
    reason: str | None = None
    message_id: int | None = None
    mission: MissionNews | None = None
    cached: bool = False


UNSUPPORTED = Outcome(MavResult.UNSUPPORTED)


def _from_ack(ack: CommandAck, mission: MissionNews | None = None) -> Outcome:
    if ack.accepted:
        return Outcome(MavResult.ACCEPTED, mission=mission)
    return Outcome(MavResult.DENIED, ack.reason or "denied", mission=mission)


def _denied(reason: str) -> Outcome:
    return Outcome(MavResult.DENIED, reason)


def _int(value: float, default: int = -1) -> int:
    """A float param as an int; NaN and infinities (int() would raise) become `default`."""
    return int(value) if math.isfinite(value) else default


class Commander:
    """Executes commands on one vehicle, its mission and its stream schedule.

    Args:
        vehicle: the simulated flight controller.
        mission: its mission store and runner.
        streams: the endpoint-wide message intervals (SET_MESSAGE_INTERVAL).
    """

    def __init__(
        self, vehicle: SimVehicle, mission: MissionControl, streams: StreamSchedule
    ) -> None:
        self.vehicle = vehicle
        self.mission = mission
        self.streams = streams
        self._last: dict[Source, tuple[bytes, Outcome]] = {}
        self._handlers: dict[int, Callable[[Command], Outcome]] = {
            Cmd.COMPONENT_ARM_DISARM: self._arm_disarm,
            Cmd.NAV_TAKEOFF: self._takeoff,
            Cmd.DO_REPOSITION: self._reposition,
            Cmd.DO_PAUSE_CONTINUE: self._pause_continue,
            Cmd.NAV_RETURN_TO_LAUNCH: self._rtl,
            Cmd.NAV_LAND: self._land,
            Cmd.DO_GRIPPER: self._gripper,
            Cmd.DO_SET_MODE: self._set_mode,
            Cmd.MISSION_START: self._mission_start,
            Cmd.SET_MESSAGE_INTERVAL: self._set_message_interval,
            Cmd.REQUEST_MESSAGE: self._request_message,
        }

    def handle(self, command: Command, source: Source) -> Outcome:
        """Execute `command` from `source`, or repeat the answer to the resend of one."""
        key = command.key()
        last = self._last.get(source)
        if command.confirmation > 0 and last is not None and last[0] == key:
            return Outcome(last[1].result, last[1].reason, last[1].message_id, cached=True)
        handler = self._handlers.get(command.command)
        outcome = UNSUPPORTED if handler is None else handler(command)
        self._last[source] = (key, outcome)
        return outcome

    # --- the commands ------------------------------------------------------------------------

    def _arm_disarm(self, c: Command) -> Outcome:
        p1 = c.params[0]
        if p1 == 1:
            return _from_ack(self.vehicle.arm())
        if p1 == 0:
            return _from_ack(self.vehicle.disarm())
        return _denied(f"param1 must be 0 or 1, got {p1:g}")

    def _takeoff(self, c: Command) -> Outcome:
        # p7 is AMSL in MAVLink; the simulator's home is at 0 m AMSL, so it is height above home.
        altitude = self.vehicle.airframe.cruise_altitude_m if math.isnan(c.z) else c.z
        return self._flight(self.vehicle.takeoff(altitude))

    def _reposition(self, c: Command) -> Outcome:
        if c.is_int and c.frame not in GLOBAL_FRAMES:
            return _denied(f"unsupported frame {c.frame}")
        position = c.position()
        state = self.vehicle.state()
        latitude, longitude = (
            (state.position.latitude, state.position.longitude) if position is None else position
        )
        if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):  # noqa: PLR2004
            return _denied("position out of range")
        target = Location(latitude=latitude, longitude=longitude)
        altitude = None if math.isnan(c.z) else c.z  # NaN: the vehicle's cruise altitude
        return self._flight(self.vehicle.goto(target, altitude_m=altitude))

    def _pause_continue(self, c: Command) -> Outcome:
        if c.params[0] == 0:
            ack = self.vehicle.hold()
            if ack.accepted:
                self.mission.pause()
            return _from_ack(ack)
        if self.mission.state is RunState.PAUSED:
            return self._resume_mission()  # continue means the mission when one was paused
        return _from_ack(self.vehicle.resume())

    def _rtl(self, _: Command) -> Outcome:
        return self._flight(self.vehicle.return_to_launch())

    def _land(self, _: Command) -> Outcome:
        return self._flight(self.vehicle.land())

    def _gripper(self, c: Command) -> Outcome:
        action = c.params[1]
        if action == GripperAction.GRAB:
            # p3 carries the mass: unused by the standard, a real flight controller ignores it.
            return _from_ack(
                self.vehicle.load_payload(0.0 if math.isnan(c.params[2]) else c.params[2])
            )
        if action == GripperAction.RELEASE:
            return _from_ack(self.vehicle.release_payload())
        return _denied(f"unknown gripper action {action:g}")

    def _set_mode(self, c: Command) -> Outcome:
        base, main, sub = (_int(p) for p in c.params[:3])
        if base < 0 or not base & ModeFlag.CUSTOM_MODE_ENABLED:
            return _denied("only PX4 custom modes are supported")
        what = phase_for_mode(sub) if main == Px4MainMode.AUTO else None
        if what is None:
            return _denied(f"mode {main}.{sub} is not flown by the simulator")
        modes: dict[str, Callable[[], Outcome]] = {
            "hold": self._loiter,
            "rtl": lambda: self._rtl(c),
            "land": lambda: self._land(c),
            "takeoff": lambda: self._takeoff(Command(Cmd.NAV_TAKEOFF, z=math.nan)),
            "mission": self._resume_mission,
        }
        return modes[what]()

    def _loiter(self) -> Outcome:
        if self.vehicle.state().landed:
            return Outcome(MavResult.ACCEPTED)  # on the ground LOITER is what it is in already
        return self._pause_continue(Command(Cmd.DO_PAUSE_CONTINUE))

    def _mission_start(self, c: Command) -> Outcome:
        ack, news = self.mission.start(max(0, _int(c.params[0], 0)))
        return _from_ack(ack, news)

    def _set_message_interval(self, c: Command) -> Outcome:
        refusal = self.streams.set_interval_us(_int(c.params[0]), c.params[1])
        return Outcome(MavResult.ACCEPTED) if refusal is None else _denied(refusal)

    def _request_message(self, c: Command) -> Outcome:
        try:
            message = MsgId(_int(c.params[0]))
        except ValueError:
            return _denied(f"message {c.params[0]:g} cannot be requested")
        return Outcome(MavResult.ACCEPTED, message_id=message)

    # --- helpers -----------------------------------------------------------------------------

    def _flight(self, ack: CommandAck) -> Outcome:
        """A command that takes the vehicle somewhere else interrupts a mission, as in PX4."""
        if ack.accepted:
            self.mission.pause()
        return _from_ack(ack)

    def _resume_mission(self) -> Outcome:
        ack, news = self.mission.resume()
        return _from_ack(ack, news)
