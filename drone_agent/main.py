"""Wiring for `murmur agent` and `murmur sim`: validated settings in, running agents out."""

import asyncio
import contextlib
import math
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from bus.bus import Bus
from bus.store import open_database
from bus.transport import open_transport
from bus.url import BrokerUrl, BrokerUrlError
from contracts.ids import Location, parse_location
from drone_agent.flight import FlightController
from drone_agent.service import AgentSettings, DroneAgent, drone_presence
from drone_agent.sim_adapter import SimFlightController, TickRouter
from firmware_sim.failures import FailurePlan
from firmware_sim.ground_crew import GroundCrew
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock, ScaledClock
from flight_model.energy import EnergyModel
from flight_model.geo import random_within

_DRONE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ConfigError(ValueError):
    """Invalid settings; one line per problem, each naming the setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class FleetConfig:
    """Validated settings shared by `murmur agent` and `murmur sim`."""

    broker: BrokerUrl
    home: Location
    state_dir: Path
    speedup: float = 1.0
    max_payload_kg: float = 2.5
    telemetry_hz: float = 1.0
    fc: str = "sim"  # or "mavlink:CONNECTION" (docs/mavlink.md)
    sim_epoch: datetime | None = None  # see `ScaledClock.anchored`
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    """Drone id -> its own MQTT password (`murmur sim --password-dir`), instead of the URL's."""


def fleet_config(
    *,
    broker: str,
    home: str,
    state_dir: Path,
    speedup: float,
    max_payload_kg: float,
    telemetry_hz: float,
    drone_ids: list[str],
    fc: str = "sim",
    sim_epoch: datetime | None = None,
) -> FleetConfig:
    """Check every setting and report every problem at once."""
    problems: list[str] = []
    try:
        url = BrokerUrl.parse(broker)
    except BrokerUrlError as exc:
        problems.append(f"--broker: {exc}")
        url = BrokerUrl("invalid", 1)
    location = parse_location(home, "--home", problems)
    problems.extend(
        f"--drone-id: {drone_id!r} must be 1-64 letters, digits, '-' or '_' "
        "(it is one MQTT topic level)"
        for drone_id in drone_ids
        if not _DRONE_ID.match(drone_id)
    )
    problems.extend(
        f"{setting}: must be a positive number, got {value}"
        for setting, value in (
            ("--speedup", speedup),
            ("--max-payload-kg", max_payload_kg),
            ("--telemetry-hz", telemetry_hz),
        )
        if not (math.isfinite(value) and value > 0)
    )
    if telemetry_hz > 50:  # noqa: PLR2004
        problems.append(f"--telemetry-hz: at most 50, got {telemetry_hz}")
    problems.extend(_fc_problems(fc))
    if problems:
        raise ConfigError(problems)
    return FleetConfig(
        broker=url,
        home=location,
        state_dir=state_dir,
        speedup=speedup,
        max_payload_kg=max_payload_kg,
        telemetry_hz=telemetry_hz,
        fc=fc,
        sim_epoch=sim_epoch,
    )


def _fc_problems(fc: str) -> list[str]:
    kind, _, connection = fc.partition(":")
    if fc == "sim":
        return []
    if kind != "mavlink":
        return [f"--fc: {fc!r} is neither sim nor mavlink:CONNECTION"]
    from drone_agent.mavlink.connection import FORMS, parse_connection  # noqa: PLC0415

    if not connection:
        return [f"--fc: {fc!r} names no connection; expected mavlink: followed by {FORMS}"]
    try:
        parse_connection(connection)
    except ValueError as exc:
        return [f"--fc: {exc}"]
    return []


def simulated_fc(
    config: FleetConfig,
    drone_id: str,
    *,
    home: Location,
    clock: Clock,
    router: TickRouter,
    snapshot: bool,
    failures: FailurePlan | None = None,
) -> SimFlightController:
    """A simulated vehicle behind the in-process adapter, ticked through `router`.

    With `snapshot` the vehicle survives a restart of the agent, as a real one would.
    """
    config.state_dir.mkdir(parents=True, exist_ok=True)

    def create() -> SimVehicle:
        return SimVehicle(vehicle_id=drone_id, home=home, failures=failures)

    if snapshot:
        vehicle_file = config.state_dir / f"{drone_id}.vehicle.json"
        fc = SimFlightController.restore_or_create(vehicle_file, clock, create)
    else:
        fc = SimFlightController(create(), clock)
    router.add(fc)
    return fc


