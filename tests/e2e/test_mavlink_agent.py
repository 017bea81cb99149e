"""The agent on MAVLink: losing its flight controller, and `murmur sim --mavlink` / `agent --fc`."""

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bus.url import BrokerUrl
from contracts.events import (
    Availability,
    DroneEvent,
    DroneEventKind,
    DroneState,
    JobRejected,
    JobRejectionReason,
)
from drone_agent.mavlink import MavlinkFlightController, UdpOut
from drone_agent.wiring import FleetConfig, build_agent
from firmware_sim.mavlink import MavlinkEndpoint, serve_fleet
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import ScaledClock
from flight_model.geo import haversine_m
from tests.brokers import TestBroker
from tests.e2e.test_agent import HOME, an_offer
from tests.e2e.test_cli import murmur
from tests.probe import Probe, probing, publish_events

os.environ.setdefault("MAVLINK20", "1")  # before mavutil is imported: MAVLink 2 from the start
from pymavlink import mavutil

pytestmark = pytest.mark.e2e

ROOT = "murmur/v1"
SPEEDUP = 100.0
WAIT_S = 20


@asynccontextmanager
async def one_drone_over_mavlink(
    url: str, tmp_path: Path, *, link_timeout_s: float
) -> AsyncIterator[MavlinkEndpoint]:
    """A simulated vehicle behind its endpoint, and an agent flying it with the MAVLink adapter."""
    clock = ScaledClock(SPEEDUP)
    simulator = Simulator(clock)
    [endpoint] = await serve_fleet(
        [SimVehicle(vehicle_id="d-1", home=HOME)], clock, simulator, base_port=0
    )
    fc = MavlinkFlightController(
        UdpOut("127.0.0.1", endpoint.port), clock, link_timeout_s=link_timeout_s
    )
    config = FleetConfig(broker=BrokerUrl.parse(url), home=HOME, state_dir=tmp_path)
    agent = build_agent(config, "d-1", fc=fc, clock=clock)
    tasks = [asyncio.create_task(simulator.run()), asyncio.create_task(agent.run())]
    try:
        async with asyncio.timeout(10):
            await agent.bus.connected.wait()
            await fc.ready.wait()
        yield endpoint
    finally:
        endpoint.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def idle(state: DroneState) -> bool:
    return state.availability is Availability.IDLE


async def test_losing_the_flight_controller_is_reported_and_offers_are_refused(
    broker: TestBroker, tmp_path: Path
) -> None:
    async with (
        probing(broker.url, [f"{ROOT}/drones/#"]) as probe,
        one_drone_over_mavlink(broker.url, tmp_path, link_timeout_s=0.5) as endpoint,
    ):
        await probe.wait_for(DroneState, idle, timeout=WAIT_S)
        mark = probe.mark()
        endpoint.close()  # the flight controller falls silent

        [lost] = await probe.wait_for(
            DroneEvent, lambda e: e.kind is DroneEventKind.FC_LINK_LOST, after=mark
        )
        await probe.wait_for(DroneState, lambda s: not idle(s), after=mark, timeout=WAIT_S)
        await publish_events(broker.url, [an_offer()])
        [rejected] = await probe.wait_for(JobRejected, after=mark, timeout=WAIT_S)

    assert lost.drone_id == "d-1"
    assert rejected.reason is JobRejectionReason.FC_NOT_READY


def free_udp_ports(count: int) -> int:
    """A base port with `count` free UDP ports after it (base + 1 .. base + count)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count > 65_535:
            continue
        sockets = []
        try:
            for port in range(base + 1, base + count + 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return base
    raise RuntimeError("no free UDP ports")


def ground_station_sees(port: int, types: set[str], timeout_s: float) -> dict[str, Any]:
    """Join a vehicle's endpoint as pymavlink's own ground station; the first of each type."""
    gcs = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", source_system=255)
    seen: dict[str, Any] = {}
    try:
        gcs.mav.heartbeat_send(
            mavutil.mavlink.MAV_TYPE_GCS, mavutil.mavlink.MAV_AUTOPILOT_INVALID, 0, 0, 0
        )
        while set(seen) < types:
            message = gcs.recv_match(type=sorted(types), blocking=True, timeout=timeout_s)
            if message is None:
                break
            seen.setdefault(message.get_type(), message)
    finally:
        gcs.close()
    return seen


@asynccontextmanager
async def until_interrupted(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await murmur(*args)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            await proc.communicate()


async def drones_idle(probe: Probe, ids: set[str]) -> dict[str, DroneState]:
    states = await probe.wait_for(
        DroneState, lambda s: s.drone_id in ids and idle(s), count=len(ids), timeout=WAIT_S
    )
    return {s.drone_id: s for s in states}


async def test_murmur_sim_mavlink_flies_agents_over_mavlink_and_lets_a_ground_station_join(
    broker: TestBroker,
) -> None:
    base = free_udp_ports(2)
    args = ("sim", "--drones", "2", "--mavlink", "--mavlink-port", str(base))
    async with (
        probing(broker.url, [f"{ROOT}/drones/+/state"]) as probe,
        until_interrupted(*args, "--broker", broker.url, "--speedup", "20"),
    ):
        states = await drones_idle(probe, {"d-001", "d-002"})
        seen = await asyncio.to_thread(
            ground_station_sees, base + 1, {"HEARTBEAT", "GLOBAL_POSITION_INT"}, 5.0
        )
    assert seen["HEARTBEAT"].autopilot == mavutil.mavlink.MAV_AUTOPILOT_PX4
    position = seen["GLOBAL_POSITION_INT"]
    reported = states["d-001"].position
    assert abs(position.lat / 1e7 - reported.latitude) < 1e-4
    assert abs(position.lon / 1e7 - reported.longitude) < 1e-4


async def test_murmur_agent_with_a_mavlink_fc_in_agent_toml_flies_a_px4_style_vehicle(
    broker: TestBroker, tmp_path: Path
) -> None:
    # PX4 SITL style: the vehicle pushes its stream to the agent's udpin port.
    agent_port = free_udp_ports(1) + 1
    clock = ScaledClock(1.0)
    simulator = Simulator(clock)
    [endpoint] = await serve_fleet(
        [SimVehicle(vehicle_id="d-7", home=HOME)],
        clock,
        simulator,
        base_port=0,
        push_to=("127.0.0.1", agent_port),
    )
    config = tmp_path / "agent.toml"
    config.write_text(
        f'drone_id = "d-7"\nbroker = "{broker.url}"\n'
        f'fc = "mavlink:udpin:127.0.0.1:{agent_port}"\nstate_dir = "{tmp_path / "state"}"\n'
    )
    ticking = asyncio.create_task(simulator.run())
    try:
        async with (
            probing(broker.url, [f"{ROOT}/drones/+/state"]) as probe,
            until_interrupted("agent", "--config", str(config)),
        ):
            [state] = (await drones_idle(probe, {"d-7"})).values()
    finally:
        endpoint.close()
        ticking.cancel()
        await asyncio.gather(ticking, return_exceptions=True)
    assert haversine_m(state.position, HOME) < 5
