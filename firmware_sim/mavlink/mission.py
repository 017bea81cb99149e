"""Missions: the upload handshake and flying the items. Pure: no I/O, time passed in.

`MissionUpload` is one MISSION_COUNT → MISSION_REQUEST_INT … → MISSION_ACK transaction (the
mission protocol of mavlink.io, "upload a mission to a vehicle"); the endpoint feeds it
items and timer calls and sends what it answers. `MissionControl` keeps the accepted mission
and flies it through the vehicle's own commands, advancing on the vehicle's events, as PX4's
navigator advances on "position reached" and "landed".
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from contracts.ids import Location
from firmware_sim.mavlink.protocol import (
    GLOBAL_FRAMES,
    Cmd,
    GripperAction,
    MissionResult,
    MissionState,
)
from firmware_sim.state import ACCEPTED, CommandAck, SimEvent, SimEventKind, denied
from firmware_sim.vehicle import SimVehicle
from flight_model.phases import FlightPhase

RETRY_S = 0.5
"""A silent uploader is asked again after this many (real) seconds…"""

MAX_RETRIES = 5
"""…this many times, then the transaction is cancelled."""

MAX_ITEMS = 1000
"""A longer MISSION_COUNT is answered NO_SPACE."""

_NAV_ITEMS = frozenset({Cmd.NAV_TAKEOFF, Cmd.NAV_WAYPOINT, Cmd.NAV_LAND})
_SUPPORTED = _NAV_ITEMS | {Cmd.NAV_RETURN_TO_LAUNCH, Cmd.DO_GRIPPER}


@dataclass(frozen=True, slots=True)
class MissionItem:
    """A MISSION_ITEM_INT: `x`/`y` are degE7 in a global frame, `z` metres above home."""

    seq: int
    frame: int
    command: int
    params: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    x: int = 0
    y: int = 0
    z: float = 0.0
    autocontinue: int = 1

    @property
    def location(self) -> Location | None:
        """The item's horizontal position, None when it gives none (x = y = 0)."""
        if self.x == 0 and self.y == 0:
            return None
        return Location(latitude=self.x / 1e7, longitude=self.y / 1e7)

    @property
    def altitude_m(self) -> float | None:
        """`z`, None when NaN (the vehicle's default altitude)."""
        return None if math.isnan(self.z) else self.z


def check_item(item: MissionItem) -> MissionResult:
    """ACCEPTED for an item this vehicle can fly, else why not."""
    if item.command not in _SUPPORTED:
        return MissionResult.UNSUPPORTED
    if item.command in _NAV_ITEMS and item.frame not in GLOBAL_FRAMES:
        return MissionResult.UNSUPPORTED_FRAME
    return MissionResult.ACCEPTED


# --- upload ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestItem:
    """Answer: send MISSION_REQUEST_INT for `seq`."""

    seq: int


@dataclass(frozen=True, slots=True)
class Finish:
    """Answer: send MISSION_ACK `result`; on ACCEPTED, `items` is the new mission."""

    result: MissionResult
    items: tuple[MissionItem, ...] = ()


UploadReply = RequestItem | Finish


class MissionUpload:
    """One upload transaction, from MISSION_COUNT to its MISSION_ACK.

    Args:
        count: the uploader's MISSION_COUNT.
        now: real seconds (any monotonic base) when it arrived.
    """

    def __init__(self, count: int, now: float) -> None:
        self.count = count
        self.expected = 0
        self.done = False
        self._items: list[MissionItem] = []
        self._error = MissionResult.ACCEPTED
        self._deadline = now + RETRY_S
        self._retries = 0

    @property
    def deadline(self) -> float:
        """When `on_timer` next has something to do."""
        return self._deadline

    def begin(self) -> UploadReply:
        """The first answer: request item 0, or finish at once for an empty or huge mission."""
        if self.count <= 0:
            return self._finish(MissionResult.ACCEPTED)  # an empty upload clears the mission
        if self.count > MAX_ITEMS:
            return self._finish(MissionResult.NO_SPACE)
        return RequestItem(0)

    def on_item(self, item: MissionItem, now: float) -> UploadReply | None:
        """Take an item; an item out of sequence is dropped and the expected one asked again."""
        if self.done:
            return None
        self._deadline = now + RETRY_S
        if item.seq != self.expected:
            return RequestItem(self.expected)
        self._retries = 0
        self._items.append(item)
        if self._error is MissionResult.ACCEPTED:
            self._error = check_item(item)  # the first problem decides the final ack
        self.expected += 1
        if self.expected < self.count:
            return RequestItem(self.expected)
        return self._finish(self._error)

    def on_timer(self, now: float) -> UploadReply | None:
        """Ask a silent uploader again, or give up after `MAX_RETRIES` requests."""
        if self.done or now < self._deadline:
            return None
        if self._retries >= MAX_RETRIES:
            return self._finish(MissionResult.OPERATION_CANCELLED)
        self._retries += 1
        self._deadline = now + RETRY_S
        return RequestItem(self.expected)

    def _finish(self, result: MissionResult) -> Finish:
        self.done = True
        items = tuple(self._items) if result is MissionResult.ACCEPTED else ()
        return Finish(result, items)


