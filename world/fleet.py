"""One builder of a simulated fleet: vehicles, their flight controllers and agents, on one clock.

Every simulated fleet is built here — `murmur sim`, `murmur agent --fc sim`, `murmur up`, the
benchmarks, the chaos run and the tests — so they fly the same way: one `Simulator` stepping
every vehicle, the ground crew swapping batteries at the pads, and each agent with its own
database, broker connection and last will (`drone_agent.wiring.build_agent`). An agent reaches
its vehicle in process (`link="sim"`, through one `TickRouter`) or over MAVLink (`link="mavlink"`,
through the vehicle's UDP endpoint and the agent's MAVLink adapter).
"""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bus.transport import Transport
from contracts.ids import Location
from drone_agent.flight import FlightController
from drone_agent.service import DroneAgent
from drone_agent.sim_adapter import SimFlightController, TickRouter
from drone_agent.wiring import DEFAULT_HOME, FleetConfig, build_agent
from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.ground_crew import GroundCrew
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock
from flight_model.geo import random_within

VehicleLink = Literal["sim", "mavlink"]
_FAILURE_SEED = 7
# The simulator's rounds, in real seconds at most this often: at a speed-up of 200 its default
# half-second step would be 400 rounds a second, and the physics alone took 70 % of the event
# loop that also runs every agent (and, in `murmur up` and the tests, the services and broker).
_REAL_ROUND_S = 0.02
_SIM_TICK_S = 0.5


def physics_tick_for(speedup: float) -> float:
    """Simulated seconds between the simulator's rounds: half a second, or 20 real ms.

    A round still steps the vehicles at most a second of simulated time at a time (as every
    round of a loop that fell behind already did), so the flight stays as fine as the physics
    allows; the event loop is only woken less often.
    """
    return max(_SIM_TICK_S, _REAL_ROUND_S * speedup)


@dataclass(frozen=True)
class Drone:
    """One simulated drone: where it lives, and what will go wrong with it."""

    home: Location = DEFAULT_HOME
    failures: Sequence[Failure] = ()


def drone_ids(count: int) -> list[str]:
    """The ids of a fleet of `count`: d-001, d-002, ..."""
    return [f"d-{i:03d}" for i in range(1, count + 1)]


def spread_homes(center: Location, count: int, *, spread_km: float, seed: int) -> list[Location]:
    """`count` home positions scattered uniformly within `spread_km` of `center`, seeded."""
    rng = random.Random(seed)  # noqa: S311 - reproducible placement, not crypto
    return [random_within(rng, center, spread_km * 1000) for _ in range(count)]


def scattered(center: Location, count: int, *, spread_km: float, seed: int) -> dict[str, Drone]:
    """A fleet of `count` drones with homes scattered around `center`, seeded."""
    homes = spread_homes(center, count, spread_km=spread_km, seed=seed)
    return {drone_id: Drone(home) for drone_id, home in zip(drone_ids(count), homes, strict=True)}


