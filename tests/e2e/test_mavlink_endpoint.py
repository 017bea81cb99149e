"""A simulated vehicle's MAVLink endpoint, driven by an independent ground station over UDP.

The ground station is pymavlink's `mavutil` (blocking, so it runs in a worker thread with its
own timeouts); the vehicle flies on a real `Simulator` at 50x. Loopback only, no broker.
"""

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

# mavutil picks MAVLink 1 unless told otherwise before its import (field notes §8).
os.environ["MAVLINK20"] = "1"
from pymavlink import mavutil

from firmware_sim.failures import Failure
from firmware_sim.mavlink import MavlinkEndpoint, serve_fleet
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import ScaledClock
from flight_model.geo import haversine_m
from tests.builders import HOME
from tests.flights import a_sim_vehicle, east_of

SPEEDUP = 50.0
SYSID = 7
GCS_SYSID, GCS_COMPONENT = 255, 190  # MAV_COMP_ID_MISSIONPLANNER
if mavutil.mavlink.WIRE_PROTOCOL_VERSION != "2.0":  # imported earlier without MAVLINK20
    mavutil.set_dialect(mavutil.current_dialect)
m = mavutil.mavlink  # the dialect's constants

Msg = Any  # a pymavlink message: untyped


class Gcs:
    """A ground station on its own UDP socket, sending to one endpoint."""

    def __init__(self, port: int, *, component: int = GCS_COMPONENT) -> None:
        self.conn: Any = mavutil.mavlink_connection(
            f"udpout:127.0.0.1:{port}", source_system=GCS_SYSID, source_component=component
        )
        self.mav: Any = self.conn.mav

    def heartbeat(self) -> None:
        self.mav.heartbeat_send(m.MAV_TYPE_GCS, m.MAV_AUTOPILOT_INVALID, 0, 0, m.MAV_STATE_ACTIVE)

    def command(
        self, command: int, *params: float, confirmation: int = 0, target: int = SYSID
    ) -> None:
        p = [*params, *[0.0] * (7 - len(params))]
        self.mav.command_long_send(target, 1, command, confirmation, *p)

    def raw(self, frame: bytes) -> None:
        """Send bytes as they are, in one datagram."""
        self.conn.write(frame)

    def pack(self, message: Msg, *, mavlink1: bool = False) -> bytes:
        """A frame numbered in this station's sequence, as `send` would number it."""
        frame: bytes = message.pack(self.mav, force_mavlink1=mavlink1)
        self.mav.seq = (self.mav.seq + 1) % 256
        return frame

    async def until(self, predicate: Callable[[Msg], bool], timeout: float = 3.0) -> list[Msg]:
        """Every message received until one satisfies `predicate` (that one last)."""
        async with asyncio.timeout(timeout + 1.0):
            return await asyncio.to_thread(self._until, predicate, timeout)

    async def during(self, seconds: float) -> list[Msg]:
        """Every message received within `seconds` (a bounded wait for what does NOT come)."""
        async with asyncio.timeout(seconds + 1.0):
            return await asyncio.to_thread(self._during, seconds)

    async def ack(self, command: int, timeout: float = 3.0) -> tuple[Msg, list[Msg]]:
        """The COMMAND_ACK for `command`, and everything received before it."""
        seen = await self.until(lambda x: is_ack(x, command), timeout)
        return seen[-1], seen[:-1]

    def drain(self) -> None:
        """Drop what is already queued on the socket."""
        while self.conn.recv_match(blocking=False) is not None:
            pass

    def close(self) -> None:
        self.conn.close()

    def _until(self, predicate: Callable[[Msg], bool], timeout: float) -> list[Msg]:
        deadline = time.monotonic() + timeout
        seen: list[Msg] = []
        while (left := deadline - time.monotonic()) > 0:
            message = self.conn.recv_match(blocking=True, timeout=left)
            if message is None:
                break
            if message.get_type() == "BAD_DATA":
                continue
            seen.append(message)
            if predicate(message):
                return seen
        types = [x.get_type() for x in seen[-15:]]
        raise AssertionError(f"not received within {timeout} s; last: {types}")

    def _during(self, seconds: float) -> list[Msg]:
        deadline = time.monotonic() + seconds
        seen: list[Msg] = []
        while (left := deadline - time.monotonic()) > 0:
            message = self.conn.recv_match(blocking=True, timeout=left)
            if message is not None and message.get_type() != "BAD_DATA":
                seen.append(message)
        return seen


