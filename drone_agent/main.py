"""Wiring for `murmur agent` and `murmur sim`: validated settings in, running agents out."""

import asyncio
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from broker.bus import Bus
from broker.store import open_database
from broker.url import BrokerUrl, BrokerUrlError
from contracts.ids import Location, parse_location
from drone_agent.service import AgentSettings, DroneAgent, drone_presence
from drone_agent.sim_adapter import SimFlightController, TickRouter
from firmware_sim.clock import Clock, ScaledClock
from firmware_sim.energy import EnergyModel
from firmware_sim.failures import FailurePlan
from firmware_sim.geo import random_within
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle

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


def fleet_config(
    *,
    broker: str,
    home: str,
    state_dir: Path,
    speedup: float,
    max_payload_kg: float,
    telemetry_hz: float,
    drone_ids: list[str],
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
    if problems:
        raise ConfigError(problems)
    return FleetConfig(
        broker=url,
        home=location,
        state_dir=state_dir,
        speedup=speedup,
        max_payload_kg=max_payload_kg,
        telemetry_hz=telemetry_hz,
    )


def build_agent(
    config: FleetConfig,
    drone_id: str,
    *,
    home: Location,
    clock: Clock,
    router: TickRouter,
    snapshot: bool,
    failures: FailurePlan | None = None,
) -> DroneAgent:
    """One agent with its own database, broker connection, last will and simulated FC."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    vehicle_file = config.state_dir / f"{drone_id}.vehicle.json"

    def create() -> SimVehicle:
        return SimVehicle(vehicle_id=drone_id, home=home, failures=failures)

    if snapshot:
        fc = SimFlightController.restore_or_create(vehicle_file, clock, create)
    else:
        fc = SimFlightController(create(), clock)
    router.add(fc)
    bus = Bus(
        component=drone_id,
        url=config.broker,
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


def spread_homes(center: Location, count: int, *, spread_km: float, seed: int) -> list[Location]:
    """`count` home positions scattered uniformly within `spread_km` of `center`, seeded."""
    rng = random.Random(seed)  # noqa: S311 - reproducible placement, not crypto
    return [random_within(rng, center, spread_km * 1000) for _ in range(count)]


async def run_fleet(config: FleetConfig, homes: dict[str, Location], *, snapshot: bool) -> None:
    """Run the simulator and one agent per drone until cancelled."""
    clock = ScaledClock(config.speedup)
    simulator = Simulator(clock)
    router = TickRouter(simulator)
    agents = [
        build_agent(config, drone_id, home=home, clock=clock, router=router, snapshot=snapshot)
        for drone_id, home in homes.items()
    ]
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(simulator.run(), name="simulator")
        for agent in agents:
            tasks.create_task(agent.run(), name=f"agent.{agent.settings.drone_id}")