# --- flying ----------------------------------------------------------------------------------


class RunState(Enum):
    """Where a mission is; PAUSED keeps its place for a resume."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETE = "complete"


class _Await(Enum):
    REACHED = SimEventKind.REACHED.value
    LANDED = SimEventKind.LANDED.value
    LAND_AFTER_REACHED = "land_after_reached"  # a NAV_LAND with a position: fly there first
    HOLD = "hold"  # a waypoint's hold time (param1) after reaching it


@dataclass(frozen=True, slots=True)
class MissionCurrent:
    """The fields of MISSION_CURRENT."""

    seq: int
    total: int
    state: MissionState
    in_mission_mode: bool


@dataclass(slots=True)
class MissionNews:
    """What happened to the mission: items reached (in order) and why it stopped, if it did."""

    reached: list[int] = field(default_factory=list)
    failure: str | None = None


NO_MISSION_TOTAL = 0xFFFF
"""MISSION_CURRENT's `total` when the vehicle holds no mission."""


class MissionControl:
    """The vehicle's stored mission and its execution.

    Items are flown with the vehicle's commands (takeoff, goto, land, return_to_launch,
    load/release_payload); the next item starts when the vehicle reports the current one done.
    """

    def __init__(self, vehicle: SimVehicle) -> None:
        self.vehicle = vehicle
        self.items: tuple[MissionItem, ...] = ()
        self.state: RunState | None = None
        self.current = 0
        self._await: _Await | None = None
        self._hold_until_s = 0.0  # on the vehicle's own clock (`flight.time_s`)

    @property
    def active(self) -> bool:
        """Whether a mission is being flown now (the mode is AUTO.MISSION)."""
        return self.state is RunState.ACTIVE

    def replace(self, items: Iterable[MissionItem]) -> None:
        """Store a newly uploaded mission; one being flown stops where it is."""
        self.items = tuple(items)
        self.state, self.current, self._await = None, 0, None

    def start(self, first: int = 0) -> tuple[CommandAck, MissionNews]:
        """Fly the mission from item `first` (MISSION_START)."""
        if not self.items:
            return denied("no mission"), MissionNews()
        if not 0 <= first < len(self.items):
            return denied(f"no item {first}"), MissionNews()
        self.current = first
        return self._run_from_current()

    def resume(self) -> tuple[CommandAck, MissionNews]:
        """Take up a paused mission at its current item (DO_PAUSE_CONTINUE, AUTO.MISSION)."""
        if not self.items:
            return denied("no mission"), MissionNews()
        if self.state is RunState.COMPLETE or self.current >= len(self.items):
            self.current = 0
        return self._run_from_current()

    def pause(self) -> None:
        """Stop flying the mission but keep its place: a hold, another command, a failsafe."""
        if self.state is RunState.ACTIVE:
            self.state, self._await = RunState.PAUSED, None

    def on_events(self, events: Iterable[SimEvent]) -> MissionNews:
        """Advance on the vehicle's events of one step."""
        news = MissionNews()
        for event in events:
            if self.state is not RunState.ACTIVE:
                break
            if event.kind.startswith("failsafe_"):
                self.pause()  # a failsafe takes the vehicle out of mission mode, as in PX4
                news.failure = f"mission paused by {event.kind}"
            elif self._await is _Await.LAND_AFTER_REACHED and event.kind == "reached":
                self._await = _Await.LANDED
                ack = self.vehicle.land()
                if not ack.accepted:
                    self._fail(news, ack)
            elif self._await is not None and event.kind == self._await.value:
                self._arrived(news)
        if (
            self.state is RunState.ACTIVE
            and self._await is _Await.HOLD
            and self.vehicle.flight.time_s >= self._hold_until_s
        ):
            self._next(news)
        return news

    def _arrived(self, news: MissionNews) -> None:
        """The current item is reached: report it, hold there if it says so, then go on."""
        news.reached.append(self.current)
        item = self.items[self.current]
        hold_s = item.params[0]
        if item.command == Cmd.NAV_WAYPOINT and math.isfinite(hold_s) and hold_s > 0:
            # PX4 hovers param1 seconds at a waypoint before the next item (a steady release).
            self._await, self._hold_until_s = _Await.HOLD, self.vehicle.flight.time_s + hold_s
            return
        self._next(news)

    def _next(self, news: MissionNews) -> None:
        self.current += 1
        self._advance(news)

    def report(self) -> MissionCurrent:
        """What MISSION_CURRENT says now."""
        total = len(self.items)
        if not self.items:
            return MissionCurrent(
                0, NO_MISSION_TOTAL, MissionState.NO_MISSION, in_mission_mode=False
            )
        if self.state is None:
            return MissionCurrent(0, total, MissionState.NOT_STARTED, in_mission_mode=False)
        if self.state is RunState.COMPLETE:
            return MissionCurrent(total, total, MissionState.COMPLETE, in_mission_mode=False)
        state = MissionState.ACTIVE if self.active else MissionState.PAUSED
        return MissionCurrent(self.current, total, state, in_mission_mode=self.active)

    def _run_from_current(self) -> tuple[CommandAck, MissionNews]:
        self.state = RunState.ACTIVE
        news = MissionNews()
        self._advance(news)
        if news.failure is not None and not news.reached and self.state is RunState.PAUSED:
            return denied(news.failure), MissionNews()
        return ACCEPTED, news

    def _advance(self, news: MissionNews) -> None:
        """Start items from `current` until one has to wait for the vehicle."""
        while self.state is RunState.ACTIVE:
            if self.current >= len(self.items):
                self.state, self._await = RunState.COMPLETE, None
                return
            item = self.items[self.current]
            ack, wait = self._execute(item)
            if not ack.accepted:
                self._fail(news, ack)
                return
            if wait is not None:
                self._await = wait
                return
            news.reached.append(self.current)  # done at once: a gripper, a landing on the ground
            self.current += 1

    def _fail(self, news: MissionNews, ack: CommandAck) -> None:
        self.pause()
        news.failure = f"mission item {self.current}: {ack.reason or 'denied'}"

    def _execute(self, item: MissionItem) -> tuple[CommandAck, _Await | None]:
        """Command the vehicle for `item`; what to wait for, None when it is already done."""
        runners: dict[int, Callable[[MissionItem], tuple[CommandAck, _Await | None]]] = {
            Cmd.NAV_TAKEOFF: self._takeoff,
            Cmd.NAV_WAYPOINT: self._waypoint,
            Cmd.NAV_LAND: self._land,
            Cmd.NAV_RETURN_TO_LAUNCH: self._return,
            Cmd.DO_GRIPPER: self._gripper,
        }
        run = runners.get(item.command)
        if run is None:
            return denied(f"unsupported item {item.command}"), None
        return run(item)

    def _takeoff(self, item: MissionItem) -> tuple[CommandAck, _Await | None]:
        v = self.vehicle
        altitude = item.altitude_m
        ack = v.takeoff(v.airframe.cruise_altitude_m if altitude is None else altitude)
        return ack, _Await.REACHED

    def _waypoint(self, item: MissionItem) -> tuple[CommandAck, _Await | None]:
        target = item.location
        if target is None:
            return denied("waypoint without a position"), None
        return self.vehicle.goto(target, altitude_m=item.altitude_m), _Await.REACHED

    def _return(self, _: MissionItem) -> tuple[CommandAck, _Await | None]:
        v = self.vehicle
        ack = v.return_to_launch()
        # Already home and landed, the vehicle accepts without returning: nothing to wait for.
        return ack, (_Await.LANDED if v.state().phase is FlightPhase.RTL else None)

    def _gripper(self, item: MissionItem) -> tuple[CommandAck, _Await | None]:
        if round(item.params[1]) == GripperAction.GRAB:
            return self.vehicle.load_payload(item.params[2]), None
        return self.vehicle.release_payload(), None

    def _land(self, item: MissionItem) -> tuple[CommandAck, _Await | None]:
        v = self.vehicle
        state = v.state()
        if state.landed:
            return ACCEPTED, None
        target = item.location
        if target is None:
            return v.land(), _Await.LANDED
        # PX4 flies to a landing item's position before descending; so does this, level.
        return v.goto(target, altitude_m=state.position.altitude_m), _Await.LAND_AFTER_REACHED
