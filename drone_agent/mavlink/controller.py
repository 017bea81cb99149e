"""`FlightController` over MAVLink 2 to a PX4-flavoured flight controller (docs/mavlink.md).

`run()` owns the link: it opens the transport, says who we are (HEARTBEAT at 1 Hz, component
191), folds what the autopilot reports into the normalised state and watches its heartbeat.
Commands are sent as COMMAND_LONG / COMMAND_INT and return once the flight controller
acknowledged them (or raise `FlightCommandError`); `wait_until` waits on the state as the
simulator adapter does, with its timeout in simulated seconds of the given clock.

Times on the link (heartbeat, watchdog, ack timeouts) are real: MAVLink rates are a property
of the link, not of the simulated world.

Past 400 lines: the link's life (connect, heartbeat, watchdog, reconnect) and the command
exchange (resend, IN_PROGRESS, refusal reasons) share the state of one connection; the pure
parts (framing, folding, connection strings) already live in their own modules.
"""

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

from contracts.ids import Location
from drone_agent.flight import FailsafeError, FlightCommandError, VehicleState
from drone_agent.mavlink import state as fold_state
from drone_agent.mavlink.codec import Codec, CodecStats
from drone_agent.mavlink.connection import MavlinkConnection, UdpIn, UdpOut, parse_connection
from drone_agent.mavlink.messages import (
    AUTOPILOT_COMPONENT,
    GRIPPER_ACTION_GRAB,
    GRIPPER_ACTION_RELEASE,
    MAV_AUTOPILOT_INVALID,
    MAV_AUTOPILOT_PX4,
    MAV_DO_REPOSITION_FLAGS_CHANGE_MODE,
    MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
    MSG_ID_BATTERY_STATUS,
    MSG_ID_GLOBAL_POSITION_INT,
    MSG_ID_HOME_POSITION,
    ONBOARD_COMPONENT,
    Command,
    CommandAck,
    Frame,
    Heartbeat,
    MavResult,
    StatusText,
    result_name,
)
from drone_agent.mavlink.state import Telemetry
from drone_agent.mavlink.transport import Link, open_link
from flight_model.airframe import Airframe
from flight_model.clock import Clock

log = logging.getLogger("murmur.agent.mavlink")

HEARTBEAT_PERIOD_S = 1.0
IN_PROGRESS_TIMEOUT_S = 30.0
"""After an IN_PROGRESS ack: how long (real) to wait for the final one without news."""

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 5.0
STREAM_INTERVALS_US = ((MSG_ID_GLOBAL_POSITION_INT, 100_000), (MSG_ID_BATTERY_STATUS, 500_000))
_PLACEHOLDER_SYSTEM = 1  # our system id until the vehicle's is known (the usual vehicle id)

Params7 = tuple[float, float, float, float, float, float, float]
_NAN = math.nan


@dataclass(slots=True)
class LinkStats(CodecStats):
    """What came in on the link, and what was not for us."""

    foreign: int = 0  # frames from another system or a non-autopilot component
    errors: int = 0  # frames whose handling raised (a bug: logged, never propagated)


@dataclass
class _Waiter:
    predicate: Callable[[VehicleState], bool]
    future: asyncio.Future[VehicleState]
    failsafe_at_start: str | None


@dataclass
class _Pending:
    command: int
    acks: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    texts: list[str] = field(default_factory=list)


