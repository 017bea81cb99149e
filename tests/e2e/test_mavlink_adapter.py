"""The MAVLink adapter against a flight controller scripted by the test, on loopback.

The peer is built from pymavlink's codec here, so acknowledgements, refusals, lost frames,
silences and malformed data happen exactly when a test says so. Every wait is on an event
under `asyncio.timeout`; real-time settings (ack timeout, link timeout) are made small.
"""

import asyncio
import math
import os
import socket
import time
import tty
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any, cast

import pytest
from pymavlink.dialects.v20 import common as mavlink

from contracts.ids import Location
from drone_agent.flight import FailsafeError, FlightCommandError, VehicleState
from drone_agent.mavlink import MavlinkFlightController
from firmware_sim.mavlink import serve_fleet
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock, ManualClock, ScaledClock
from flight_model.geo import from_enu, haversine_m

pytestmark = pytest.mark.e2e

HOME = Location(latitude=47.3769, longitude=8.5417)
SYSTEM = 7
ARMED = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink.MAV_MODE_FLAG_SAFETY_ARMED
DISARMED = mavlink.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
LOITER = 4 << 16 | 3 << 24
RTL = 4 << 16 | 5 << 24
ACCEPTED = mavlink.MAV_RESULT_ACCEPTED
WAIT_S = 5.0

Responder = Callable[[Any], list[Any]]


def accept_all(command: Any) -> list[Any]:
    return [ack(command, ACCEPTED)]


def ack(command: Any, result: int, *, to_component: int | None = None) -> Any:
    return mavlink.MAVLink_command_ack_message(
        command.command,
        result,
        0,
        0,
        command.get_srcSystem(),
        command.get_srcComponent() if to_component is None else to_component,
    )


def statustext(text: str, severity: int = mavlink.MAV_SEVERITY_WARNING) -> Any:
    return mavlink.MAVLink_statustext_message(severity, text.encode())


def heartbeat(
    mode: int = LOITER, *, armed: bool = False, status: int = mavlink.MAV_STATE_STANDBY
) -> Any:
    return mavlink.MAVLink_heartbeat_message(
        mavlink.MAV_TYPE_QUADROTOR,
        mavlink.MAV_AUTOPILOT_PX4,
        ARMED if armed else DISARMED,
        mode,
        status,
        3,
    )


def position(at: Location, *, boot_ms: int, height_m: float = 0.0) -> Any:
    return mavlink.MAVLink_global_position_int_message(
        boot_ms,
        round(at.latitude * 1e7),
        round(at.longitude * 1e7),
        round(height_m * 1000),
        round(height_m * 1000),
        0,
        0,
        0,
        0,
    )


def home_position(at: Location = HOME, amsl_m: float = 0.0) -> Any:
    return mavlink.MAVLink_home_position_message(
        round(at.latitude * 1e7),
        round(at.longitude * 1e7),
        round(amsl_m * 1000),
        0.0,
        0.0,
        0.0,
        [1.0, 0.0, 0.0, 0.0],
        0.0,
        0.0,
        0.0,
        0,
    )


def battery(pct: int) -> Any:
    return mavlink.MAVLink_battery_status_message(0, 0, 0, 0, [65535] * 10, -1, -1, -1, pct)


def on_ground() -> list[Any]:
    """What a healthy vehicle on the ground reports, once."""
    return [
        heartbeat(),
        home_position(),
        position(HOME, boot_ms=1_000),
        mavlink.MAVLink_gps_raw_int_message(0, 3, 0, 0, 0, 0, 0, 0, 0, 12),
        battery(90),
        mavlink.MAVLink_extended_sys_state_message(0, mavlink.MAV_LANDED_STATE_ON_GROUND),
    ]


