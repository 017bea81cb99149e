"""The whole choreography in the test's loop: three services and simulated drones.

Every part has its own broker connection and SQLite file, as in production; they share one
fast simulated clock, so a delivery of a few kilometres takes seconds.
"""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bus.bus import Bus
from bus.transport import open_transport
from bus.url import BrokerUrl
from cloud.scheduler.service import SchedulerSettings
from cloud.services import SERVICE_NAMES, CloudSettings, build_service
from contracts.ids import Location
from drone_agent.flight import FlightController
from drone_agent.main import FleetConfig, build_agent, mavlink_fleet
from drone_agent.service import DroneAgent
from drone_agent.sim_adapter import SimFlightController, TickRouter
from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.ground_crew import GroundCrew
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import ScaledClock
from flight_model.geo import from_enu
from murmur.up import scheduler_for, telemetry_hz_for

ROOT = "murmur/v1"
CENTER = Location(latitude=47.3769, longitude=8.5417)
SPEEDUP = 200.0
TELEMETRY_HZ = telemetry_hz_for(SPEEDUP)  # the same real-time budgets as `murmur up`


def near(east_m: float, north_m: float) -> Location:
    """A point this far from the centre of the test area."""
    return from_enu(CENTER, east_m, north_m)


def scheduler_settings(**overrides: float) -> SchedulerSettings:
    """The scheduler's timers of `murmur up` at this speed-up, with some changed."""
    return replace(scheduler_for(SPEEDUP), **overrides)


@dataclass
class Drone:
    """One simulated drone of a test fleet."""

    home: Location = field(default_factory=lambda: CENTER)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class System:
    """A running system; services can be stopped and started again by name."""

    url: str
    clock: ScaledClock
    agents: dict[str, DroneAgent]
    _tmp: Path
    _settings: CloudSettings
    buses: dict[str, Bus] = field(default_factory=dict)
    _services: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """Start (or restart) a service on its own database file."""
        service = build_service(
            name,
            transport=open_transport(self.url),
            db_path=self._tmp / f"{name}.db",
            clock=self.clock,
            settings=self._settings,
        )
        self.buses[name] = service.bus
        self._services[name] = asyncio.create_task(service.run(), name=name)

    async def stop(self, name: str) -> None:
        """Stop a service cleanly; its persistent session keeps queueing for it."""
        task = self._services.pop(name)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    async def stop_all(self) -> None:
        """Stop every running service."""
        for name in list(self._services):
            await self.stop(name)


@asynccontextmanager
async def running_system(
    url: str,
    tmp_path: Path,
    drones: dict[str, Drone],
    *,
    services: tuple[str, ...] = SERVICE_NAMES,
    scheduler: SchedulerSettings | None = None,
    link: str = "sim",
) -> AsyncIterator[System]:
    """Services and drones, connected before the block; everything stops after it.

    `link` is how each agent reaches its simulated vehicle: "sim" in process, "mavlink"
    through the vehicle's MAVLink endpoint and the agent's MAVLink adapter.
    """
    clock = ScaledClock(SPEEDUP)
    simulator = Simulator(clock)
    simulator.on_tick(GroundCrew(clock))
    config = FleetConfig(
        broker=BrokerUrl.parse(url),
        home=CENTER,
        state_dir=tmp_path / "drones",
        speedup=SPEEDUP,
        telemetry_hz=TELEMETRY_HZ,
    )
    async with AsyncExitStack() as stack:
        fcs = await stack.enter_async_context(_flight_controllers(drones, clock, simulator, link))
        agents = {
            drone_id: build_agent(config, drone_id, fc=fc, clock=clock)
            for drone_id, fc in fcs.items()
        }
        settings = CloudSettings(scheduler=scheduler or scheduler_settings())
        system = System(url, clock, agents, tmp_path, settings)
        background: list[asyncio.Task[None]] = [asyncio.create_task(simulator.run())]
        background += [asyncio.create_task(_quiet(agent.run())) for agent in agents.values()]
        for name in services:
            system.start(name)
        try:
            async with asyncio.timeout(10):
                for bus in [*system.buses.values(), *(a.bus for a in agents.values())]:
                    await bus.connected.wait()
                for agent in agents.values():
                    await agent.fc.ready.wait()
            yield system
        finally:
            await system.stop_all()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)


@asynccontextmanager
async def _flight_controllers(
    drones: dict[str, Drone], clock: ScaledClock, simulator: Simulator, link: str
) -> AsyncIterator[dict[str, FlightController]]:
    vehicles = [
        SimVehicle(
            vehicle_id=drone_id,
            home=drone.home,
            failures=FailurePlan(drone.failures, seed=7) if drone.failures else None,
        )
        for drone_id, drone in drones.items()
    ]
    if link == "mavlink":
        async with mavlink_fleet(vehicles, clock, simulator, base_port=0, speedup=SPEEDUP) as fcs:
            yield fcs
        return
    router = TickRouter(simulator)
    adapters = {v.vehicle_id: SimFlightController(v, clock) for v in vehicles}
    for adapter in adapters.values():
        router.add(adapter)
    yield dict(adapters)


async def _quiet(main: Coroutine[Any, Any, None]) -> None:
    with suppress(asyncio.CancelledError):
        await main
