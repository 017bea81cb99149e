"""The pymavlink boundary: datagrams in, typed messages out; typed values in, frames out.

pymavlink has no type information, so every `Any` stays in this module: the rest of the
package sees the dataclasses below. The codec is `pymavlink.dialects.v20.common.MAVLink`
itself (not `mavutil`, which is blocking and defaults to MAVLink 1), with `robust_parsing`
on, so garbage and bad CRCs come back as bad-data records instead of exceptions.

Past 400 lines because it is the whole boundary: every message the endpoint reads or writes
has its typed record and its few lines of packing here, and nowhere else touches pymavlink.
"""

import math
from dataclasses import dataclass, field
from typing import Any

from pymavlink.dialects.v20 import common as mavlink2

from firmware_sim.mavlink.commands import Command
from firmware_sim.mavlink.mission import MissionCurrent, MissionItem
from firmware_sim.mavlink.modes import Px4Status, StatusText
from firmware_sim.mavlink.protocol import (
    AUTOPILOT_COMPONENT,
    BatteryChargeState,
    LandedState,
    MavAutopilot,
    MavResult,
    MavType,
    MissionResult,
)
from firmware_sim.mavlink.stream import Readout

_V1_MARKER = 0xFE
_STATUSTEXT_LEN = 50
_UINT16_MAX = 0xFFFF
_INT16_MAX = 0x7FFF
_CELLS_IN_MESSAGE = 10


# --- receiving -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """Who sent a frame, and its sequence number."""

    system: int
    component: int
    seq: int


@dataclass(frozen=True, slots=True)
class MissionCount:
    """MISSION_COUNT: an upload begins."""

    count: int
    mission_type: int


@dataclass(frozen=True, slots=True)
class MissionItemIn:
    """MISSION_ITEM_INT: one item of an upload."""

    item: MissionItem
    mission_type: int


@dataclass(frozen=True, slots=True)
class MissionRequestList:
    """MISSION_REQUEST_LIST: a download begins."""

    mission_type: int


@dataclass(frozen=True, slots=True)
class MissionRequestItem:
    """MISSION_REQUEST_INT (or the deprecated MISSION_REQUEST): one item of a download."""

    seq: int
    mission_type: int


@dataclass(frozen=True, slots=True)
class MissionClearAll:
    """MISSION_CLEAR_ALL."""

    mission_type: int


@dataclass(frozen=True, slots=True)
class Other:
    """A valid message the endpoint has no use for beyond "this peer is alive"."""

    name: str


Body = (
    Command
    | MissionCount
    | MissionItemIn
    | MissionRequestList
    | MissionRequestItem
    | MissionClearAll
    | Other
)


@dataclass(frozen=True, slots=True)
class Received:
    """One decoded message.

    Attributes:
        target: (target_system, target_component) for a message addressed to someone,
            None for a broadcast such as HEARTBEAT.
    """

    header: Header
    body: Body
    target: tuple[int, int] | None


@dataclass(slots=True)
class Decoded:
    """What one datagram held.

    Attributes:
        messages: the valid MAVLink 2 messages, in order.
        bad: garbage runs and frames with a bad CRC, length or header.
        unknown: frames of messages outside the common dialect (their CRC cannot be checked).
        mavlink1: valid MAVLink 1 frames (this endpoint speaks MAVLink 2 only).
        truncated: the datagram ended inside a frame.
    """

    messages: list[Received] = field(default_factory=list)
    bad: int = 0
    unknown: int = 0
    mavlink1: int = 0
    truncated: bool = False


def decode(datagram: bytes) -> Decoded:
    """Decode one UDP datagram; never raises.

    A fresh parser per datagram: a datagram is a unit, so the tail of a truncated frame must
    not swallow the start of the next datagram (as one stream parser would).
    """
    parser = mavlink2.MAVLink(None)
    parser.robust_parsing = True
    result = Decoded()
    try:
        messages: list[Any] = parser.parse_buffer(datagram) or []
    except Exception:  # noqa: BLE001 - robust_parsing should catch all; a codec bug must not kill the link
        result.bad += 1
        return result
    result.truncated = parser.buf_len() > 0
    for message in messages:
        name: str = message.get_type()
        if name == "BAD_DATA":
            result.bad += 1
            continue
        if name.startswith("UNKNOWN"):
            result.unknown += 1
            continue
        if message.get_msgbuf()[0] == _V1_MARKER:
            result.mavlink1 += 1
            continue
        result.messages.append(_received(message))
    return result


def _received(message: Any) -> Received:  # noqa: ANN401 - a pymavlink message, untyped
    header = Header(message.get_srcSystem(), message.get_srcComponent(), message.get_seq())
    target: tuple[int, int] | None = None
    if hasattr(message, "target_system"):
        target = (int(message.target_system), int(getattr(message, "target_component", 0)))
    return Received(header, _body(message), target)