class ScriptedFc:
    """A flight controller that says what the test tells it to and answers commands.

    Whatever the controller sends is decoded into `received`; a COMMAND_LONG or COMMAND_INT
    is answered at once with what `respond` returns for it (all accepted by default).
    """

    def __init__(self, write: Callable[[bytes], None] | None = None) -> None:
        self.write = write
        self.respond: Responder = accept_all
        self.received: asyncio.Queue[Any] = asyncio.Queue()
        self.commands: list[Any] = []
        self._sender = mavlink.MAVLink(None, SYSTEM, 1)
        self._parser = mavlink.MAVLink(None)
        self._parser.robust_parsing = True

    def feed(self, data: bytes) -> None:
        for message in self._parser.parse_buffer(data) or []:
            self.received.put_nowait(message)
            if message.get_type() in {"COMMAND_LONG", "COMMAND_INT"}:
                self.commands.append(message)
                self.send(*self.respond(message))

    def send(self, *messages: Any, mavlink1: bool = False) -> None:
        self.send_raw(b"".join(self.pack(m, mavlink1=mavlink1) for m in messages))

    def pack(self, message: Any, *, mavlink1: bool = False) -> bytes:
        data = bytes(message.pack(self._sender, force_mavlink1=mavlink1))
        self._sender.seq = (self._sender.seq + 1) % 256
        return data

    def send_raw(self, data: bytes) -> None:
        assert self.write is not None, "the controller has not spoken yet"
        if data:
            self.write(data)

    async def next(self, kind: str, where: Callable[[Any], bool] = lambda _: True) -> Any:
        while True:
            message = await self.received.get()
            if message.get_type() == kind and where(message):
                return message

    def sent(self, command: int) -> list[Any]:
        return [c for c in self.commands if c.command == command]


class _UdpPeer(asyncio.DatagramProtocol):
    def __init__(self, fc: ScriptedFc, remote: tuple[str, int] | None = None) -> None:
        self.fc = fc
        self.transport: asyncio.DatagramTransport | None = None
        self.remote = remote
        fc.write = self._write if remote is not None else None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.DatagramTransport", transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self.remote is None:
            self.remote = (str(addr[0]), int(addr[1]))
            self.fc.write = self._write
        self.fc.feed(data)

    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        assert self.remote is not None
        self.transport.sendto(data, self.remote)


@asynccontextmanager
async def running(controller: MavlinkFlightController) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.get_running_loop().create_task(controller.run())
    try:
        yield task
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


@asynccontextmanager
async def scripted_link(
    clock: Clock | None = None,
    *,
    ack_timeout_s: float = 0.05,
    attempts: int = 3,
    link_timeout_s: float = 5.0,
) -> AsyncIterator[tuple[ScriptedFc, MavlinkFlightController]]:
    """A scripted FC on a loopback UDP port and the controller `udpout` to it, introduced."""
    loop = asyncio.get_running_loop()
    fc = ScriptedFc()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UdpPeer(fc), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    controller = MavlinkFlightController(
        f"udpout:127.0.0.1:{port}",
        clock or ScaledClock(),
        ack_timeout_s=ack_timeout_s,
        attempts=attempts,
        link_timeout_s=link_timeout_s,
    )
    try:
        async with running(controller):
            await fc.next("HEARTBEAT")  # the controller speaks first: the FC learns its address
            yield fc, controller
    finally:
        transport.close()


async def introduce(fc: ScriptedFc, controller: MavlinkFlightController) -> VehicleState:
    fc.send(*on_ground())
    await controller.ready.wait()
    return controller.state()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- identity and state --------------------------------------------------------------------------


async def test_the_controller_says_hello_as_the_onboard_computer_under_the_vehicles_id() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        fc.send(heartbeat())
        hello = await fc.next("HEARTBEAT", lambda m: m.get_srcSystem() == SYSTEM)
        assert hello.get_srcComponent() == mavlink.MAV_COMP_ID_ONBOARD_COMPUTER
        assert hello.type == mavlink.MAV_TYPE_ONBOARD_CONTROLLER
        assert hello.autopilot == mavlink.MAV_AUTOPILOT_INVALID
        assert controller.system_id == SYSTEM


async def test_on_first_contact_it_asks_for_the_stream_rates_and_for_home() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, _):
        fc.send(heartbeat())
        intervals = [
            await fc.next("COMMAND_LONG", lambda m: m.command == 511),
            await fc.next("COMMAND_LONG", lambda m: m.command == 511),
        ]
        assert {(c.param1, c.param2) for c in intervals} == {(33, 100_000), (147, 500_000)}
        assert {(c.target_system, c.target_component) for c in intervals} == {(SYSTEM, 1)}
        request = await fc.next("COMMAND_LONG", lambda m: m.command == 512)
        assert request.param1 == mavlink.MAVLINK_MSG_ID_HOME_POSITION


