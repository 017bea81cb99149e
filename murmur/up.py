"""`murmur up`: the whole system in one process, on one simulated clock.

The embedded broker (or another one), the three cloud services each with its own
connection and database, N simulated drones each with its own agent, connection and
database, and a generator of delivery requests in the fleet's area. It watches the
deliveries' retained status like any client and reports how they ended.
"""

import asyncio
import contextlib
import itertools
import math
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.amqtt_server import EmbeddedBroker
from bus.client import Client, connect
from bus.transport import open_transport
from bus.url import BrokerUrl
from cloud.scheduler.service import SchedulerSettings
from cloud.services import SERVICE_NAMES, CloudSettings, Service, build_service
from contracts.events import DeliveryRequested, DeliveryStatusChanged, DroneAssigned
from contracts.ids import Location, PackageSize
from contracts.requests import delivery_request
from contracts.states import TERMINAL_STAGES, DeliveryStage
from drone_agent.main import FleetConfig, build_agent, simulated_fc, spread_homes
from drone_agent.service import DroneAgent
from drone_agent.sim_adapter import TickRouter
from firmware_sim.ground_crew import GroundCrew
from firmware_sim.simulator import Simulator
from flight_model.clock import ScaledClock
from flight_model.energy import EnergyModel
from flight_model.geo import random_within

REAL_TELEMETRY_HZ = 2.0
REAL_ANSWER_S = 2.0
REAL_TICK_S = 0.05
_DRAWS = 100
CONNECT_TIMEOUT_S = 30.0
CONSOLE_CATCH_UP_S = 5.0
# Something that watches the running system through the broker; it is told the prefix of this
# run's delivery ids, and may end once it has seen them all finish, or run until cancelled.
Observer = Callable[[BrokerUrl, str], Coroutine[Any, Any, None]]
STALE_PERIODS = 5  # telemetry periods without a report before the scheduler calls a drone stale


@dataclass(frozen=True)
class UpConfig:
    """What `murmur up` runs."""

    drones: int = 10
    deliveries: int = 0
    demand_per_hour: float = 0.0  # continuous requests per simulated hour, after the batch
    speedup: float = 100.0
    seed: int = 1
    broker: BrokerUrl | None = None  # None: start the embedded broker
    home: Location = field(default_factory=lambda: Location(latitude=47.3769, longitude=8.5417))
    spread_km: float = 2.0
    state_dir: Path | None = None  # None: a temporary directory, removed at exit


@dataclass
class Tally:
    """What the watcher saw of each delivery: latest status and when things happened."""

    requested_at: dict[str, float] = field(default_factory=dict)
    assigned_at: dict[str, float] = field(default_factory=dict)
    delivered_at: dict[str, float] = field(default_factory=dict)
    latest: dict[str, DeliveryStatusChanged] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def terminal(self) -> int:
        """How many of the requested deliveries reached a terminal stage."""
        return sum(
            1
            for delivery_id in self.requested_at
            if (s := self.latest.get(delivery_id)) and s.stage in TERMINAL_STAGES
        )

    def summary(self, *, broker: str, drones: int) -> dict[str, Any]:
        """The one JSON object `murmur up --until-idle --json` prints."""
        by_stage: dict[str, int] = {}
        for delivery_id in self.requested_at:
            status = self.latest.get(delivery_id)
            stage = status.stage.value if status else "Unknown"
            by_stage[stage] = by_stage.get(stage, 0) + 1
        return {
            "broker": broker,
            "drones": drones,
            "deliveries": {"total": len(self.requested_at), "by_stage": by_stage},
            "latency_s": {
                "request_to_assigned": _percentiles(self.requested_at, self.assigned_at),
                "request_to_delivered": _percentiles(self.requested_at, self.delivered_at),
            },
        }


def _percentiles(start: dict[str, float], end: dict[str, float]) -> dict[str, float | None]:
    spans = sorted(end[k] - start[k] for k in end if k in start)
    if not spans:
        return {"p50": None, "p99": None}
    p99 = spans[min(len(spans) - 1, math.ceil(0.99 * len(spans)) - 1)]
    return {"p50": round(statistics.median(spans), 4), "p99": round(p99, 4)}


