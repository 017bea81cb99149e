"""One builder of the whole local system: a broker, the three services and a simulated fleet.

`murmur up`, the end-to-end tests and the choreography benchmark (the whole system in one
process, or one service or one shard of the fleet per process) run the system this way: every
part with its own broker connection and SQLite file, as in production, on one simulated clock.
A speed-up compresses flight, not the network or the CPU, so the timers are real-time budgets
converted to simulated time (`telemetry_hz_for`, `scheduler_for`; see
docs/choreography.md, "Time").
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broker.amqtt_server import EmbeddedBroker
from bus.transport import open_transport
from bus.url import BrokerUrl
from cloud.scheduler.service import SchedulerSettings
from cloud.services import SERVICE_NAMES, CloudSettings, Service, build_service
from drone_agent.wiring import FleetConfig
from flight_model.clock import ScaledClock
from world.fleet import Drone, Fleet, VehicleLink, simulated_fleet

REAL_TELEMETRY_HZ = 2.0
# A drone has the production default (`--offer-timeout 10`) of real seconds to answer, however
# fast the simulated clock runs. Everything here shares one event loop on a machine that is
# often busy: at 2 s, beside two CPU hogs, accepts arrived after their offers had expired and
# been offered to another drone, and deliveries were flown twice (the race of
# docs/choreography.md, closed in the protocol by issue 18).
REAL_ANSWER_S = 10.0
REAL_TICK_S = 0.05
STALE_PERIODS = 5  # telemetry periods without a report before the scheduler calls a drone stale


def telemetry_hz_for(speedup: float) -> float:
    """Telemetry per simulated second that makes `REAL_TELEMETRY_HZ` per real second.

    At a speed-up of 100 a 1 Hz simulated rate would put 100 times a real fleet's load on
    the broker.
    """
    return min(1.0, REAL_TELEMETRY_HZ / speedup)


def scheduler_for(speedup: float) -> SchedulerSettings:
    """The scheduler's timers: real-time budgets converted to simulated seconds.

    An answer takes a few real milliseconds, which is seconds of simulated time.
    """
    return SchedulerSettings(
        stale_after_s=STALE_PERIODS / telemetry_hz_for(speedup),
        offer_timeout_s=max(10.0, REAL_ANSWER_S * speedup),
        tick_s=max(1.0, REAL_TICK_S * speedup),
    )


@dataclass
class LocalSystem:
    """A running system; services can be stopped and started again by name."""

    url: BrokerUrl
    clock: ScaledClock
    fleet: Fleet
    state_dir: Path
    settings: CloudSettings
    services: dict[str, Service] = field(default_factory=dict)
    session_suffix: str | None = None
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _group: asyncio.TaskGroup | None = None

    def start(self, name: str) -> Service:
        """Start (or restart) a service on its own database file."""
        assert self._group is not None  # noqa: S101 - only a running system starts services
        suffix = self.session_suffix
        service = build_service(
            name,
            transport=open_transport(self.url),
            db_path=self.state_dir / f"{name}.db",
            clock=self.clock,
            settings=self.settings,
            client_id=None if suffix is None else f"murmur-{name}-{suffix}",
        )
        self.services[name] = service
        self._tasks[name] = self._group.create_task(service.run(), name=name)
        return service

    async def stop(self, name: str) -> None:
        """Stop a service cleanly; its persistent session keeps queueing for it."""
        task = self._tasks.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def ready(self) -> None:
        """Return once every service and every drone is connected."""
        for service in self.services.values():
            await service.bus.connected.wait()
        await self.fleet.ready()


@contextlib.asynccontextmanager
async def local_system(
    drones: Mapping[str, Drone],
    *,
    state_dir: Path,
    clock: ScaledClock,
    broker: BrokerUrl | None = None,
    services: Sequence[str] = SERVICE_NAMES,
    scheduler: SchedulerSettings | None = None,
    link: VehicleLink = "sim",
    session_suffix: str | None = None,
    connect_timeout_s: float = 30.0,
    tick_s: float | None = None,
) -> AsyncIterator[LocalSystem]:
    """Broker, services and fleet running for the block, every part connected before it.

    Args:
        drones: the simulated fleet.
        state_dir: every database: `{service}.db`, and `drones/` for the agents.
        clock: the one clock of services, agents and simulator.
        broker: a running broker; None starts the embedded one for the block.
        services: which services run (all three by default).
        scheduler: the scheduler's timers; `scheduler_for(clock.speedup)` by default.
        link: how the agents reach their vehicles (in process, or over MAVLink).
        session_suffix: appended to each service's client id, so a throw-away state does not
            inherit a persistent session, and what was queued in it, from an earlier run.
        connect_timeout_s: the bound on connecting everything.
        tick_s: simulated seconds between the simulator's rounds (`world.fleet.physics_tick_for`
            the clock's speed-up if None).

    Raises:
        TimeoutError: not every part connected within `connect_timeout_s`.
    """
    settings = CloudSettings(scheduler=scheduler or scheduler_for(clock.speedup))
    async with contextlib.AsyncExitStack() as stack:
        if broker is None:
            embedded = await stack.enter_async_context(EmbeddedBroker())
            broker = BrokerUrl.parse(embedded.url)
        config = FleetConfig(
            broker=broker,
            state_dir=state_dir / "drones",
            speedup=clock.speedup,
            telemetry_hz=telemetry_hz_for(clock.speedup),
        )
        fleet = await stack.enter_async_context(
            simulated_fleet(drones, config, clock, link=link, tick_s=tick_s)
        )
        system = LocalSystem(
            broker, clock, fleet, state_dir, settings, session_suffix=session_suffix
        )
        async with asyncio.TaskGroup() as group:
            system._group = group  # noqa: SLF001 - its own builder
            fleet_task = group.create_task(fleet.run(), name="fleet")
            try:
                for name in services:
                    system.start(name)
                # Requests go out only once every part listens: a service that subscribes
                # later never sees what was published before its first connection.
                async with asyncio.timeout(connect_timeout_s):
                    await system.ready()
                yield system
            finally:
                for name in list(system._tasks):  # noqa: SLF001
                    await system.stop(name)
                fleet_task.cancel()