async def test_it_is_ready_once_heartbeat_position_and_home_arrived() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        assert not controller.ready.is_set()
        assert not controller.state().link_ok
        state = await introduce(fc, controller)
        assert (state.phase, state.landed, state.armed, state.gps_ok) == (
            "disarmed",
            True,
            False,
            True,
        )
        assert state.link_ok
        assert state.battery_pct == 90.0
        assert haversine_m(state.position, HOME) < 0.1
        assert state.home == HOME


# --- commands ------------------------------------------------------------------------------------


async def test_an_acknowledged_command_returns() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        await controller.arm()
        (arm,) = fc.sent(400)
        assert (arm.param1, arm.confirmation) == (1.0, 0)
        assert (arm.target_system, arm.target_component) == (SYSTEM, 1)


async def test_a_denied_command_raises_with_the_statustext_reason() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        fc.respond = lambda c: [
            statustext("Arming denied: battery too low"),
            ack(c, mavlink.MAV_RESULT_DENIED),
        ]
        with pytest.raises(FlightCommandError) as refused:
            await controller.arm()
        assert (refused.value.command, refused.value.reason) == (
            "arm",
            "Arming denied: battery too low",
        )


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (mavlink.MAV_RESULT_DENIED, "denied"),
        (mavlink.MAV_RESULT_TEMPORARILY_REJECTED, "temporarily_rejected"),
        (mavlink.MAV_RESULT_UNSUPPORTED, "unsupported"),
        (mavlink.MAV_RESULT_FAILED, "failed"),
    ],
)
async def test_a_refusal_without_a_statustext_gives_the_result_name(
    result: int, reason: str
) -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        fc.respond = lambda c: [ack(c, result)]
        with pytest.raises(FlightCommandError, match=reason) as refused:
            await controller.land()
        assert refused.value.reason == reason


async def test_a_statustext_from_before_the_command_is_not_its_reason() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        fc.send(statustext("Preflight check passed"))
        fc.send(battery(89))
        await controller.wait_until(lambda s: s.battery_pct == 89.0)
        fc.respond = lambda c: [ack(c, mavlink.MAV_RESULT_DENIED)]
        with pytest.raises(FlightCommandError) as refused:
            await controller.arm()
        assert refused.value.reason == "denied"


async def test_a_lost_command_is_resent_with_confirmation_plus_one() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        fc.respond = lambda c: [] if c.command == 400 and c.confirmation == 0 else accept_all(c)
        await controller.arm()
        assert [c.confirmation for c in fc.sent(400)] == [0, 1]


async def test_a_silent_flight_controller_gives_no_acknowledgement_after_every_attempt() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link(attempts=4) as (fc, controller):
        await introduce(fc, controller)
        fc.respond = lambda c: [] if c.command == 400 else accept_all(c)
        with pytest.raises(FlightCommandError) as refused:
            await controller.arm()
        assert (refused.value.command, refused.value.reason) == ("arm", "no acknowledgement")
        assert [c.confirmation for c in fc.sent(400)] == [0, 1, 2, 3]


async def test_an_ack_addressed_to_another_component_is_not_ours() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)

        def gcs_first(c: Any) -> list[Any]:
            if c.command == 21 and c.confirmation == 0:
                return [ack(c, mavlink.MAV_RESULT_DENIED, to_component=190)]
            return accept_all(c)

        fc.respond = gcs_first
        await controller.land()
        assert [c.confirmation for c in fc.sent(21)] == [0, 1]


async def test_in_progress_stops_the_resends_until_the_final_ack() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        fc.respond = lambda c: (
            [ack(c, mavlink.MAV_RESULT_IN_PROGRESS)] if c.command == 400 else accept_all(c)
        )
        arming = asyncio.get_running_loop().create_task(controller.arm())
        done, _ = await asyncio.wait({arming}, timeout=0.3)  # six ack timeouts: no resend
        assert not done
        assert len(fc.sent(400)) == 1
        fc.send(ack(fc.sent(400)[0], ACCEPTED))
        await arming