def _body(m: Any) -> Body:  # noqa: ANN401, PLR0911 - a pymavlink message; one return per type
    name: str = m.get_type()
    if name == "COMMAND_LONG":
        return Command(
            command=int(m.command),
            params=(float(m.param1), float(m.param2), float(m.param3), float(m.param4)),
            x=float(m.param5),
            y=float(m.param6),
            z=float(m.param7),
            confirmation=int(m.confirmation),
        )
    if name == "COMMAND_INT":
        return Command(
            command=int(m.command),
            params=(float(m.param1), float(m.param2), float(m.param3), float(m.param4)),
            x=float(m.x),
            y=float(m.y),
            z=float(m.z),
            frame=int(m.frame),
        )
    if name == "MISSION_COUNT":
        return MissionCount(int(m.count), int(m.mission_type))
    if name == "MISSION_ITEM_INT":
        item = MissionItem(
            seq=int(m.seq),
            frame=int(m.frame),
            command=int(m.command),
            params=(float(m.param1), float(m.param2), float(m.param3), float(m.param4)),
            x=int(m.x),
            y=int(m.y),
            z=float(m.z),
            autocontinue=int(m.autocontinue),
        )
        return MissionItemIn(item, int(m.mission_type))
    if name == "MISSION_REQUEST_LIST":
        return MissionRequestList(int(m.mission_type))
    if name in {"MISSION_REQUEST_INT", "MISSION_REQUEST"}:
        return MissionRequestItem(int(m.seq), int(m.mission_type))
    if name == "MISSION_CLEAR_ALL":
        return MissionClearAll(int(m.mission_type))
    return Other(name)


# --- sending ---------------------------------------------------------------------------------