@dataclass
class Fleet:
    """A built fleet: `run()` flies it until cancelled, `ready()` waits until it is up."""

    simulator: Simulator
    agents: dict[str, DroneAgent]

    async def run(self) -> None:
        """Step the vehicles and run every agent, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            if self.simulator.vehicles:
                tasks.create_task(self.simulator.run(), name="simulator")
            for drone_id, agent in self.agents.items():
                tasks.create_task(agent.run(), name=f"agent.{drone_id}")

    async def ready(self) -> None:
        """Return once every agent is connected and has heard from its flight controller."""
        for agent in self.agents.values():
            await agent.bus.connected.wait()
            await agent.fc.ready.wait()


@contextlib.asynccontextmanager
async def simulated_fleet(
    drones: Mapping[str, Drone],
    config: FleetConfig,
    clock: Clock,
    *,
    link: VehicleLink = "sim",
    snapshot: bool = False,
    mavlink_base_port: int = 0,
    tick_s: float | None = None,
    transport_for: Callable[[str], Transport] | None = None,
) -> AsyncIterator[Fleet]:
    """The fleet of `drones`, built for the block (MAVLink endpoints are closed after it).

    Args:
        drones: drone id -> its home and planned failures.
        config: the agents' settings (`state_dir` holds each agent's database).
        clock: the one clock of simulator, vehicles and agents.
        link: how each agent reaches its vehicle: in process, or over MAVLink (UDP).
        snapshot: each vehicle is saved after every tick and restored at start, so it survives
            a restart of its agent as a real flight controller would (`murmur agent --fc sim`).
        mavlink_base_port: with `link="mavlink"`, vehicle *i*'s endpoint listens on this port
            + *i* (0: any free port).
        tick_s: simulated seconds between the simulator's rounds (`physics_tick_for` the
            clock's speed-up if None).
        transport_for: the transport of a drone's agent, instead of the broker of `config`.
    """
    simulator = Simulator(clock, tick_s=tick_s or physics_tick_for(clock.speedup))
    # The people at the pads swap batteries, or a simulated fleet runs dry after a few jobs.
    simulator.on_tick(GroundCrew(clock))
    vehicles = [
        SimVehicle(
            vehicle_id=drone_id,
            home=drone.home,
            failures=FailurePlan(list(drone.failures), seed=_FAILURE_SEED)
            if drone.failures
            else None,
        )
        for drone_id, drone in drones.items()
    ]
    async with contextlib.AsyncExitStack() as stack:
        if link == "mavlink":
            fcs = await stack.enter_async_context(
                mavlink_links(
                    vehicles,
                    clock,
                    simulator,
                    base_port=mavlink_base_port,
                    speedup=clock.speedup,
                )
            )
        else:
            fcs = _in_process_links(vehicles, config, clock, simulator, snapshot=snapshot)
        agents = {
            drone_id: build_agent(
                config,
                drone_id,
                fc=fc,
                clock=clock,
                transport=transport_for(drone_id) if transport_for is not None else None,
            )
            for drone_id, fc in fcs.items()
        }
        yield Fleet(simulator, agents)


def _in_process_links(
    vehicles: list[SimVehicle],
    config: FleetConfig,
    clock: Clock,
    simulator: Simulator,
    *,
    snapshot: bool,
) -> dict[str, FlightController]:
    router = TickRouter(simulator)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    fcs: dict[str, FlightController] = {}
    for vehicle in vehicles:
        if snapshot:
            vehicle_file = config.state_dir / f"{vehicle.vehicle_id}.vehicle.json"
            fc = SimFlightController.restore_or_create(vehicle_file, clock, _given(vehicle))
        else:
            fc = SimFlightController(vehicle, clock)
        router.add(fc)
        fcs[vehicle.vehicle_id] = fc
    return fcs


def _given(vehicle: SimVehicle) -> Callable[[], SimVehicle]:
    """The vehicle to fly when there is no snapshot to resume."""
    return lambda: vehicle


@contextlib.asynccontextmanager
async def mavlink_links(
    vehicles: list[SimVehicle],
    clock: Clock,
    simulator: Simulator,
    *,
    base_port: int,
    speedup: float,
) -> AsyncIterator[dict[str, FlightController]]:
    """Simulated vehicles behind MAVLink endpoints, and a MAVLink adapter for each.

    With `base_port` 0 every endpoint takes a free port. MAVLink rates are real time, so under
    a speed-up the endpoints are asked to stream faster (at x200 a battery report 0.5 s real old
    would be 100 s of flight old); `serve_fleet` bounds that by the fleet's frame budget.
    """
    from drone_agent.mavlink import MavlinkFlightController, UdpOut  # noqa: PLC0415 - pymavlink
    from firmware_sim.mavlink import serve_fleet  # noqa: PLC0415

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