def run_prefix(run: str) -> str:
    """The start of every delivery id of one run."""
    return f"up-{run}-"


def request_stream(
    config: UpConfig, homes: list[Location], *, run: str
) -> Iterator[DeliveryRequested]:
    """Seeded requests between points of the fleet's area, without end.

    Each is one a fully charged drone from one of `homes` can fly (redrawn otherwise):
    demand the fleet can serve.
    """
    rng = random.Random(config.seed)  # noqa: S311 - reproducible load, not crypto
    energy = EnergyModel()
    full_wh = energy.airframe.battery_wh

    def somewhere() -> Location:
        return random_within(rng, config.home, config.spread_km * 1000)

    def servable(pickup: Location, dropoff: Location, weight_kg: float) -> bool:
        return any(
            energy.feasible(
                energy_wh=full_wh,
                start=home,
                pickup=pickup,
                dropoff=dropoff,
                home=home,
                payload_kg=weight_kg,
            )
            for home in homes
        )

    for i in itertools.count():
        for _ in range(_DRAWS):
            pickup, dropoff, weight_kg = somewhere(), somewhere(), round(rng.uniform(0.2, 2.0), 2)
            if servable(pickup, dropoff, weight_kg):
                break
        yield delivery_request(
            pickup=pickup,
            dropoff=dropoff,
            weight_kg=weight_kg,
            size=rng.choice([PackageSize.SMALL, PackageSize.MEDIUM]),
            owner_id="murmur-up",
            delivery_id=f"{run_prefix(run)}{i:05d}",
        )


@contextlib.asynccontextmanager
async def _broker(config: UpConfig) -> AsyncIterator[BrokerUrl]:
    if config.broker is not None:
        yield config.broker
        return
    async with EmbeddedBroker() as embedded:
        yield BrokerUrl.parse(embedded.url)


async def _watch(
    client: Client, tally: Tally, on_status: Callable[[DeliveryStatusChanged], None]
) -> None:
    async for envelope in client.events():
        now = time.monotonic()
        data = envelope.data
        if isinstance(data, DroneAssigned):
            tally.assigned_at.setdefault(data.delivery_id, now)
        elif isinstance(data, DeliveryStatusChanged):
            known = tally.latest.get(data.delivery_id)
            if known is not None and known.version >= data.version:
                continue
            tally.latest[data.delivery_id] = data
            if data.stage is DeliveryStage.DELIVERED:
                tally.delivered_at.setdefault(data.delivery_id, now)
            on_status(data)
            tally.changed.set()


async def run_up(
    config: UpConfig,
    *,
    until_idle: bool,
    on_status: Callable[[DeliveryStatusChanged], None] = lambda _: None,
    on_ready: Callable[[BrokerUrl], None] = lambda _: None,
    console: Observer | None = None,
) -> dict[str, Any]:
    """Run the system; with `until_idle`, return the summary once every delivery is terminal.

    `console` watches the running system like any observer (the live view of `murmur up`).
    """
    started = time.monotonic()
    run = uuid.uuid4().hex[:8]  # ids unique per run: a shared broker keeps retained statuses
    with contextlib.ExitStack() as stack:
        state_dir = config.state_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="murmur-up-"))
        )
        async with _broker(config) as url:
            clock = ScaledClock(config.speedup)
            simulator, agents, homes = _fleet(config, url, state_dir, clock)
            services = _services(config, url, state_dir, clock, run)
            summary: dict[str, Any] = {}
            async with asyncio.TaskGroup() as tasks:
                background = [tasks.create_task(simulator.run(), name="simulator")]
                background += [tasks.create_task(s.run(), name=s.bus.component) for s in services]
                background += [tasks.create_task(a.run(), name="agent") for a in agents]
                try:
                    # Requests go out only once every part listens: a service that subscribes
                    # later never sees what was published before its first connection.
                    async with asyncio.timeout(CONNECT_TIMEOUT_S):
                        for bus in [*(s.bus for s in services), *(a.bus for a in agents)]:
                            await bus.connected.wait()
                    summary = await _drive(
                        config,
                        request_stream(config, homes, run=run),
                        url,
                        clock,
                        run=run,
                        until_idle=until_idle,
                        on_status=on_status,
                        on_ready=on_ready,
                        console=console,
                    )
                finally:
                    for task in background:
                        task.cancel()
    summary["elapsed_s"] = round(time.monotonic() - started, 3)
    return summary


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


