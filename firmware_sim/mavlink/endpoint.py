"""One simulated vehicle's MAVLink 2 endpoint on its own UDP port: the I/O around the pure parts.

Everything that decides lives elsewhere (modes, mission, commands, stream, peers); this module
owns the socket, the real-time clock and the order in which frames leave. It runs on the
asyncio loop of the simulator: `datagram_received` handles commands and missions at once,
`on_tick` (a simulator listener) streams telemetry and advances missions.

Past 400 lines: it is the one place where the pure parts meet the socket, and the order of
frames (a refusal's reason before its ack, a failsafe text before its heartbeat) is decided
here, so it stays in one file.
"""

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from firmware_sim.mavlink.codec import (
    Decoded,
    Encoder,
    MissionClearAll,
    MissionCount,
    MissionItemIn,
    MissionRequestItem,
    MissionRequestList,
    Received,
    decode,
)
from firmware_sim.mavlink.commands import Command, Commander
from firmware_sim.mavlink.mission import (
    NO_MISSION_TOTAL,
    RETRY_S,
    Finish,
    MissionControl,
    MissionCurrent,
    MissionNews,
    MissionUpload,
    RequestItem,
    RunState,
)
from firmware_sim.mavlink.modes import Px4Status, StatusText, failsafe_text, px4_status
from firmware_sim.mavlink.peers import Address, Peers
from firmware_sim.mavlink.protocol import (
    AUTOPILOT_COMPONENT,
    ONBOARD_COMPUTER_COMPONENT,
    MavResult,
    MissionResult,
    MissionType,
    MsgId,
    Severity,
)
from firmware_sim.mavlink.stream import Readout, StreamSchedule, read
from firmware_sim.state import SimEvent
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock

logger = logging.getLogger(__name__)

COMPANION_WINDOW_S = 3.0
"""A companion heard this recently (real seconds) counts as present to the vehicle."""


@dataclass(slots=True)
class EndpointStats:
    """Counters of what the endpoint received, dropped and sent.

    Attributes:
        received: valid messages handled.
        bad: garbage runs and corrupt frames (bad CRC, length, header).
        truncated: datagrams that ended inside a frame.
        mavlink1: MAVLink 1 frames, ignored.
        unknown: frames of messages outside the common dialect.
        out_of_order: duplicate or late frames (by the sender's sequence number).
        wrong_target: messages addressed to another system or component.
        unexpected: mission messages outside a transaction, or from someone else's.
        errors: messages whose handling raised (a bug: logged, never propagated).
        sent: frames sent (once per destination).
        send_errors: socket errors reported by the transport.
    """

    received: int = 0
    bad: int = 0
    truncated: int = 0
    mavlink1: int = 0
    unknown: int = 0
    out_of_order: int = 0
    wrong_target: int = 0
    unexpected: int = 0
    errors: int = 0
    sent: int = 0
    send_errors: int = 0

    def add(self, decoded: Decoded) -> None:
        """Count what decoding one datagram dropped."""
        self.bad += decoded.bad
        self.truncated += decoded.truncated
        self.mavlink1 += decoded.mavlink1
        self.unknown += decoded.unknown


@dataclass(slots=True)
class _Upload:
    transaction: MissionUpload
    address: Address
    source: tuple[int, int]
    timer: asyncio.TimerHandle | None = None


@dataclass(frozen=True, slots=True)
class _Finished:
    """The last completed upload, so a resent last item gets its ack again."""

    source: tuple[int, int]
    count: int
    result: MissionResult