def build_agent(
    config: FleetConfig, drone_id: str, *, fc: FlightController, clock: Clock
) -> DroneAgent:
    """One agent with its own database, broker connection and last will, flying `fc`."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    bus = Bus(
        component=drone_id,
        transport=open_transport(drone_login(config, drone_id)),
        db=open_database(config.state_dir / f"{drone_id}.db"),
        client_id=f"drone-{drone_id}",
        source=f"/drones/{drone_id}",
        presence=drone_presence(drone_id),
    )
    settings = AgentSettings(
        drone_id=drone_id,
        max_payload_kg=config.max_payload_kg,
        telemetry_hz=config.telemetry_hz,
    )
    return DroneAgent(settings=settings, bus=bus, fc=fc, clock=clock, energy=EnergyModel())


def drone_login(config: FleetConfig, drone_id: str) -> BrokerUrl:
    """The broker URL a drone connects with: logged in as itself, unless the URL names a user.

    A drone's login is its drone id, which the ACL binds its topics to (docs/security.md); its
    password is its own if the fleet has one for it, else the URL's.
    """
    url = config.broker
    if url.username is None:
        url = replace(url, username=drone_id)
    if drone_id in config.passwords:
        url = replace(url, password=config.passwords[drone_id])
    return url


def spread_homes(center: Location, count: int, *, spread_km: float, seed: int) -> list[Location]:
    """`count` home positions scattered uniformly within `spread_km` of `center`, seeded."""
    rng = random.Random(seed)  # noqa: S311 - reproducible placement, not crypto
    return [random_within(rng, center, spread_km * 1000) for _ in range(count)]


async def run_fleet(
    config: FleetConfig,
    homes: dict[str, Location],
    *,
    snapshot: bool,
    mavlink_base_port: int | None = None,
) -> None:
    """Run one agent per drone until cancelled.

    With `config.fc` "sim", each flies a simulated vehicle in this process: through the
    in-process adapter, or with `mavlink_base_port` through its MAVLink endpoint (vehicle *i*
    on that port + *i*) and the agent's MAVLink adapter. With "mavlink:CONNECTION" (one
    drone) the agent flies the flight controller at the other end of that connection.
    """
    clock = ScaledClock.anchored(config.speedup, config.sim_epoch)
    simulator = Simulator(clock)
    # The people at the pads swap batteries, or a simulated fleet runs dry after a few jobs.
    simulator.on_tick(GroundCrew(clock))
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tasks:
        if config.fc.startswith("mavlink:"):
            from drone_agent.mavlink import MavlinkFlightController  # noqa: PLC0415

            connection = config.fc.removeprefix("mavlink:")
            fcs: dict[str, FlightController] = {
                drone_id: MavlinkFlightController(connection, clock) for drone_id in homes
            }
        elif mavlink_base_port is not None:
            fcs = await stack.enter_async_context(
                mavlink_fleet(
                    homes, clock, simulator, base_port=mavlink_base_port, speedup=config.speedup
                )
            )
        else:
            router = TickRouter(simulator)
            fcs = {
                drone_id: simulated_fc(
                    config, drone_id, home=home, clock=clock, router=router, snapshot=snapshot
                )
                for drone_id, home in homes.items()
            }
        if simulator.vehicles:
            tasks.create_task(simulator.run(), name="simulator")
        for drone_id, fc in fcs.items():
            agent = build_agent(config, drone_id, fc=fc, clock=clock)
            tasks.create_task(agent.run(), name=f"agent.{drone_id}")


@contextlib.asynccontextmanager
async def mavlink_fleet(
    vehicles: dict[str, Location] | list[SimVehicle],
    clock: Clock,
    simulator: Simulator,
    *,
    base_port: int,
    speedup: float,
) -> AsyncIterator[dict[str, FlightController]]:
    """Simulated vehicles behind MAVLink endpoints, and a MAVLink adapter for each.

    `vehicles` are made at their homes when given as drone id -> home. With `base_port` 0
    every endpoint takes a free port. MAVLink rates are real time, so under a speed-up the
    endpoints stream faster, keeping each report within five nominal intervals of simulated
    time: at x200 a battery report 0.5 s (real) old would be 100 s of flight old.
    """
    from drone_agent.mavlink import MavlinkFlightController, UdpOut  # noqa: PLC0415
    from firmware_sim.mavlink import serve_fleet  # noqa: PLC0415

    if isinstance(vehicles, dict):
        vehicles = [SimVehicle(vehicle_id=d, home=home) for d, home in vehicles.items()]
    endpoints = await serve_fleet(
        vehicles, clock, simulator, base_port=base_port, rate_multiplier=max(1.0, speedup / 5)
    )
    try:
        yield {
            e.vehicle.vehicle_id: MavlinkFlightController(UdpOut("127.0.0.1", e.port), clock)
            for e in endpoints
        }
    finally:
        for endpoint in endpoints:
            endpoint.close()