def _fleet(
    config: UpConfig, url: BrokerUrl, state_dir: Path, clock: ScaledClock
) -> tuple[Simulator, list[DroneAgent], list[Location]]:
    """The simulator with its ground crew, and one agent per drone around the home."""
    simulator = Simulator(clock)
    router = TickRouter(simulator)
    simulator.on_tick(GroundCrew(clock))
    fleet = FleetConfig(
        broker=url,
        home=config.home,
        state_dir=state_dir / "drones",
        speedup=config.speedup,
        telemetry_hz=telemetry_hz_for(config.speedup),
    )
    ids = [f"d-{i:03d}" for i in range(1, config.drones + 1)]
    homes = spread_homes(config.home, len(ids), spread_km=config.spread_km, seed=config.seed)
    agents = [
        build_agent(
            fleet,
            drone_id,
            fc=simulated_fc(fleet, drone_id, home=home, clock=clock, router=router, snapshot=False),
            clock=clock,
        )
        for drone_id, home in zip(ids, homes, strict=True)
    ]
    return simulator, agents, homes


def _services(
    config: UpConfig, url: BrokerUrl, state_dir: Path, clock: ScaledClock, run: str
) -> list[Service]:
    """The three services, with timers in real-time budgets converted to simulated time."""
    cloud = CloudSettings(scheduler=scheduler_for(config.speedup))
    return [
        build_service(
            name,
            transport=open_transport(url),
            db_path=state_dir / f"{name}.db",
            clock=clock,
            settings=cloud,
            # Throw-away state must not inherit a persistent session (and the messages
            # queued in it) from an earlier run on the same broker.
            client_id=None if config.state_dir else f"murmur-{name}-{run}",
        )
        for name in SERVICE_NAMES
    ]


async def _drive(
    config: UpConfig,
    requests: Iterator[DeliveryRequested],
    url: BrokerUrl,
    clock: ScaledClock,
    *,
    run: str,
    until_idle: bool,
    on_status: Callable[[DeliveryStatusChanged], None],
    on_ready: Callable[[BrokerUrl], None],
    console: Observer | None,
) -> dict[str, Any]:
    tally = Tally()
    async with connect(open_transport(url), name="up") as client, asyncio.TaskGroup() as tasks:
        await client.subscribe(DeliveryStatusChanged, DroneAssigned)
        helpers = [tasks.create_task(_watch(client, tally, on_status))]
        if console is not None:
            helpers.append(tasks.create_task(console(url, run_prefix(run))))
        try:
            on_ready(url)
            for request in itertools.islice(requests, config.deliveries):
                tally.requested_at[request.delivery_id] = time.monotonic()
                await client.publish(request, correlationid=request.delivery_id)
            if config.demand_per_hour > 0:
                await _keep_requesting(config, requests, client, clock, tally)
            if not until_idle:
                await asyncio.Event().wait()  # until cancelled (Ctrl-C)
            while tally.terminal() < len(tally.requested_at):
                tally.changed.clear()
                await tally.changed.wait()
            if console is not None:
                # It hears the last statuses on its own connection, a moment after the tally;
                # it ends once it has drawn them (bounded: it must not hold up the summary).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CONSOLE_CATCH_UP_S):
                        await helpers[-1]
        finally:
            for helper in helpers:
                helper.cancel()
    return tally.summary(broker=str(url), drones=config.drones)


async def _keep_requesting(
    config: UpConfig,
    requests: Iterator[DeliveryRequested],
    client: Client,
    clock: ScaledClock,
    tally: Tally,
) -> None:
    """Requests as a Poisson process of `demand_per_hour` in simulated time, until cancelled."""
    rng = random.Random(config.seed + 1)  # noqa: S311 - reproducible load, not crypto
    mean_gap_s = 3600.0 / config.demand_per_hour
    for request in requests:
        await clock.sleep(rng.expovariate(1.0 / mean_gap_s))
        tally.requested_at[request.delivery_id] = time.monotonic()
        await client.publish(request, correlationid=request.delivery_id)