async def test_a_command_before_any_heartbeat_is_refused_at_once() -> None:
    controller = MavlinkFlightController("udpout:127.0.0.1:9", ScaledClock())
    with pytest.raises(FlightCommandError, match="no heartbeat"):
        await controller.arm()


async def test_goto_is_a_reposition_command_int_and_the_phase_follows_the_vehicle() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        target = from_enu(HOME, 600, 800)
        fc.send(
            heartbeat(armed=True, status=mavlink.MAV_STATE_ACTIVE),
            mavlink.MAVLink_extended_sys_state_message(0, mavlink.MAV_LANDED_STATE_IN_AIR),
            position(HOME, boot_ms=2_000, height_m=40),
        )
        await controller.wait_until(lambda s: not s.landed and s.position.altitude_m == 40)
        await controller.goto(target)
        (goto,) = [c for c in fc.commands if c.command == 192]
        assert goto.get_type() == "COMMAND_INT"
        assert goto.frame == mavlink.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
        assert (goto.x, goto.y) == (round(target.latitude * 1e7), round(target.longitude * 1e7))
        assert math.isnan(goto.z)
        state = controller.state()
        assert state.phase == "cruise"
        assert state.eta_s == pytest.approx(100.0, abs=0.5)  # 1 km at 10 m/s
        fc.send(position(target, boot_ms=3_000, height_m=40))
        arrived = await controller.wait_until(lambda s: haversine_m(s.position, target) < 5)
        assert (arrived.phase, arrived.eta_s) == ("hold", None)


async def test_takeoff_adds_homes_amsl_altitude_as_px4_reads_p7_amsl() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        fc.send(home_position(amsl_m=400.0), battery(88))
        await controller.wait_until(lambda s: s.battery_pct == 88.0)
        await controller.takeoff(40.0)
        (takeoff,) = fc.sent(22)
        assert takeoff.param7 == pytest.approx(440.0)
        assert math.isnan(takeoff.param5)
        assert math.isnan(takeoff.param6)


async def test_the_gripper_carries_the_mass_in_p3_and_the_payload_follows_it() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        await controller.load_payload(1.5)
        assert controller.state().payload_kg == 1.5
        await controller.release_payload()
        assert controller.state().payload_kg == 0.0
        grab, release = fc.sent(211)
        assert (grab.param1, grab.param2, grab.param3) == (1.0, mavlink.GRIPPER_ACTION_GRAB, 1.5)
        assert (release.param1, release.param2) == (1.0, mavlink.GRIPPER_ACTION_RELEASE)


async def test_hold_resume_return_and_land_send_their_commands() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        await controller.hold()
        await controller.resume()
        await controller.return_home()
        await controller.land()
        assert [c.param1 for c in fc.sent(193)] == [0.0, 1.0]
        assert len(fc.sent(20)) == 1
        assert len(fc.sent(21)) == 1


# --- the link ------------------------------------------------------------------------------------


async def test_silence_marks_the_link_lost_within_the_timeout_and_a_heartbeat_restores_it() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link(link_timeout_s=0.5) as (fc, controller):
        await introduce(fc, controller)
        started = time.monotonic()
        lost = await controller.wait_until(lambda s: not s.link_ok)
        assert time.monotonic() - started < 1.0
        assert lost.gps_ok  # the last state is kept; only the link is in doubt
        fc.send(heartbeat())
        await controller.wait_until(lambda s: s.link_ok)


async def test_a_lost_link_alone_does_not_end_a_wait() -> None:
    clock = ManualClock()
    async with asyncio.timeout(WAIT_S), scripted_link(clock, link_timeout_s=0.2) as (fc, ctl):
        await introduce(fc, ctl)
        waiting = asyncio.get_running_loop().create_task(ctl.wait_until(lambda s: s.armed))
        await ctl.wait_until(lambda s: not s.link_ok)
        assert not waiting.done()
        fc.send(heartbeat(armed=True))
        assert (await waiting).armed