class MavlinkFlightController:
    """The agent's flight controller, reached over MAVLink 2.

    Args:
        connection: `udpin:HOST:PORT`, `udpout:HOST:PORT`, `tcp:HOST:PORT`,
            `serial:DEVICE[:BAUD]` or an already parsed `MavlinkConnection`.
        clock: the clock `wait_until` counts its timeout on (simulated seconds).
        airframe: battery capacity (for `energy_wh`) and nominal speeds (for the ETA).
        link_timeout_s: real seconds without an autopilot heartbeat before `link_ok` is false.
        ack_timeout_s: real seconds to wait for a COMMAND_ACK before resending.
        attempts: sends of a command in all before "no acknowledgement".

    Raises:
        ValueError: an invalid connection string or setting; the message names it.
    """

    def __init__(
        self,
        connection: str | MavlinkConnection,
        clock: Clock,
        *,
        airframe: Airframe | None = None,
        link_timeout_s: float = 5.0,
        ack_timeout_s: float = 0.5,
        attempts: int = 3,
    ) -> None:
        self.connection = (
            parse_connection(connection) if isinstance(connection, str) else connection
        )
        if not link_timeout_s > 0:
            raise ValueError(f"link_timeout_s must be positive, got {link_timeout_s}")
        if not ack_timeout_s > 0:
            raise ValueError(f"ack_timeout_s must be positive, got {ack_timeout_s}")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.ready = asyncio.Event()
        """Set once a heartbeat, a position and a home arrived; the state means something."""
        self._clock = clock
        self._airframe = airframe or Airframe()
        self._link_timeout_s = link_timeout_s
        self._ack_timeout_s = ack_timeout_s
        self._attempts = attempts
        self._datagrams = isinstance(self.connection, UdpIn | UdpOut)
        self._codec = Codec(source_system=_PLACEHOLDER_SYSTEM)
        self._foreign = 0
        self._errors = 0
        self._link: Link | None = None
        self._system_id: int | None = None
        self._autopilot = MAV_AUTOPILOT_PX4
        self._telemetry = Telemetry()
        self._link_ok = False
        self._state = self._normalise()
        self._waiters: list[_Waiter] = []
        self._command_lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._contact_needed = True

    # --- the link ------------------------------------------------------------------------------

    @property
    def system_id(self) -> int | None:
        """The vehicle's MAVLink system id, once its autopilot was heard."""
        return self._system_id

    @property
    def stats(self) -> LinkStats:
        """Frames decoded and skipped so far."""
        c = self._codec.stats
        return LinkStats(c.frames, c.bad_data, c.mavlink1, c.ignored, self._foreign, self._errors)

    async def run(self) -> None:
        """Hold the link until cancelled: heartbeat out, telemetry in, watchdog, reconnects.

        A UDP socket that cannot be bound raises `OSError` (a setting to fix); a TCP peer or a
        serial device that is not there is retried with a backoff of up to 5 s.
        """
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat_loop())
        backoff = RECONNECT_MIN_S
        try:
            while True:
                self._codec.reset()
                try:
                    link = await open_link(self.connection, self._received)
                except OSError as exc:
                    if self._datagrams:
                        raise
                    log.warning("mavlink %s: %s; retrying in %.1f s", self.connection, exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(RECONNECT_MAX_S, backoff * 2)
                    continue
                log.info("mavlink %s: open", self.connection)
                self._link = link
                try:
                    self._send_heartbeat()
                    await link.wait_closed()
                finally:
                    self._link = None
                    link.close()
                log.warning("mavlink %s: closed; reconnecting", self.connection)
                self._contact_needed = True
                await asyncio.sleep(backoff)
                backoff = RECONNECT_MIN_S
        finally:
            heartbeat.cancel()
            for task in list(self._tasks):
                task.cancel()
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._link_ok = False
            self._contact_needed = True
            self._publish()

    async def _heartbeat_loop(self) -> None:
        while True:
            self._send_heartbeat()
            await asyncio.sleep(HEARTBEAT_PERIOD_S)

    def _send_heartbeat(self) -> None:
        self._send(self._codec.heartbeat())

    def _send(self, data: bytes) -> None:
        if self._link is not None:
            self._link.send(data)

    def _received(self, data: bytes) -> bool:
        frames = self._codec.decode(data, datagram=self._datagrams)
        ours = False
        for frame in frames:
            try:
                ours = self._on_frame(frame) or ours
            except Exception:  # one bad frame must not take the link down
                self._errors += 1
                log.exception("mavlink: handling %s", frame)
        self._publish()
        return ours

    def _on_frame(self, frame: Frame) -> bool:
        """Take one frame; true if it came from our vehicle's autopilot."""
        message = frame.message
        if isinstance(message, Heartbeat):
            if frame.component_id != AUTOPILOT_COMPONENT or (
                message.autopilot == MAV_AUTOPILOT_INVALID
            ):
                self._foreign += 1  # a ground station, a companion, a camera...
                return False
            if self._system_id is None:
                self._first_contact(frame.system_id, message)
            elif frame.system_id != self._system_id:
                self._foreign += 1
                return False
            self._heard_autopilot()
        elif frame.system_id != self._system_id or frame.component_id != AUTOPILOT_COMPONENT:
            self._foreign += 1
            return False
        if isinstance(message, CommandAck):
            self._on_ack(message)
            return True
        if (
            isinstance(message, StatusText)
            and self._pending is not None
            and message.text
            and fold_state.failsafe_kind(message) is None
        ):
            self._pending.texts.append(message.text)
        self._telemetry = fold_state.fold(self._telemetry, message, self._airframe)
        return True

    def _first_contact(self, system_id: int, heartbeat: Heartbeat) -> None:
        self._system_id = system_id
        self._autopilot = heartbeat.autopilot
        self._codec.source_system = system_id
        log.info(
            "mavlink: flight controller is system %d (autopilot %d)", system_id, heartbeat.autopilot
        )
        # Say hello under the right system id at once (after the link noted who spoke).
        asyncio.get_running_loop().call_soon(self._send_heartbeat)

    def _heard_autopilot(self) -> None:
        loop = asyncio.get_running_loop()
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = loop.call_later(self._link_timeout_s, self._link_lost)
        if not self._link_ok:
            self._link_ok = True
            log.info("mavlink: flight controller link up")
        if self._contact_needed:
            self._contact_needed = False
            self._spawn(self._on_contact())

    def _link_lost(self) -> None:
        self._watchdog = None
        if not self._link_ok:
            return
        log.warning("mavlink: no heartbeat for %.1f s, link lost", self._link_timeout_s)
        self._link_ok = False
        self._contact_needed = True  # it may have rebooted: ask for the streams again
        self._telemetry = fold_state.link_lost(self._telemetry)
        self._publish()

    async def _on_contact(self) -> None:
        """Ask for the stream rates the agent needs, and for home now."""
        requests: list[tuple[str, Command, tuple[float, ...]]] = [
            ("set_message_interval", Command.SET_MESSAGE_INTERVAL, (float(msg), float(us)))
            for msg, us in STREAM_INTERVALS_US
        ]
        requests.append(
            ("request_message", Command.REQUEST_MESSAGE, (float(MSG_ID_HOME_POSITION),))
        )
        for name, command, params in requests:
            try:
                await self._command_long(name, command, _params7(params))
            except FlightCommandError as exc:
                log.info("mavlink: %s", exc)

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- state ----------------------------------------------------------------------------------

    def _normalise(self) -> VehicleState:
        return fold_state.normalise(self._telemetry, self._airframe, link_ok=self._link_ok)

    def _publish(self) -> None:
        """Recompute the state; wake whoever waits for it."""
        if self._telemetry.ready and not self.ready.is_set():
            self.ready.set()
        state = self._normalise()
        if state == self._state:
            return
        self._state = state
        for waiter in list(self._waiters):
            if waiter.future.done():
                self._waiters.remove(waiter)
            elif state.failsafe is not None and state.failsafe != waiter.failsafe_at_start:
                waiter.future.set_exception(FailsafeError(state.failsafe))
            elif waiter.predicate(state):
                waiter.future.set_result(state)

    def state(self) -> VehicleState:
        """The latest state; a not-ready placeholder (no GPS, no link) before `ready`."""
        return self._state

    async def wait_until(
        self, predicate: Callable[[VehicleState], bool], *, timeout_s: float | None = None
    ) -> VehicleState:
        """Wait for a state that satisfies `predicate`, checked on every change.

        Link loss alone does not end the wait: the flight controller keeps flying.

        Raises:
            FailsafeError: a failsafe not active at the start became active first.
            TimeoutError: `timeout_s` simulated seconds (of the clock) passed first.
        """
        if predicate(self._state):
            return self._state
        waiter = _Waiter(
            predicate, asyncio.get_running_loop().create_future(), self._state.failsafe
        )
        self._waiters.append(waiter)
        timer = None
        if timeout_s is not None:
            timer = asyncio.get_running_loop().create_task(self._expire(waiter, timeout_s))
        try:
            return await waiter.future
        finally:
            if timer is not None:
                timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def _expire(self, waiter: _Waiter, timeout_s: float) -> None:
        await self._clock.sleep(timeout_s)
        if not waiter.future.done():
            waiter.future.set_exception(TimeoutError())

    # --- commands -------------------------------------------------------------------------------

    async def arm(self) -> None:
        """COMPONENT_ARM_DISARM, p1 = 1."""
        await self._command_long("arm", Command.COMPONENT_ARM_DISARM, _params7((1.0,)))

    async def takeoff(self, altitude_m: float) -> None:
        """NAV_TAKEOFF to `altitude_m` above home.

        PX4 reads p7 as AMSL, so home's AMSL altitude is added (the simulator's home is at
        0 m AMSL, so there p7 is the height); ArduPilot reads p7 as relative. Yaw, latitude
        and longitude are NaN: the current ones (PX4 would fly to 0, 0 otherwise).
        """
        base = self._telemetry.home_amsl_m if self._autopilot == MAV_AUTOPILOT_PX4 else 0.0
        params = (0.0, 0.0, 0.0, _NAN, _NAN, _NAN, base + altitude_m)
        await self._command_long("takeoff", Command.NAV_TAKEOFF, params)
        self._intend(fold_state.takeoff_commanded(self._telemetry, altitude_m))

    async def goto(self, target: Location) -> None:
        """DO_REPOSITION as COMMAND_INT, relative-altitude frame, z NaN (cruise altitude)."""
        params = (-1.0, float(MAV_DO_REPOSITION_FLAGS_CHANGE_MODE), 0.0, _NAN)
        await self._command(
            "goto",
            Command.DO_REPOSITION,
            lambda _: self._codec.command_int(
                self._target_system(),
                AUTOPILOT_COMPONENT,
                Command.DO_REPOSITION,
                MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
                params,
                round(target.latitude * 1e7),
                round(target.longitude * 1e7),
                _NAN,
            ),
        )
        self._intend(fold_state.goto_commanded(self._telemetry, target))

    async def hold(self) -> None:
        """DO_PAUSE_CONTINUE, p1 = 0."""
        await self._command_long("hold", Command.DO_PAUSE_CONTINUE, _params7((0.0,)))
        self._intend(fold_state.hold_commanded(self._telemetry))

    async def resume(self) -> None:
        """DO_PAUSE_CONTINUE, p1 = 1."""
        await self._command_long("resume", Command.DO_PAUSE_CONTINUE, _params7((1.0,)))
        self._intend(fold_state.resume_commanded(self._telemetry))

    async def return_home(self) -> None:
        """NAV_RETURN_TO_LAUNCH."""
        await self._command_long("return", Command.NAV_RETURN_TO_LAUNCH, _params7(()))
        self._intend(fold_state.descent_commanded(self._telemetry))

    async def land(self) -> None:
        """NAV_LAND where it is."""
        await self._command_long("land", Command.NAV_LAND, _params7(()))
        self._intend(fold_state.descent_commanded(self._telemetry))

    async def load_payload(self, kg: float) -> None:
        """DO_GRIPPER grab, with the mass in p3 (unused by the standard)."""
        params = _params7((1.0, float(GRIPPER_ACTION_GRAB), kg))
        await self._command_long("load_payload", Command.DO_GRIPPER, params)
        self._intend(fold_state.payload_commanded(self._telemetry, kg))

    async def release_payload(self) -> None:
        """DO_GRIPPER release."""
        params = _params7((1.0, float(GRIPPER_ACTION_RELEASE)))
        await self._command_long("release_payload", Command.DO_GRIPPER, params)
        self._intend(fold_state.payload_commanded(self._telemetry, 0.0))

    def _intend(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._publish()

    def _target_system(self) -> int:
        return self._system_id if self._system_id is not None else 0

    async def _command_long(self, name: str, command: Command, params: Params7) -> None:
        await self._command(
            name,
            command,
            lambda confirmation: self._codec.command_long(
                self._target_system(), AUTOPILOT_COMPONENT, command, confirmation, params
            ),
        )

    async def _command(self, name: str, command: Command, encode: Callable[[int], bytes]) -> None:
        """Send until acknowledged: `attempts` sends `ack_timeout_s` apart, one command at a time.

        Raises:
            FlightCommandError: no flight controller heard yet, no acknowledgement, or a
                refusal (with the reason from the latest STATUSTEXT since it was sent).
        """
        async with self._command_lock:
            if self._system_id is None:
                raise FlightCommandError(name, "no heartbeat from the flight controller yet")
            pending = self._pending = _Pending(int(command))
            try:
                result = await self._exchange(name, pending, encode)
            finally:
                self._pending = None
        if result != MavResult.ACCEPTED:
            reason = pending.texts[-1] if pending.texts else result_name(result)
            raise FlightCommandError(name, reason)

    async def _exchange(self, name: str, pending: _Pending, encode: Callable[[int], bytes]) -> int:
        """The final result of the command; resends while unacknowledged."""
        loop = asyncio.get_running_loop()
        attempt = 0
        in_progress = False
        self._send(encode(attempt))
        deadline = loop.time() + self._ack_timeout_s
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    result = await pending.acks.get()
            except TimeoutError:
                if in_progress:
                    raise FlightCommandError(name, "no final acknowledgement") from None
                attempt += 1
                if attempt >= self._attempts:
                    raise FlightCommandError(name, "no acknowledgement") from None
                self._send(encode(attempt))
                deadline = loop.time() + self._ack_timeout_s
                continue
            if result == MavResult.IN_PROGRESS:
                in_progress = True  # executing: no more resends, wait for the final ack
                deadline = loop.time() + IN_PROGRESS_TIMEOUT_S
                continue
            return result

    def _on_ack(self, ack: CommandAck) -> None:
        pending = self._pending
        if pending is None or ack.command != pending.command:
            return  # late, or for a command we did not send
        if ack.target_component not in (0, ONBOARD_COMPONENT):
            return  # a ground station's command
        if ack.target_system not in (0, self._codec.source_system):
            return
        pending.acks.put_nowait(ack.result)


def _params7(given: tuple[float, ...]) -> Params7:
    """Seven COMMAND_LONG params: `given`, then zeros."""
    p = (*given, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return (p[0], p[1], p[2], p[3], p[4], p[5], p[6])
