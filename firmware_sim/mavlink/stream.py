"""What the endpoint streams and when: message intervals, and a reading of the vehicle. Pure.

Intervals are real seconds (docs/mavlink.md: rates belong to the link, not to simulated time);
the caller passes `time.monotonic()` in.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from firmware_sim.mavlink.protocol import MsgId
from firmware_sim.state import VehicleState
from firmware_sim.vehicle import SimVehicle

DEFAULT_INTERVALS_S: dict[MsgId, float] = {
    MsgId.HEARTBEAT: 1.0,
    MsgId.GLOBAL_POSITION_INT: 0.1,
    MsgId.GPS_RAW_INT: 0.5,
    MsgId.SYS_STATUS: 0.5,
    MsgId.BATTERY_STATUS: 0.5,
    MsgId.EXTENDED_SYS_STATE: 0.5,
    MsgId.HOME_POSITION: 2.0,
    MsgId.MISSION_CURRENT: 1.0,  # the endpoint sends it only while a mission is flown
}


def frames_per_s(rate_multiplier: float = 1.0) -> float:
    """Frames a second one endpoint streams on the default intervals under `rate_multiplier`.

    Counts MISSION_CURRENT as if a mission were always flown: an upper bound.
    """
    return sum(
        1.0 / (interval if message is MsgId.HEARTBEAT else interval / rate_multiplier)
        for message, interval in DEFAULT_INTERVALS_S.items()
    )


def bounded_multiplier(wanted: float, *, endpoints: int, frames_per_s_budget: float) -> float:
    """`wanted`, lowered so that `endpoints` together stream at most the budget; never below 1.

    One process serves a whole fleet's endpoints on one event loop, and the agents reading them
    often share it. Unbounded, x200 asked for a multiplier of 40: ten vehicles streamed about
    8,000 frames/s, the loop fell behind, the agents' sockets overflowed and dropped
    COMMAND_ACKs with the telemetry, and commands failed with "no acknowledgement".
    """
    if endpoints < 1 or wanted <= 1.0:
        return max(1.0, wanted)
    heartbeats = 1.0 / DEFAULT_INTERVALS_S[MsgId.HEARTBEAT]
    scaled_at_1 = frames_per_s(1.0) - heartbeats
    affordable = (frames_per_s_budget / endpoints - heartbeats) / scaled_at_1
    return max(1.0, min(wanted, affordable))


class StreamSchedule:
    """Per-message intervals (SET_MESSAGE_INTERVAL changes them) and which are due when.

    A message is due one interval after it was last sent; a loop that lags sends each due
    message once, not a burst of the ones it missed.

    Args:
        defaults: intervals that differ from `DEFAULT_INTERVALS_S` (0 in SET_MESSAGE_INTERVAL
            restores these).
        rate_multiplier: divides every interval but the heartbeat's, the defaults and those
            SET_MESSAGE_INTERVAL asks for. 1 keeps docs/mavlink.md's real-time rates; under a
            large speed-up a test may raise it, since a report 0.5 s (real) old is then minutes
            of simulated flight old. The heartbeat stays: it times the link, in real seconds.
    """

    def __init__(
        self, defaults: Mapping[MsgId, float] | None = None, *, rate_multiplier: float = 1.0
    ) -> None:
        if not rate_multiplier > 0:
            raise ValueError(f"rate_multiplier must be positive, got {rate_multiplier}")
        self._multiplier = rate_multiplier
        merged = {**DEFAULT_INTERVALS_S, **(defaults or {})}
        self._defaults = {m: self._scaled(m, interval) for m, interval in merged.items()}
        self._interval: dict[MsgId, float | None] = dict(self._defaults)
        self._next: dict[MsgId, float] = {}

    def _scaled(self, message: MsgId, interval_s: float) -> float:
        return interval_s if message is MsgId.HEARTBEAT else interval_s / self._multiplier

    def interval_s(self, message: MsgId) -> float | None:
        """The interval now, None when stopped."""
        return self._interval[message]

    def set_interval_us(self, message_id: int, interval_us: float) -> str | None:
        """Apply SET_MESSAGE_INTERVAL; the reason when refused, else None.

        Args:
            message_id: the message (param1).
            interval_us: param2: -1 stops it, 0 restores the default, else microseconds.
        """
        try:
            message = MsgId(message_id)
        except ValueError:
            return f"message {message_id} is not streamed"
        if interval_us == -1:
            self._interval[message] = None
        elif interval_us == 0:
            self._interval[message] = self._defaults[message]
        elif interval_us > 0:
            self._interval[message] = self._scaled(message, interval_us / 1e6)
        else:
            return f"invalid interval {interval_us:g} us"
        self._next.pop(message, None)  # the new rate starts now
        return None

    def due(self, now: float) -> list[MsgId]:
        """The messages to send now (in table order); each is then scheduled again."""
        due: list[MsgId] = []
        for message, interval in self._interval.items():
            if interval is None:
                continue
            if now >= self._next.get(message, now):
                due.append(message)
        for message in due:
            self.sent(message, now)
        return due

    def next_due_s(self) -> float:
        """When the next message falls due (-inf when one was never sent, inf when all stop)."""
        times = [
            self._next.get(message, -math.inf)
            for message, interval in self._interval.items()
            if interval is not None
        ]
        return min(times, default=math.inf)

    def sent(self, message: MsgId, now: float) -> None:
        """Note a send out of turn (on change, on request): the next one is an interval away."""
        interval = self._interval[message]
        if interval is not None:
            self._next[message] = now + interval


@dataclass(frozen=True, slots=True)
class Readout:
    """Everything the telemetry messages need from one vehicle, read at one instant.

    Attributes:
        time_boot_ms: the controller's own clock since boot (simulated), as PX4 stamps.
        current_a: battery current, from the last step's power draw.
        home_radius_m: the waypoint radius, within which an RTL is landing.
    """

    state: VehicleState
    time_boot_ms: int
    current_a: float
    capacity_wh: float
    cells: int
    low_pct: float
    critical_pct: float
    home_radius_m: float


def read(vehicle: SimVehicle) -> Readout:
    """Read `vehicle` now."""
    state = vehicle.state()
    flight = vehicle.flight
    return Readout(
        state=state,
        time_boot_ms=int(flight.time_s * 1000.0) & 0xFFFFFFFF,
        current_a=flight.load_w / state.voltage_v if state.voltage_v > 0 else 0.0,
        capacity_wh=vehicle.battery.capacity_wh,
        cells=vehicle.battery.cells,
        low_pct=vehicle.autopilot.config.low_pct,
        critical_pct=vehicle.autopilot.config.critical_pct,
        home_radius_m=vehicle.airframe.waypoint_radius_m,
    )