class MavlinkEndpoint:
    """A PX4-flavoured MAVLink 2 endpoint for one `SimVehicle`.

    Args:
        vehicle: the simulated flight controller.
        clock: the simulation's clock (for the companion heartbeat's record).
        system_id: the vehicle's MAVLink system id (1..255).
        host: address to bind.
        port: UDP port to bind; 0 picks a free one (`start` returns it).
        push_to: an address to stream to even before it speaks (PX4 SITL style).
        heartbeat_s: default heartbeat interval (real seconds).
        companion_window_s: how recently a companion (component 191) must have been heard for
            the vehicle to count it as present.
        rate_multiplier: divides every stream interval but the heartbeat's (see
            `StreamSchedule`); 1 is the agreement's real-time rates.
    """

    def __init__(
        self,
        vehicle: SimVehicle,
        clock: Clock,
        *,
        system_id: int,
        host: str = "127.0.0.1",
        port: int = 0,
        push_to: tuple[str, int] | None = None,
        heartbeat_s: float = 1.0,
        companion_window_s: float = COMPANION_WINDOW_S,
        rate_multiplier: float = 1.0,
    ) -> None:
        if not 1 <= system_id <= 255:  # noqa: PLR2004 - the MAVLink range
            raise ValueError(f"system_id must be in 1..255, got {system_id}")
        self.vehicle = vehicle
        self.system_id = system_id
        self.stats = EndpointStats()
        self._clock = clock
        self._host, self._port = host, port
        self._push_to = push_to
        self._companion_window_s = companion_window_s
        self._encoder = Encoder(system_id)
        self._streams = StreamSchedule(
            {MsgId.HEARTBEAT: heartbeat_s}, rate_multiplier=rate_multiplier
        )
        self._mission = MissionControl(vehicle)
        self._commander = Commander(vehicle, self._mission, self._streams)
        self._peers = Peers()
        self._transport: asyncio.DatagramTransport | None = None
        self._closed = False
        self._companion_at: float | None = None
        self._upload: _Upload | None = None
        self._finished: _Finished | None = None
        # What was last said, to send again on change.
        self._said_mode: tuple[int, int, int] | None = None
        self._said_failsafe: StatusText | None = None
        self._said_landed: int | None = None
        self._said_home: tuple[float, float] | None = None
        self._said_mission: MissionCurrent | None = None
        self._said_signature: tuple[object, ...] | None = None

    @property
    def port(self) -> int:
        """The bound UDP port (0 before `start`)."""
        return self._port

    async def start(self) -> int:
        """Bind the UDP socket; returns the port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self._host, self._port)
        )
        self._transport = transport
        self._port = int(transport.get_extra_info("sockname")[1])
        return self._port

    def close(self) -> None:
        """Stop sending and receiving at once: the link is cut (buffered frames are dropped)."""
        self._closed = True
        if self._upload is not None and self._upload.timer is not None:
            self._upload.timer.cancel()
        self._upload = None
        if self._transport is not None:
            self._transport.abort()

    # --- the simulator's side ----------------------------------------------------------------

    def on_tick(self, vehicle: SimVehicle, events: list[SimEvent]) -> None:
        """Simulator listener: feed the companion link, advance the mission, stream what is due."""
        if self._closed or self._transport is None or vehicle is not self.vehicle:
            return
        now = time.monotonic()
        if self._companion_at is not None and now - self._companion_at <= self._companion_window_s:
            vehicle.companion_heartbeat(self._clock.monotonic())
        try:
            news = self._mission.on_events(events)
            self._send_news(news, now)
            # Reading the whole state costs more than the step itself: do it only when something
            # is due, or may have changed (an event, mission progress, the flight record).
            signature = self._signature()
            if (
                events
                or news.reached
                or news.failure
                or signature != self._said_signature
                or now >= self._streams.next_due_s()
            ):
                self._publish(now)
        except Exception:  # a listener that raises ends the simulator loop for the whole fleet
            self.stats.errors += 1
            logger.exception("MAVLink endpoint %d: tick", self.system_id)

    def _signature(self) -> tuple[object, ...]:
        """What the mode, status and landed state depend on, read cheaply from the flight record.

        Catches the changes that come without an event: a GPS hold turning into a landing, a
        return reaching home and starting its descent.
        """
        f = self.vehicle.flight
        over_home = math.hypot(f.motion.east, f.motion.north) <= (
            self.vehicle.airframe.waypoint_radius_m
        )
        return (f.phase, f.armed, f.failsafe, f.motion.on_ground, over_home)

    def _publish(self, now: float) -> None:
        """Send what is due by interval, and what changed since it was last said."""
        self._said_signature = self._signature()
        r = read(self.vehicle)
        status = px4_status(
            r.state, mission_active=self._mission.active, home_radius_m=r.home_radius_m
        )
        due = set(self._streams.due(now))
        text = failsafe_text(r.state)
        mode = (status.base_mode, status.custom_mode, int(status.system_status))
        if (mode != self._said_mode or text != self._said_failsafe) and self._streaming(
            MsgId.HEARTBEAT
        ):
            due.add(MsgId.HEARTBEAT)  # a change of mode or failsafe goes out at once
        elif text is not None and text != self._said_failsafe:
            self._broadcast([self._encoder.statustext(text)], now)  # heartbeats are stopped
        self._said_failsafe = text
        if status.landed_state != self._said_landed and self._streaming(MsgId.EXTENDED_SYS_STATE):
            due.add(MsgId.EXTENDED_SYS_STATE)
        home = (r.state.home.latitude, r.state.home.longitude)
        if home != self._said_home and self._streaming(MsgId.HOME_POSITION):
            due.add(MsgId.HOME_POSITION)
        report = self._mission.report()
        if report != self._said_mission and self._streaming(MsgId.MISSION_CURRENT):
            due.add(MsgId.MISSION_CURRENT)
        elif self._mission.state not in {RunState.ACTIVE, RunState.PAUSED}:
            due.discard(MsgId.MISSION_CURRENT)  # periodic only during a mission
        frames: list[bytes] = []
        for message in MsgId:  # table order: HEARTBEAT (and its failsafe text) first
            if message in due:
                frames += self._frames(message, r, status, report)
                self._streams.sent(message, now)
        self._broadcast(frames, now)

    def _greet(self, address: Address) -> None:
        """Send a new peer the whole picture at once, not over the next intervals.

        Heartbeat, home and position otherwise come up to 2 s (real) later, which at a high
        speed-up is minutes of simulated time before an agent's adapter is ready.
        """
        r = read(self.vehicle)
        status = px4_status(
            r.state, mission_active=self._mission.active, home_radius_m=r.home_radius_m
        )
        report = self._mission.report()
        frames: list[bytes] = []
        for message in MsgId:
            if self._streaming(message) and (
                message is not MsgId.MISSION_CURRENT or report.total != NO_MISSION_TOTAL
            ):
                frames += self._frames(message, r, status, report, remember=False)
        for frame in frames:
            self._send(frame, address)

    def _streaming(self, message: MsgId) -> bool:
        return self._streams.interval_s(message) is not None

    def _frames(
        self,
        message: MsgId,
        r: Readout,
        status: Px4Status,
        report: MissionCurrent,
        *,
        remember: bool = True,
    ) -> list[bytes]:
        """The frames for one stream message; remembers what every peer was told, unless not."""
        if remember:
            self._remember(message, r, status, report)
        e = self._encoder
        if message is MsgId.HEARTBEAT:
            text = failsafe_text(r.state)
            # The failsafe text goes before every heartbeat while engaged: one lost datagram
            # loses nothing, and the status change is never seen before its reason.
            return ([] if text is None else [e.statustext(text)]) + [e.heartbeat(status)]
        if message is MsgId.EXTENDED_SYS_STATE:
            return [e.extended_sys_state(status.landed_state)]
        if message is MsgId.MISSION_CURRENT:
            return [e.mission_current(report)]
        plain = {
            MsgId.HOME_POSITION: e.home_position,
            MsgId.GLOBAL_POSITION_INT: e.global_position_int,
            MsgId.GPS_RAW_INT: e.gps_raw_int,
            MsgId.SYS_STATUS: e.sys_status,
            MsgId.BATTERY_STATUS: e.battery_status,
        }
        return [plain[message](r)]

    def _remember(
        self, message: MsgId, r: Readout, status: Px4Status, report: MissionCurrent
    ) -> None:
        """Note what every peer has now been told, so a change is sent at once."""
        if message is MsgId.HEARTBEAT:
            self._said_mode = (status.base_mode, status.custom_mode, int(status.system_status))
        elif message is MsgId.EXTENDED_SYS_STATE:
            self._said_landed = status.landed_state
        elif message is MsgId.HOME_POSITION:
            self._said_home = (r.state.home.latitude, r.state.home.longitude)
        elif message is MsgId.MISSION_CURRENT:
            self._said_mission = report

    def _send_news(self, news: MissionNews, now: float) -> None:
        frames = [self._encoder.mission_item_reached(seq) for seq in news.reached]
        if news.failure is not None:
            frames.append(self._encoder.statustext(StatusText(Severity.WARNING, news.failure)))
        self._broadcast(frames, now)

    # --- the link's side ---------------------------------------------------------------------

    def datagram_received(self, data: bytes, address: Address) -> None:
        """Handle one datagram; malformed input is counted and dropped, never raised."""
        if self._closed:
            return
        now = time.monotonic()
        decoded = decode(data)
        self.stats.add(decoded)
        for message in decoded.messages:
            h = message.header
            if h.system == self.system_id and h.component == AUTOPILOT_COMPONENT:
                continue  # our own frame, looped back by a router
            if not self._peers.in_order(address, h.system, h.component, h.seq, now):
                self.stats.out_of_order += 1
                continue
            if self._peers.heard(address, now):
                self._greet(address)
            if h.component == ONBOARD_COMPUTER_COMPONENT:
                self._companion_at = now
            if message.target is not None and not self._for_me(message.target):
                self.stats.wrong_target += 1
                continue
            self.stats.received += 1
            try:
                self._dispatch(message, address, now)
            except Exception:
                self.stats.errors += 1
                logger.exception("MAVLink endpoint %d: handling %s", self.system_id, message)

    def _for_me(self, target: tuple[int, int]) -> bool:
        system, component = target
        return system in {0, self.system_id} and component in {0, AUTOPILOT_COMPONENT}

    def _dispatch(self, message: Received, address: Address, now: float) -> None:
        body = message.body
        source = (message.header.system, message.header.component)
        if isinstance(body, Command):
            self._command(body, source, address, now)
        elif isinstance(body, MissionCount):
            self._mission_count(body, source, address, now)
        elif isinstance(body, MissionItemIn):
            self._mission_item(body, source, address, now)
        elif isinstance(body, MissionRequestList):
            count = len(self._mission.items) if body.mission_type == MissionType.MISSION else 0
            self._reply(self._encoder.mission_count(source, count, body.mission_type), address)
        elif isinstance(body, MissionRequestItem):
            if body.mission_type == MissionType.MISSION and body.seq < len(self._mission.items):
                item = self._mission.items[body.seq]
                self._reply(self._encoder.mission_item_int(source, item), address)
            else:
                self.stats.unexpected += 1
        elif isinstance(body, MissionClearAll):
            if body.mission_type == MissionType.MISSION:
                self._mission.replace(())
            frame = self._encoder.mission_ack(source, MissionResult.ACCEPTED, body.mission_type)
            self._reply(frame, address)
            self._publish(now)

    def _command(
        self, command: Command, source: tuple[int, int], address: Address, now: float
    ) -> None:
        outcome = self._commander.handle(command, source)
        if outcome.result is MavResult.DENIED and outcome.reason:
            # The reason first, so the adapter has it when the ack arrives (docs/mavlink.md).
            self._broadcast(
                [self._encoder.statustext(StatusText(Severity.WARNING, outcome.reason))], now
            )
        self._reply(self._encoder.command_ack(command.command, outcome.result, source), address)
        if outcome.message_id is not None:
            message = MsgId(outcome.message_id)
            r = read(self.vehicle)
            status = px4_status(
                r.state, mission_active=self._mission.active, home_radius_m=r.home_radius_m
            )
            self._broadcast(self._frames(message, r, status, self._mission.report()), now)
        if outcome.mission is not None:
            self._send_news(outcome.mission, now)
        self._publish(now)  # an armed vehicle, a new mode: say so without waiting a second

    def _mission_count(
        self, body: MissionCount, source: tuple[int, int], address: Address, now: float
    ) -> None:
        if body.mission_type != MissionType.MISSION:
            frame = self._encoder.mission_ack(source, MissionResult.UNSUPPORTED, body.mission_type)
            self._reply(frame, address)
            return
        if self._upload is not None and self._upload.timer is not None:
            self._upload.timer.cancel()  # a new MISSION_COUNT restarts the upload
        upload = _Upload(MissionUpload(body.count, now), address, source)
        self._upload = upload
        self._upload_reply(upload, upload.transaction.begin(), now)

    def _mission_item(
        self, body: MissionItemIn, source: tuple[int, int], address: Address, now: float
    ) -> None:
        upload = self._upload
        if upload is None or upload.source != source or body.mission_type != MissionType.MISSION:
            finished = self._finished
            if (
                finished is not None
                and finished.source == source
                and body.item.seq == finished.count - 1
            ):
                # The uploader missed our ack and sent its last item again: ack again.
                self._reply(self._encoder.mission_ack(source, finished.result), address)
            else:
                self.stats.unexpected += 1
            return
        reply = upload.transaction.on_item(body.item, now)
        if reply is not None:
            self._upload_reply(upload, reply, now)

    def _upload_reply(self, upload: _Upload, reply: RequestItem | Finish, now: float) -> None:
        if upload.timer is not None:
            upload.timer.cancel()
            upload.timer = None
        if isinstance(reply, RequestItem):
            self._reply(self._encoder.mission_request_int(upload.source, reply.seq), upload.address)
            loop = asyncio.get_running_loop()
            upload.timer = loop.call_later(RETRY_S, self._upload_timer, upload)
            return
        self._reply(self._encoder.mission_ack(upload.source, reply.result), upload.address)
        self._upload = None
        self._finished = _Finished(upload.source, upload.transaction.count, reply.result)
        if reply.result is MissionResult.ACCEPTED:
            self._mission.replace(reply.items)
            self._publish(now)

    def _upload_timer(self, upload: _Upload) -> None:
        upload.timer = None
        if self._closed or self._upload is not upload:
            return
        now = time.monotonic()
        reply = upload.transaction.on_timer(now)
        if reply is None:  # woken a little early: wait for the deadline
            delay = max(0.0, upload.transaction.deadline - now)
            upload.timer = asyncio.get_running_loop().call_later(delay, self._upload_timer, upload)
        else:
            self._upload_reply(upload, reply, now)

    # --- sending -----------------------------------------------------------------------------

    def _destinations(self, now: float) -> list[Address]:
        peers = self._peers.active(now)
        if self._push_to is not None and self._push_to not in peers:
            peers.append(self._push_to)
        return peers

    def _broadcast(self, frames: list[bytes], now: float) -> None:
        if not frames:
            return
        for address in self._destinations(now):
            for frame in frames:
                self._send(frame, address)

    def _reply(self, frame: bytes, address: Address) -> None:
        self._send(frame, address)

    def _send(self, frame: bytes, address: Address) -> None:
        if self._closed or self._transport is None:
            return
        self._transport.sendto(frame, address)
        self.stats.sent += 1


class _Protocol(asyncio.DatagramProtocol):
    """Hands datagrams to the endpoint; socket errors (an ICMP "port unreachable") are counted."""

    def __init__(self, endpoint: MavlinkEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._endpoint.datagram_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self._endpoint.stats.send_errors += 1
        logger.debug("MAVLink endpoint %d: %s", self._endpoint.system_id, exc)
