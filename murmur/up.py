"""`murmur up`: the whole system in one process, on one simulated clock.

The embedded broker (or another one), the three cloud services each with its own
connection and database, N simulated drones each with its own agent, connection and
database, and a generator of delivery requests in the fleet's area. It watches the
deliveries' retained status like any client and reports how they ended.
"""

import asyncio
import contextlib
import math
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.amqtt_server import EmbeddedBroker
from broker.url import BrokerUrl
from cloud.scheduler.service import SchedulerSettings
from cloud.services import SERVICE_NAMES, CloudSettings, Service, build_service
from contracts.events import DeliveryRequested, DeliveryStatusChanged, DroneAssigned
from contracts.ids import Location, PackageSize
from contracts.states import TERMINAL_STAGES, DeliveryStage
from drone_agent.main import FleetConfig, build_agent, spread_homes
from drone_agent.service import DroneAgent
from drone_agent.sim_adapter import TickRouter
from firmware_sim.clock import ScaledClock
from firmware_sim.energy import EnergyModel
from firmware_sim.geo import random_within
from firmware_sim.ground_crew import GroundCrew
from firmware_sim.simulator import Simulator
from murmur.client import Client, connect, delivery_request

REAL_TELEMETRY_HZ = 2.0
REAL_ANSWER_S = 2.0
REAL_TICK_S = 0.05
_DRAWS = 100
CONNECT_TIMEOUT_S = 30.0
STALE_PERIODS = 5  # telemetry periods without a report before the scheduler calls a drone stale


@dataclass(frozen=True)
class UpConfig:
    """What `murmur up` runs."""

    drones: int = 10
    deliveries: int = 0
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


def generate_requests(
    config: UpConfig, count: int, homes: list[Location], *, run: str
) -> list[DeliveryRequested]:
    """`count` seeded requests between points of the fleet's area.

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

    requests = []
    for i in range(count):
        for _ in range(_DRAWS):
            pickup, dropoff, weight_kg = somewhere(), somewhere(), round(rng.uniform(0.2, 2.0), 2)
            if servable(pickup, dropoff, weight_kg):
                break
        requests.append(
            delivery_request(
                pickup=pickup,
                dropoff=dropoff,
                weight_kg=weight_kg,
                size=rng.choice([PackageSize.SMALL, PackageSize.MEDIUM]),
                owner_id="murmur-up",
                delivery_id=f"up-{run}-{i:05d}",
            )
        )
    return requests


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
) -> dict[str, Any]:
    """Run the system; with `until_idle`, return the summary once every delivery is terminal."""
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
                    requests = generate_requests(config, config.deliveries, homes, run=run)
                    summary = await _drive(
                        config,
                        requests,
                        url,
                        until_idle=until_idle,
                        on_status=on_status,
                        on_ready=on_ready,
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
        build_agent(fleet, drone_id, home=home, clock=clock, router=router, snapshot=False)
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
            broker=url,
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
    requests: list[DeliveryRequested],
    url: BrokerUrl,
    *,
    until_idle: bool,
    on_status: Callable[[DeliveryStatusChanged], None],
    on_ready: Callable[[BrokerUrl], None],
) -> dict[str, Any]:
    tally = Tally()
    async with connect(url) as client:
        await client.watch_status()
        await client.subscribe("deliveries/+/assigned")
        watcher = asyncio.create_task(_watch(client, tally, on_status))
        try:
            on_ready(url)
            for request in requests:
                tally.requested_at[request.delivery_id] = time.monotonic()
                await client.request(request)
            if not until_idle:
                await asyncio.Event().wait()  # until cancelled (Ctrl-C)
            while tally.terminal() < len(tally.requested_at):
                tally.changed.clear()
                await tally.changed.wait()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return tally.summary(broker=str(url), drones=config.drones)