async def test_garbage_bad_crcs_mavlink_1_and_stale_positions_are_ignored() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        before = controller.stats
        fc.send(position(from_enu(HOME, 10, 0), boot_ms=5_000))
        corrupt = bytearray(fc.pack(heartbeat(armed=True)))
        corrupt[-2] ^= 0xFF
        fc.send_raw(b"\x00\xffnot mavlink at all\xfd\x01")
        fc.send_raw(bytes(corrupt))
        fc.send(heartbeat(armed=True), mavlink1=True)
        fc.send(position(from_enu(HOME, 99, 0), boot_ms=4_000))  # older than the newest
        fc.send(battery(42))  # the marker: everything before it has been taken
        state = await controller.wait_until(lambda s: s.battery_pct == 42.0)
        assert not state.armed
        assert haversine_m(state.position, from_enu(HOME, 10, 0)) < 0.1
        stats = controller.stats
        assert stats.bad_data >= before.bad_data + 2
        assert stats.mavlink1 == before.mavlink1 + 1
        await controller.arm()  # and the link still works


async def test_frames_from_another_vehicle_or_a_ground_station_are_not_folded() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        other = mavlink.MAVLink(None, SYSTEM + 1, 1)
        gcs = mavlink.MAVLink(None, 255, 190)
        gcs_heartbeat = mavlink.MAVLink_heartbeat_message(
            mavlink.MAV_TYPE_GCS, mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3
        )
        fc.send_raw(bytes(heartbeat(armed=True).pack(other)) + bytes(gcs_heartbeat.pack(gcs)))
        fc.send(battery(41))
        state = await controller.wait_until(lambda s: s.battery_pct == 41.0)
        assert not state.armed
        assert controller.stats.foreign >= 2
        assert controller.system_id == SYSTEM


# --- waits ---------------------------------------------------------------------------------------


async def test_wait_until_times_out_in_simulated_seconds_with_no_traffic() -> None:
    clock = ScaledClock(speedup=200.0)
    async with asyncio.timeout(WAIT_S), scripted_link(clock) as (fc, controller):
        await introduce(fc, controller)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await controller.wait_until(lambda s: s.armed, timeout_s=60.0)
        assert time.monotonic() - started < 2.0  # 60 simulated seconds are 0.3 real ones
        assert clock.monotonic() >= 60.0


async def test_wait_until_counts_the_timeout_on_the_given_clock() -> None:
    clock = ManualClock()
    async with asyncio.timeout(WAIT_S), scripted_link(clock) as (fc, controller):
        await introduce(fc, controller)
        waiting = asyncio.get_running_loop().create_task(
            controller.wait_until(lambda s: s.armed, timeout_s=10.0)
        )
        await clock.wait_for_sleepers()
        clock.advance(9.5)
        await asyncio.sleep(0)
        assert not waiting.done()
        clock.advance(1.0)
        with pytest.raises(TimeoutError):
            await waiting


async def test_a_new_failsafe_ends_a_wait() -> None:
    async with asyncio.timeout(WAIT_S), scripted_link() as (fc, controller):
        await introduce(fc, controller)
        waiting = asyncio.get_running_loop().create_task(
            controller.wait_until(lambda s: s.position.altitude_m > 100)
        )
        await asyncio.sleep(0)
        fc.send(
            statustext("failsafe_battery: battery_low", mavlink.MAV_SEVERITY_CRITICAL),
            heartbeat(RTL, armed=True, status=mavlink.MAV_STATE_CRITICAL),
        )
        with pytest.raises(FailsafeError) as failsafe:
            await waiting
        assert failsafe.value.failsafe == "failsafe_battery"
        assert controller.state().failsafe == "failsafe_battery"


# --- other transports ----------------------------------------------------------------------------