def is_ack(message: Msg, command: int) -> bool:
    return bool(message.get_type() == "COMMAND_ACK" and message.command == command)


def of_type(name: str, **fields: Any) -> Callable[[Msg], bool]:
    return lambda x: x.get_type() == name and all(getattr(x, k) == v for k, v in fields.items())


def px4_mode(heartbeat: Msg) -> str:
    return str(mavutil.interpret_px4_mode(heartbeat.base_mode, heartbeat.custom_mode))


@dataclass
class Rig:
    vehicle: SimVehicle
    endpoint: MavlinkEndpoint
    gcs: Gcs
    simulator: Simulator


@asynccontextmanager
async def running_rig(**endpoint_options: Any) -> AsyncIterator[Rig]:
    """A vehicle at HOME on a running simulator, its endpoint, and a GCS that said hello."""
    clock = ScaledClock(SPEEDUP)
    simulator = Simulator(clock)
    vehicle = a_sim_vehicle()
    simulator.add(vehicle)
    endpoint = MavlinkEndpoint(vehicle, clock, system_id=SYSID, **endpoint_options)
    port = await endpoint.start()
    simulator.on_tick(endpoint.on_tick, vehicle_id=vehicle.vehicle_id)
    task = asyncio.create_task(simulator.run())
    gcs = Gcs(port)
    gcs.heartbeat()
    try:
        yield Rig(vehicle, endpoint, gcs, simulator)
        assert endpoint.stats.errors == 0
    finally:
        endpoint.close()
        gcs.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def arm_and_take_off(rig: Rig, altitude_m: float = 10.0) -> None:
    rig.gcs.command(m.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    ack, _ = await rig.gcs.ack(m.MAV_CMD_COMPONENT_ARM_DISARM)
    assert ack.result == m.MAV_RESULT_ACCEPTED
    rig.gcs.command(m.MAV_CMD_NAV_TAKEOFF, *[0.0] * 6, altitude_m)
    ack, _ = await rig.gcs.ack(m.MAV_CMD_NAV_TAKEOFF)
    assert ack.result == m.MAV_RESULT_ACCEPTED
    await rig.gcs.until(of_type("EXTENDED_SYS_STATE", landed_state=m.MAV_LANDED_STATE_IN_AIR))


# --- (1) the stream --------------------------------------------------------------------------

STREAM = {
    "HEARTBEAT",
    "GLOBAL_POSITION_INT",
    "BATTERY_STATUS",
    "SYS_STATUS",
    "GPS_RAW_INT",
    "EXTENDED_SYS_STATE",
    "HOME_POSITION",
}


async def test_a_ground_station_that_says_hello_gets_the_vehicles_stream() -> None:
    async with running_rig() as rig:
        first: dict[str, Msg] = {}

        def all_seen(x: Msg) -> bool:
            first.setdefault(x.get_type(), x)
            return first.keys() >= STREAM

        seen = await rig.gcs.until(all_seen)
        # A new peer gets the whole picture at once, before any interval elapses.
        assert [x.get_type() for x in seen[: len(STREAM)]] == [
            "HEARTBEAT", "SYS_STATUS", "GPS_RAW_INT", "GLOBAL_POSITION_INT", "BATTERY_STATUS",
            "HOME_POSITION", "EXTENDED_SYS_STATE",
        ]  # fmt: skip
        hb = first["HEARTBEAT"]
        assert (hb.get_srcSystem(), hb.get_srcComponent()) == (SYSID, 1)
        assert (hb.type, hb.autopilot) == (m.MAV_TYPE_QUADROTOR, m.MAV_AUTOPILOT_PX4)
        assert hb.base_mode & m.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        assert not hb.base_mode & m.MAV_MODE_FLAG_SAFETY_ARMED
        assert (px4_mode(hb), hb.system_status) == ("LOITER", m.MAV_STATE_STANDBY)
        position = first["GLOBAL_POSITION_INT"]
        assert (position.lat, position.lon) == (
            round(HOME.latitude * 1e7),
            round(HOME.longitude * 1e7),
        )
        assert position.relative_alt == 0
        assert first["BATTERY_STATUS"].battery_remaining == 100
        assert first["SYS_STATUS"].battery_remaining == 100
        assert first["GPS_RAW_INT"].fix_type >= 3
        assert first["EXTENDED_SYS_STATE"].landed_state == m.MAV_LANDED_STATE_ON_GROUND
        assert first["HOME_POSITION"].latitude == round(HOME.latitude * 1e7)


async def test_every_peer_heard_gets_the_stream_and_so_does_a_push_address() -> None:
    listener = mavutil.mavlink_connection("udpin:127.0.0.1:0", source_system=GCS_SYSID)
    push_port = listener.port.getsockname()[1]
    try:
        async with running_rig(push_to=("127.0.0.1", push_port)) as rig:
            other = Gcs(rig.endpoint.port)
            try:
                other.heartbeat()
                for gcs in (rig.gcs, other):
                    await gcs.until(of_type("HEARTBEAT"))
                pushed = await asyncio.wait_for(
                    asyncio.to_thread(
                        listener.recv_match, type="HEARTBEAT", blocking=True, timeout=3
                    ),
                    timeout=4,
                )
                assert pushed is not None
                assert pushed.get_srcSystem() == SYSID
            finally:
                other.close()
    finally:
        listener.close()


# --- (2) commands ----------------------------------------------------------------------------


async def test_arm_then_takeoff_are_accepted_and_change_the_vehicle() -> None:
    async with running_rig() as rig:
        gcs = rig.gcs
        gcs.command(m.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        ack, _ = await gcs.ack(m.MAV_CMD_COMPONENT_ARM_DISARM)
        assert ack.result == m.MAV_RESULT_ACCEPTED
        assert (ack.target_system, ack.target_component) == (GCS_SYSID, GCS_COMPONENT)
        await gcs.until(
            lambda x: x.get_type() == "HEARTBEAT" and x.base_mode & m.MAV_MODE_FLAG_SAFETY_ARMED
        )

        gcs.command(m.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 20.0)
        ack, _ = await gcs.ack(m.MAV_CMD_NAV_TAKEOFF)
        assert ack.result == m.MAV_RESULT_ACCEPTED
        await gcs.until(
            lambda x: (
                x.get_type() == "EXTENDED_SYS_STATE"
                and x.landed_state != m.MAV_LANDED_STATE_ON_GROUND
            )
        )
        low = await gcs.until(
            lambda x: x.get_type() == "GLOBAL_POSITION_INT" and x.relative_alt > 1000
        )
        higher = await gcs.until(
            lambda x: (
                x.get_type() == "GLOBAL_POSITION_INT"
                and x.relative_alt > low[-1].relative_alt + 2000
            )
        )
        climb = [x.vz for x in low + higher if x.get_type() == "GLOBAL_POSITION_INT"]
        assert min(climb) < 0  # climbing: the down velocity is negative
        assert rig.vehicle.state().armed


async def test_a_takeoff_while_disarmed_is_denied_with_the_reason_first() -> None:
    async with running_rig() as rig:
        rig.gcs.command(m.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 20.0)
        ack, before = await rig.gcs.ack(m.MAV_CMD_NAV_TAKEOFF)
        assert ack.result == m.MAV_RESULT_DENIED
        texts = [x for x in before if x.get_type() == "STATUSTEXT"]
        assert [(t.severity, t.text) for t in texts] == [(m.MAV_SEVERITY_WARNING, "not armed")]
        assert rig.vehicle.state().landed


async def test_an_unknown_command_is_unsupported() -> None:
    async with running_rig() as rig:
        rig.gcs.command(m.MAV_CMD_DO_SET_SERVO, 1, 1500)
        ack, _ = await rig.gcs.ack(m.MAV_CMD_DO_SET_SERVO)
        assert ack.result == m.MAV_RESULT_UNSUPPORTED


async def test_a_resent_command_is_acknowledged_again_without_running_twice() -> None:
    async with running_rig() as rig:
        grab = (m.MAV_CMD_DO_GRIPPER, 1, m.GRIPPER_ACTION_GRAB, 1.0)
        rig.gcs.command(*grab)
        ack, _ = await rig.gcs.ack(m.MAV_CMD_DO_GRIPPER)
        assert ack.result == m.MAV_RESULT_ACCEPTED
        rig.gcs.command(*grab, confirmation=1)  # the ack was "lost": the adapter resends
        ack, _ = await rig.gcs.ack(m.MAV_CMD_DO_GRIPPER)
        assert ack.result == m.MAV_RESULT_ACCEPTED
        assert rig.vehicle.state().payload_kg == 1.0
        rig.gcs.command(*grab)  # confirmation 0: a new command, run again
        await rig.gcs.ack(m.MAV_CMD_DO_GRIPPER)
        assert rig.vehicle.state().payload_kg == 2.0


async def test_a_reposition_as_command_int_flies_to_the_point_at_cruise_altitude() -> None:
    async with running_rig() as rig:
        await arm_and_take_off(rig)
        target = east_of(HOME, 200.0)
        lat, lon = round(target.latitude * 1e7), round(target.longitude * 1e7)
        rig.gcs.mav.command_int_send(
            SYSID, 1, m.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, m.MAV_CMD_DO_REPOSITION, 0, 0,
            -1, 0, 0, math.nan, lat, lon, math.nan,
        )  # fmt: skip
        ack, _ = await rig.gcs.ack(m.MAV_CMD_DO_REPOSITION)
        assert ack.result == m.MAV_RESULT_ACCEPTED
        state = rig.vehicle.state()
        assert state.target is not None
        assert haversine_m(state.target, target) < 0.1
        assert state.target.altitude_m == rig.vehicle.airframe.cruise_altitude_m


async def test_hold_continue_return_and_disarm_by_command() -> None:
    async with running_rig() as rig:
        gcs, vehicle = rig.gcs, rig.vehicle
        await arm_and_take_off(rig)
        away = east_of(HOME, 300.0)
        gcs.command(m.MAV_CMD_DO_REPOSITION, -1, 0, 0, math.nan, away.latitude, away.longitude, 10)
        assert (await gcs.ack(m.MAV_CMD_DO_REPOSITION))[0].result == m.MAV_RESULT_ACCEPTED
        for p1, phase in ((0, "hold"), (1, "cruise")):
            gcs.command(m.MAV_CMD_DO_PAUSE_CONTINUE, p1)
            assert (await gcs.ack(m.MAV_CMD_DO_PAUSE_CONTINUE))[0].result == m.MAV_RESULT_ACCEPTED
            assert vehicle.state().phase == phase
        gcs.command(m.MAV_CMD_NAV_RETURN_TO_LAUNCH)
        assert (await gcs.ack(m.MAV_CMD_NAV_RETURN_TO_LAUNCH))[0].result == m.MAV_RESULT_ACCEPTED
        seen = await gcs.until(
            of_type("EXTENDED_SYS_STATE", landed_state=m.MAV_LANDED_STATE_ON_GROUND), timeout=5.0
        )
        landed = [x.landed_state for x in seen if x.get_type() == "EXTENDED_SYS_STATE"]
        assert m.MAV_LANDED_STATE_LANDING in landed  # the return ends in a descent over home
        assert "RTL" in {px4_mode(x) for x in seen if x.get_type() == "HEARTBEAT"}
        assert haversine_m(vehicle.state().position, HOME) < 2.0
        gcs.command(m.MAV_CMD_COMPONENT_ARM_DISARM, 0)
        assert (await gcs.ack(m.MAV_CMD_COMPONENT_ARM_DISARM))[0].result == m.MAV_RESULT_ACCEPTED
        beat = await gcs.until(of_type("HEARTBEAT"))
        assert not beat[-1].base_mode & m.MAV_MODE_FLAG_SAFETY_ARMED
        assert beat[-1].system_status == m.MAV_STATE_STANDBY


# --- (3) a mission ---------------------------------------------------------------------------


WAYPOINT = east_of(HOME, 150.0)
MISSION = [  # (command, latitude, longitude, altitude): take off, fly to one point, land there
    (m.MAV_CMD_NAV_TAKEOFF, 0.0, 0.0, 10.0),
    (m.MAV_CMD_NAV_WAYPOINT, WAYPOINT.latitude, WAYPOINT.longitude, 15.0),
    (m.MAV_CMD_NAV_LAND, 0.0, 0.0, 0.0),
]


def send_item(gcs: Gcs, seq: int) -> None:
    command, lat, lon, alt = MISSION[seq]
    gcs.mav.mission_item_int_send(
        SYSID, 1, seq, m.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, command, 0, 1, 0, 0, 0, math.nan,
        round(lat * 1e7), round(lon * 1e7), alt, m.MAV_MISSION_TYPE_MISSION,
    )  # fmt: skip


async def test_a_mission_uploads_and_flies_reporting_each_item_reached() -> None:
    async with running_rig() as rig:
        gcs = rig.gcs
        gcs.mav.mission_count_send(SYSID, 1, 3, m.MAV_MISSION_TYPE_MISSION)
        await gcs.until(of_type("MISSION_REQUEST_INT", seq=0))
        send_item(gcs, 0)
        await gcs.until(of_type("MISSION_REQUEST_INT", seq=1))
        send_item(gcs, 2)  # out of sequence: ignored, item 1 asked for again
        await gcs.until(of_type("MISSION_REQUEST_INT", seq=1))
        send_item(gcs, 1)
        await gcs.until(of_type("MISSION_REQUEST_INT", seq=2))
        send_item(gcs, 2)
        acks = await gcs.until(of_type("MISSION_ACK"))
        assert acks[-1].type == m.MAV_MISSION_ACCEPTED

        gcs.command(m.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        await gcs.ack(m.MAV_CMD_COMPONENT_ARM_DISARM)
        gcs.command(m.MAV_CMD_MISSION_START)
        ack, _ = await gcs.ack(m.MAV_CMD_MISSION_START)
        assert ack.result == m.MAV_RESULT_ACCEPTED
        seen = await gcs.until(of_type("MISSION_ITEM_REACHED", seq=2), timeout=6.0)
        assert [x.seq for x in seen if x.get_type() == "MISSION_ITEM_REACHED"] == [0, 1, 2]
        assert "MISSION" in {px4_mode(x) for x in seen if x.get_type() == "HEARTBEAT"}
        assert any(x.get_type() == "MISSION_CURRENT" and x.seq == 1 for x in seen)
        state = rig.vehicle.state()
        assert state.landed
        assert haversine_m(state.position, WAYPOINT) < 3.0
        done = await gcs.until(of_type("MISSION_CURRENT", mission_state=m.MISSION_STATE_COMPLETE))
        assert done[-1].total == 3


async def upload_mission(gcs: Gcs) -> None:
    gcs.mav.mission_count_send(SYSID, 1, len(MISSION), m.MAV_MISSION_TYPE_MISSION)
    for seq in range(len(MISSION)):
        await gcs.until(of_type("MISSION_REQUEST_INT", seq=seq))
        send_item(gcs, seq)
    acks = await gcs.until(of_type("MISSION_ACK"))
    assert acks[-1].type == m.MAV_MISSION_ACCEPTED


def set_mode(gcs: Gcs, main: int, sub: int = 0) -> None:
    gcs.command(m.MAV_CMD_DO_SET_MODE, m.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, main, sub)


async def test_a_ground_station_reads_the_mission_back_and_pauses_and_resumes_it_by_mode() -> None:
    auto, loiter, mission = 4, 3, 4  # PX4 main mode AUTO, sub modes LOITER and MISSION
    async with running_rig() as rig:
        gcs = rig.gcs
        await upload_mission(gcs)
        gcs.mav.mission_request_list_send(SYSID, 1, m.MAV_MISSION_TYPE_MISSION)
        assert (await gcs.until(of_type("MISSION_COUNT")))[-1].count == 3
        gcs.mav.mission_request_int_send(SYSID, 1, 1, m.MAV_MISSION_TYPE_MISSION)
        item = (await gcs.until(of_type("MISSION_ITEM_INT")))[-1]
        assert (item.seq, item.command) == (1, m.MAV_CMD_NAV_WAYPOINT)
        assert item.x == round(WAYPOINT.latitude * 1e7)

        gcs.command(m.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        await gcs.ack(m.MAV_CMD_COMPONENT_ARM_DISARM)
        set_mode(gcs, auto, mission)
        assert (await gcs.ack(m.MAV_CMD_DO_SET_MODE))[0].result == m.MAV_RESULT_ACCEPTED
        await gcs.until(of_type("MISSION_ITEM_REACHED", seq=0))  # took off, now on the way
        set_mode(gcs, auto, loiter)
        assert (await gcs.ack(m.MAV_CMD_DO_SET_MODE))[0].result == m.MAV_RESULT_ACCEPTED
        seen = await gcs.until(
            of_type("MISSION_CURRENT", seq=1, mission_state=m.MISSION_STATE_PAUSED)
        )
        assert [px4_mode(x) for x in seen if x.get_type() == "HEARTBEAT"] == ["LOITER"]

        set_mode(gcs, auto, mission)
        assert (await gcs.ack(m.MAV_CMD_DO_SET_MODE))[0].result == m.MAV_RESULT_ACCEPTED
        seen = await gcs.until(of_type("MISSION_ITEM_REACHED", seq=2), timeout=6.0)
        assert [x.seq for x in seen if x.get_type() == "MISSION_ITEM_REACHED"] == [1, 2]

        set_mode(gcs, 1)  # MANUAL: not flown by the simulator
        ack, before = await gcs.ack(m.MAV_CMD_DO_SET_MODE)
        assert ack.result == m.MAV_RESULT_DENIED
        assert any(x.get_type() == "STATUSTEXT" for x in before)


async def test_a_silent_uploader_is_asked_again_then_cancelled() -> None:
    async with running_rig() as rig:
        rig.gcs.mav.mission_count_send(SYSID, 1, 2, m.MAV_MISSION_TYPE_MISSION)
        seen = await rig.gcs.until(of_type("MISSION_ACK"), timeout=5.0)
        requests = [x.seq for x in seen if x.get_type() == "MISSION_REQUEST_INT"]
        assert requests == [0] * 6  # the first request and five more, 0.5 s apart
        assert seen[-1].type == m.MAV_MISSION_OPERATION_CANCELLED


# --- (4) malformed input ---------------------------------------------------------------------


async def test_malformed_input_is_dropped_and_counted_and_the_link_keeps_working() -> None:
    async with running_rig() as rig:
        gcs, stats = rig.gcs, rig.endpoint.stats
        await gcs.until(of_type("HEARTBEAT"))
        grab = gcs.mav.command_long_encode(
            SYSID, 1, m.MAV_CMD_DO_GRIPPER, 0, 1, m.GRIPPER_ACTION_GRAB, 0.5, 0, 0, 0, 0
        )
        arm = gcs.mav.command_long_encode(
            SYSID, 1, m.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0
        )
        other = gcs.mav.command_long_encode(
            SYSID + 1, 1, m.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0
        )
        stray_item = gcs.mav.mission_item_int_encode(
            SYSID, 1, 4, 6, 16, 0, 1, 0, 0, 0, 0, 1, 1, 10.0, 0
        )

        gcs.raw(bytes(range(1, 250, 3)))  # garbage, without a MAVLink start marker (0xFD, 0xFE)
        gcs.raw(gcs.pack(arm)[:-5])  # truncated
        corrupt = bytearray(gcs.pack(arm))
        corrupt[-1] ^= 0xFF  # bad CRC
        gcs.raw(bytes(corrupt))
        gcs.raw(gcs.pack(arm, mavlink1=True))
        gcs.raw(gcs.pack(other))  # for another system
        twice = gcs.pack(grab)
        gcs.raw(twice)
        gcs.raw(twice)  # a duplicated datagram: same sequence number
        gcs.raw(gcs.pack(stray_item))  # a mission item with no upload under way
        gcs.command(m.MAV_CMD_REQUEST_MESSAGE, m.MAVLINK_MSG_ID_HOME_POSITION)
        ack, before = await gcs.ack(m.MAV_CMD_REQUEST_MESSAGE)

        assert ack.result == m.MAV_RESULT_ACCEPTED
        assert [x.command for x in before if x.get_type() == "COMMAND_ACK"] == [
            m.MAV_CMD_DO_GRIPPER
        ]
        await gcs.until(of_type("HOME_POSITION"))
        state = rig.vehicle.state()
        assert not state.armed  # neither the broken, nor the MAVLink 1, nor the foreign arm ran
        assert state.payload_kg == 0.5  # the duplicate did not run
        assert stats.bad >= 2
        assert (stats.truncated, stats.mavlink1, stats.wrong_target) == (1, 1, 1)
        assert (stats.out_of_order, stats.unexpected) == (1, 1)


# --- (5) message intervals -------------------------------------------------------------------


async def test_set_message_interval_stops_and_restores_a_message() -> None:
    async with running_rig() as rig:
        gcs = rig.gcs
        await gcs.until(of_type("GLOBAL_POSITION_INT"))
        gcs.command(m.MAV_CMD_SET_MESSAGE_INTERVAL, m.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, -1)
        ack, _ = await gcs.ack(m.MAV_CMD_SET_MESSAGE_INTERVAL)
        assert ack.result == m.MAV_RESULT_ACCEPTED
        later = {x.get_type() for x in await gcs.during(1.2)}
        assert "GLOBAL_POSITION_INT" not in later
        assert {"HEARTBEAT", "BATTERY_STATUS"} <= later  # the rest of the stream goes on

        gcs.command(m.MAV_CMD_SET_MESSAGE_INTERVAL, m.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, 0)
        await gcs.ack(m.MAV_CMD_SET_MESSAGE_INTERVAL)
        await gcs.until(of_type("GLOBAL_POSITION_INT"))


async def test_a_rate_multiplier_speeds_up_the_stream_but_not_the_heartbeat() -> None:
    async with running_rig(rate_multiplier=10.0) as rig:
        seen = [x.get_type() for x in await rig.gcs.during(0.5)]
        assert seen.count("GLOBAL_POSITION_INT") >= 15  # every 10 ms (ticks) instead of 100 ms
        assert seen.count("HEARTBEAT") <= 2  # the greeting's, perhaps one more


# --- (6) failsafes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "status", "severity", "text", "mode"),
    [
        (Failure("battery", "drop", value=15.0), m.MAV_STATE_CRITICAL, m.MAV_SEVERITY_CRITICAL,
         "failsafe_battery: battery_low", "RTL"),
        (Failure("motor", "off"), m.MAV_STATE_EMERGENCY, m.MAV_SEVERITY_EMERGENCY,
         "failsafe_motor: motor", "LAND"),
    ],
)  # fmt: skip
async def test_a_failsafe_is_named_before_the_heartbeat_that_shows_it_and_repeated(
    failure: Failure, status: int, severity: int, text: str, mode: str
) -> None:
    async with running_rig() as rig:
        await arm_and_take_off(rig)
        rig.vehicle.inject(failure)
        seen = await rig.gcs.until(of_type("HEARTBEAT", system_status=status))
        assert px4_mode(seen[-1]) == mode
        assert texts_since_previous_heartbeat(seen) == [(severity, text)]
        again = await rig.gcs.until(of_type("HEARTBEAT"))  # the next one
        assert again[-1].system_status == status
        assert texts_since_previous_heartbeat(again) == [(severity, text)]


def texts_since_previous_heartbeat(seen: list[Msg]) -> list[tuple[int, str]]:
    """The STATUSTEXTs between the last heartbeat of `seen` and the one before it."""
    beats = [i for i, x in enumerate(seen[:-1]) if x.get_type() == "HEARTBEAT"]
    between = seen[beats[-1] + 1 if beats else 0 : -1]
    return [(x.severity, x.text) for x in between if x.get_type() == "STATUSTEXT"]


async def test_a_silent_companion_lets_the_vehicles_link_failsafe_return_it() -> None:
    async with running_rig(companion_window_s=0.3) as rig:
        companion = Gcs(rig.endpoint.port, component=m.MAV_COMP_ID_ONBOARD_COMPUTER)
        try:
            companion.heartbeat()
            await arm_and_take_off(rig)
            assert rig.vehicle.last_heartbeat_s is not None  # heard by the vehicle
            # The companion says nothing more: 0.3 s real, then 10 s simulated, and PX4 returns.
            seen = await rig.gcs.until(of_type("HEARTBEAT", system_status=m.MAV_STATE_CRITICAL))
            assert px4_mode(seen[-1]) == "RTL"
            assert ("failsafe_link: companion_link") in {
                x.text for x in seen if x.get_type() == "STATUSTEXT"
            }
        finally:
            companion.close()


# --- (7) close -------------------------------------------------------------------------------


async def test_close_stops_the_stream() -> None:
    async with running_rig() as rig:
        await rig.gcs.until(of_type("HEARTBEAT"))
        rig.endpoint.close()
        rig.gcs.drain()  # what was sent before the close
        assert await rig.gcs.during(1.2) == []  # a heartbeat would have come
        rig.gcs.command(m.MAV_CMD_COMPONENT_ARM_DISARM, 1)  # and nothing is heard any more
        assert await rig.gcs.during(0.3) == []
        assert not rig.vehicle.state().armed


async def test_serve_fleet_gives_each_vehicle_its_own_port_and_system_id() -> None:
    clock = ScaledClock(SPEEDUP)
    simulator = Simulator(clock)
    vehicles = [a_sim_vehicle(vehicle_id=f"d-{i}") for i in (1, 2)]
    endpoints = await serve_fleet(vehicles, clock, simulator, base_port=0)
    task = asyncio.create_task(simulator.run())
    stations = [Gcs(e.port) for e in endpoints]
    try:
        assert set(simulator.vehicles) == {"d-1", "d-2"}
        for station in stations:
            station.heartbeat()
        for i, station in enumerate(stations, start=1):
            beat = await station.until(of_type("HEARTBEAT"))
            assert beat[-1].get_srcSystem() == i
    finally:
        for station in stations:
            station.close()
        for endpoint in endpoints:
            endpoint.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
