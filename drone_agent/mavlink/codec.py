"""The pymavlink boundary: bytes to typed `Frame`s, and the frames the agent sends to bytes.

pymavlink's `MAVLink` class (common dialect, MAVLink 2) is used directly, never `mavutil`
(blocking, MAVLink 1 by default). With `robust_parsing` a corrupt frame comes out as a
bad-data record instead of an exception; it is counted and skipped. pymavlink consumes a
corrupt frame whole, so a frame whose length byte was hit would also swallow the good frames
behind it: the codec rescans from the byte after a bad frame's start marker, as MAVLink's C
parser does. Everything pymavlink hands out is `Any`; it is converted to typed values here.
"""

from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import common as mavlink

from drone_agent.mavlink.messages import (
    MAV_AUTOPILOT_INVALID,
    MAV_STATE_ACTIVE,
    MAV_TYPE_ONBOARD_CONTROLLER,
    ONBOARD_COMPONENT,
    BatteryStatus,
    CommandAck,
    ExtendedSysState,
    Frame,
    GlobalPosition,
    GpsRaw,
    Heartbeat,
    HomePosition,
    Message,
    StatusText,
    SysStatus,
)

_MAVLINK1_MARKER = 0xFE
_BAD_PREFIX = "Bad prefix"


@dataclass(slots=True)
class CodecStats:
    """What came in: frames decoded, and what was skipped."""

    frames: int = 0
    bad_data: int = 0  # garbage, bad CRC, bad length
    mavlink1: int = 0  # valid MAVLink 1 frames: this link speaks MAVLink 2 only
    ignored: int = 0  # valid frames of messages the adapter does not read


class Codec:
    """One link's parser and serialiser. Not thread-safe; one per connection."""

    def __init__(self, *, source_system: int = 1) -> None:
        self.stats = CodecStats()
        self._rx = _parser()
        self._tx: Any = mavlink.MAVLink(None, source_system, ONBOARD_COMPONENT)

    @property
    def source_system(self) -> int:
        """The system id the agent sends as: the vehicle's, once known."""
        return int(self._tx.srcSystem)

    @source_system.setter
    def source_system(self, system_id: int) -> None:
        self._tx.srcSystem = system_id

    def reset(self) -> None:
        """Forget any partial frame: a new connection starts clean."""
        self._rx = _parser()

    def decode(self, data: bytes, *, datagram: bool = False) -> list[Frame]:
        """The frames in `data`; with `datagram`, a partial frame at the end is dropped.

        A frame never spans two UDP datagrams, so a datagram's leftover bytes are junk and
        must not corrupt the next datagram's first frame.
        """
        frames: list[Frame] = []
        raw = self._rx.parse_char(bytes(data))
        while raw is not None:
            if raw.get_type() == "BAD_DATA" and raw.reason != _BAD_PREFIX:
                # Rescan from the byte after the bad frame's marker, then what followed it.
                self.stats.bad_data += 1
                rest = bytes(raw.data[1:]) + bytes(self._rx.buf[self._rx.buf_index :])
                self._rx = _parser()
                raw = self._rx.parse_char(rest)
                continue
            frame = self._convert(raw)
            if frame is not None:
                frames.append(frame)
            raw = self._rx.parse_char(b"")
        if datagram and self._rx.buf_len() > 0:
            self.stats.bad_data += 1
            self._rx = _parser()
        return frames

    def _convert(self, raw: Any) -> Frame | None:  # noqa: ANN401 - pymavlink is untyped
        kind = str(raw.get_type())
        if kind == "BAD_DATA":
            self.stats.bad_data += 1
            return None
        if raw.get_msgbuf()[0] == _MAVLINK1_MARKER:
            self.stats.mavlink1 += 1
            return None
        try:
            message = _typed(kind, raw)
        except (TypeError, ValueError, AttributeError):
            message = None
        if message is None:
            self.stats.ignored += 1
            return None
        self.stats.frames += 1
        return Frame(int(raw.get_srcSystem()), int(raw.get_srcComponent()), message)

    def heartbeat(self) -> bytes:
        """Our HEARTBEAT: an onboard controller, no autopilot of its own."""
        return self._pack(
            self._tx.heartbeat_encode(
                MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID, 0, 0, MAV_STATE_ACTIVE
            )
        )

    def command_long(
        self,
        target_system: int,
        target_component: int,
        command: int,
        confirmation: int,
        params: tuple[float, float, float, float, float, float, float],
    ) -> bytes:
        """A COMMAND_LONG."""
        return self._pack(
            self._tx.command_long_encode(
                target_system, target_component, command, confirmation, *params
            )
        )

    def command_int(  # noqa: PLR0917 - the MAVLink field list
        self,
        target_system: int,
        target_component: int,
        command: int,
        frame: int,
        params: tuple[float, float, float, float],
        x: int,
        y: int,
        z: float,
    ) -> bytes:
        """A COMMAND_INT (it has no confirmation field: a resend is identical)."""
        return self._pack(
            self._tx.command_int_encode(
                target_system, target_component, frame, command, 0, 0, *params, x, y, z
            )
        )

    def _pack(self, message: Any) -> bytes:  # noqa: ANN401 - pymavlink is untyped
        data = bytes(message.pack(self._tx))
        self._tx.seq = (self._tx.seq + 1) % 256
        return data


def _parser() -> Any:  # noqa: ANN401 - pymavlink is untyped
    parser = mavlink.MAVLink(None)
    parser.robust_parsing = True
    return parser


def _typed(kind: str, m: Any) -> Message | None:  # noqa: ANN401, PLR0911 - untyped; one per message
    if kind == "HEARTBEAT":
        return Heartbeat(
            int(m.type),
            int(m.autopilot),
            int(m.base_mode),
            int(m.custom_mode),
            int(m.system_status),
        )
    if kind == "GLOBAL_POSITION_INT":
        return GlobalPosition(
            int(m.time_boot_ms),
            int(m.lat),
            int(m.lon),
            int(m.relative_alt),
            int(m.vx),
            int(m.vy),
            int(m.vz),
            int(m.hdg),
        )
    if kind == "GPS_RAW_INT":
        return GpsRaw(int(m.fix_type))
    if kind == "SYS_STATUS":
        return SysStatus(int(m.battery_remaining))
    if kind == "BATTERY_STATUS":
        return BatteryStatus(int(m.id), int(m.battery_remaining))
    if kind == "EXTENDED_SYS_STATE":
        return ExtendedSysState(int(m.landed_state))
    if kind == "HOME_POSITION":
        return HomePosition(int(m.latitude), int(m.longitude), int(m.altitude))
    if kind == "STATUSTEXT":
        return StatusText(int(m.severity), _text(m.text))
    if kind == "COMMAND_ACK":
        return CommandAck(
            int(m.command), int(m.result), int(m.target_system), int(m.target_component)
        )
    return None


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", errors="replace")
    return str(value).rstrip("\x00").strip()