class Encoder:
    """Builds the endpoint's MAVLink 2 frames, numbering them in sequence.

    Args:
        system_id: the vehicle's system id.
    """

    def __init__(self, system_id: int) -> None:
        self._mav = mavlink2.MAVLink(None, srcSystem=system_id, srcComponent=AUTOPILOT_COMPONENT)

    def _pack(self, message: Any) -> bytes:  # noqa: ANN401 - a pymavlink message, untyped
        frame: bytes = message.pack(self._mav)
        self._mav.seq = (self._mav.seq + 1) % 256  # what MAVLink.send does after packing
        return frame

    def heartbeat(self, status: Px4Status) -> bytes:
        """HEARTBEAT of a PX4 quadrotor."""
        return self._pack(
            self._mav.heartbeat_encode(
                MavType.QUADROTOR,
                MavAutopilot.PX4,
                status.base_mode,
                status.custom_mode,
                status.system_status,
            )
        )

    def statustext(self, text: StatusText) -> bytes:
        """STATUSTEXT, cut to the 50 characters one message holds."""
        data = text.text.encode("ascii", errors="replace")[:_STATUSTEXT_LEN]
        return self._pack(self._mav.statustext_encode(text.severity, data))

    def command_ack(self, command: int, result: MavResult, target: tuple[int, int]) -> bytes:
        """COMMAND_ACK addressed to the command's sender."""
        return self._pack(
            self._mav.command_ack_encode(
                command, result, 0, 0, target_system=target[0], target_component=target[1]
            )
        )

    def global_position_int(self, r: Readout) -> bytes:
        """GLOBAL_POSITION_INT: degE7, mm (home is 0 m AMSL, so alt = relative_alt), cm/s, cdeg."""
        s = r.state
        heading = math.radians(s.heading_deg)
        altitude_mm = round(s.position.altitude_m * 1000.0)
        return self._pack(
            self._mav.global_position_int_encode(
                r.time_boot_ms,
                _deg_e7(s.position.latitude),
                _deg_e7(s.position.longitude),
                altitude_mm,
                altitude_mm,
                _int16(s.ground_speed_mps * math.cos(heading) * 100.0),  # north
                _int16(s.ground_speed_mps * math.sin(heading) * 100.0),  # east
                _int16(-s.climb_rate_mps * 100.0),  # down
                round(s.heading_deg * 100.0) % 36000,
            )
        )

    def gps_raw_int(self, r: Readout) -> bytes:
        """GPS_RAW_INT: a 3D fix with 12 satellites, or no fix at all after a GPS failure."""
        s = r.state
        fix, satellites = (3, 12) if s.gps_ok else (1, 0)
        lat = _deg_e7(s.position.latitude) if s.gps_ok else 0
        lon = _deg_e7(s.position.longitude) if s.gps_ok else 0
        return self._pack(
            self._mav.gps_raw_int_encode(
                r.time_boot_ms * 1000,
                fix,
                lat,
                lon,
                round(s.position.altitude_m * 1000.0),
                80 if s.gps_ok else _UINT16_MAX,  # HDOP x100
                120 if s.gps_ok else _UINT16_MAX,  # VDOP x100
                min(_UINT16_MAX - 1, round(s.ground_speed_mps * 100.0)),
                round(s.heading_deg * 100.0) % 36000,
                satellites,
            )
        )

    def sys_status(self, r: Readout) -> bytes:
        """SYS_STATUS: sensor health (GPS, motors, battery) and the battery."""
        s = r.state
        present = _GYRO | _ACCEL | _MAG | _BARO | _GPS | _MOTORS | _BATTERY
        health = present
        if not s.gps_ok:
            health &= ~_GPS
        if s.failsafe_reason == "motor":
            health &= ~_MOTORS
        if s.failsafe == "failsafe_battery":
            health &= ~_BATTERY
        return self._pack(
            self._mav.sys_status_encode(
                present,
                present,
                health,
                0,
                min(_UINT16_MAX - 1, round(s.voltage_v * 1000.0)),
                _int16(r.current_a * 100.0),
                _percent(s.battery_pct),
                0,
                0,
                0,
                0,
                0,
                0,
            )
        )

    def battery_status(self, r: Readout) -> bytes:
        """BATTERY_STATUS: cells in mV, current, energy used (hJ), remaining %, charge state."""
        s = r.state
        cell_mv = min(_UINT16_MAX - 1, round(s.voltage_v * 1000.0 / r.cells))
        cells = [cell_mv] * min(r.cells, _CELLS_IN_MESSAGE)
        cells += [_UINT16_MAX] * (_CELLS_IN_MESSAGE - len(cells))
        used_wh = max(0.0, r.capacity_wh - s.energy_wh)
        if s.battery_pct <= r.critical_pct:
            charge = BatteryChargeState.CRITICAL
        elif s.battery_pct <= r.low_pct:
            charge = BatteryChargeState.LOW
        else:
            charge = BatteryChargeState.OK
        return self._pack(
            self._mav.battery_status_encode(
                0,  # id
                1,  # MAV_BATTERY_FUNCTION_ALL
                1,  # MAV_BATTERY_TYPE_LIPO
                _INT16_MAX,  # temperature unknown
                cells,
                _int16(r.current_a * 100.0),
                -1,  # current_consumed (mAh) unknown: the model counts energy, not charge
                round(used_wh * 36.0),  # hJ: 1 Wh = 3600 J = 36 hJ
                _percent(s.battery_pct),
                0,
                charge,
            )
        )

    def extended_sys_state(self, landed: LandedState) -> bytes:
        """EXTENDED_SYS_STATE: a multicopter (VTOL state undefined) and its landed state."""
        return self._pack(self._mav.extended_sys_state_encode(0, landed))

    def home_position(self, r: Readout) -> bytes:
        """HOME_POSITION: home at 0 m AMSL, the origin of the local frame."""
        home = r.state.home
        return self._pack(
            self._mav.home_position_encode(
                _deg_e7(home.latitude),
                _deg_e7(home.longitude),
                0,
                0.0,
                0.0,
                0.0,
                [1.0, 0.0, 0.0, 0.0],
                0.0,
                0.0,
                0.0,
            )
        )

    def mission_current(self, report: MissionCurrent) -> bytes:
        """MISSION_CURRENT with the MAVLink 2 extensions (total, state, mode)."""
        return self._pack(
            self._mav.mission_current_encode(
                report.seq, report.total, report.state, 1 if report.in_mission_mode else 2
            )
        )

    def mission_item_reached(self, seq: int) -> bytes:
        """MISSION_ITEM_REACHED."""
        return self._pack(self._mav.mission_item_reached_encode(seq))

    def mission_request_int(self, target: tuple[int, int], seq: int) -> bytes:
        """MISSION_REQUEST_INT for one item of an upload."""
        return self._pack(self._mav.mission_request_int_encode(target[0], target[1], seq, 0))

    def mission_ack(
        self, target: tuple[int, int], result: MissionResult, mission_type: int = 0
    ) -> bytes:
        """MISSION_ACK ending a transaction."""
        return self._pack(self._mav.mission_ack_encode(target[0], target[1], result, mission_type))

    def mission_count(self, target: tuple[int, int], count: int, mission_type: int = 0) -> bytes:
        """MISSION_COUNT answering a download request."""
        return self._pack(self._mav.mission_count_encode(target[0], target[1], count, mission_type))

    def mission_item_int(self, target: tuple[int, int], item: MissionItem) -> bytes:
        """MISSION_ITEM_INT answering a download request."""
        p = item.params
        return self._pack(
            self._mav.mission_item_int_encode(
                target[0],
                target[1],
                item.seq,
                item.frame,
                item.command,
                0,
                item.autocontinue,
                p[0],
                p[1],
                p[2],
                p[3],
                item.x,
                item.y,
                item.z,
                0,
            )
        )


# MAV_SYS_STATUS_SENSOR bits
_GYRO, _ACCEL, _MAG, _BARO, _GPS = 0x1, 0x2, 0x4, 0x8, 0x20
_MOTORS, _BATTERY = 0x8000, 0x2000000


def _deg_e7(degrees: float) -> int:
    return round(degrees * 1e7)


def _int16(value: float) -> int:
    return max(-_INT16_MAX - 1, min(_INT16_MAX, round(value)))


def _percent(value: float) -> int:
    return max(0, min(100, round(value)))