async def test_udpin_answers_the_flight_controller_that_spoke_first() -> None:
    port = free_udp_port()
    fc = ScriptedFc()
    controller = MavlinkFlightController(f"udpin:127.0.0.1:{port}", ScaledClock())
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(WAIT_S), running(controller):
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpPeer(fc, ("127.0.0.1", port)), local_addr=("127.0.0.1", 0)
        )
        try:
            while not controller.ready.is_set():  # until the listener is up and took it
                fc.send(*on_ground())
                with suppress(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await controller.ready.wait()
            hello = await fc.next("HEARTBEAT", lambda m: m.get_srcSystem() == SYSTEM)
            assert hello.get_srcComponent() == mavlink.MAV_COMP_ID_ONBOARD_COMPUTER
            await controller.arm()
        finally:
            transport.close()


async def test_serial_over_a_pty() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)

    def write(data: bytes) -> None:
        os.write(master, data)

    fc = ScriptedFc(write=write)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        with suppress(BlockingIOError):
            fc.feed(os.read(master, 4096))

    loop.add_reader(master, readable)
    controller = MavlinkFlightController(f"serial:{os.ttyname(slave)}:921600", ScaledClock())
    try:
        async with asyncio.timeout(WAIT_S), running(controller):
            await fc.next("HEARTBEAT")
            state = await introduce(fc, controller)
            assert state.gps_ok
            await controller.arm()
            assert len(fc.sent(400)) == 1
    finally:
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)


async def test_tcp_reconnects_when_the_connection_drops() -> None:
    connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await connections.put((reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    controller = MavlinkFlightController(f"tcp:127.0.0.1:{port}", ScaledClock())
    try:
        async with asyncio.timeout(WAIT_S), running(controller):
            for round_ in range(2):
                reader, writer = await connections.get()
                fc = ScriptedFc(write=writer.write)
                fc.feed(await reader.read(4096))
                await fc.next("HEARTBEAT")
                fc.send(*on_ground())
                pump = asyncio.get_running_loop().create_task(_pump(reader, fc))
                await controller.ready.wait()
                pct = 50.0 + round_
                fc.send(battery(round(pct)))
                await controller.wait_until(partial(has_battery, pct))
                await controller.arm()
                pump.cancel()
                writer.close()  # the next round needs a reconnect
    finally:
        server.close()


def has_battery(pct: float, state: VehicleState) -> bool:
    return state.battery_pct == pct


async def _pump(reader: asyncio.StreamReader, fc: ScriptedFc) -> None:
    while data := await reader.read(4096):
        fc.feed(data)


# --- against the simulator's endpoint ------------------------------------------------------------


async def test_a_leg_flown_through_the_simulators_endpoint() -> None:
    """Smoke test: the adapter and firmware_sim's endpoint, both built to docs/mavlink.md."""
    clock = ScaledClock(speedup=50.0)
    simulator = Simulator(clock)
    vehicle = SimVehicle(vehicle_id="d1", home=HOME)
    (endpoint,) = await serve_fleet([vehicle], clock, simulator, base_port=0)
    flying = asyncio.get_running_loop().create_task(simulator.run())
    controller = MavlinkFlightController(f"udpout:127.0.0.1:{endpoint.port}", clock)
    target = from_enu(HOME, 300, 0)
    try:
        async with asyncio.timeout(20.0), running(controller):
            await controller.ready.wait()
            ready = controller.state()
            assert (ready.phase, ready.landed, ready.gps_ok, ready.link_ok) == (
                "disarmed",
                True,
                True,
                True,
            )
            assert controller.system_id == 1
            with pytest.raises(FlightCommandError) as refused:
                await controller.takeoff(10.0)
            assert refused.value.reason not in {"denied", "no acknowledgement"}
            await controller.arm()
            await controller.load_payload(1.0)
            await controller.takeoff(10.0)
            await controller.goto(target)
            arrived = await controller.wait_until(
                lambda s: haversine_m(s.position, target) <= 5.0, timeout_s=300.0
            )
            assert arrived.payload_kg == 1.0
            await controller.land()
            landed = await controller.wait_until(lambda s: s.landed, timeout_s=300.0)
            assert landed.phase in {"armed", "disarmed"}
            assert haversine_m(landed.position, target) <= 5.0
            await controller.release_payload()
            assert vehicle.state().payload_kg == 0.0
            assert endpoint.stats.errors == 0
    finally:
        endpoint.close()
        flying.cancel()
        await asyncio.gather(flying, return_exceptions=True)
