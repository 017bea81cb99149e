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
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.client import Client, connect
from bus.transport import open_transport
from bus.url import BrokerUrl
from contracts.events import DeliveryRequested, DeliveryStatusChanged, DroneAssigned
from contracts.ids import Location
from contracts.states import TERMINAL_STAGES, DeliveryStage
from drone_agent.wiring import DEFAULT_HOME
from flight_model.clock import ScaledClock
from world.fleet import scattered
from world.requests import request_stream
from world.system import LocalSystem, local_system

CONNECT_TIMEOUT_S = 30.0
CONSOLE_CATCH_UP_S = 5.0
# Something that watches the running system through the broker; it is told the prefix of this
# run's delivery ids, and may end once it has seen them all finish, or run until cancelled.
Observer = Callable[[BrokerUrl, str], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class UpConfig:
    """What `murmur up` runs."""

    drones: int = 10
    deliveries: int = 0
    demand_per_hour: float = 0.0  # continuous requests per simulated hour, after the batch
    speedup: float = 100.0
    seed: int = 1
    broker: BrokerUrl | None = None  # None: start the embedded broker
    home: Location = DEFAULT_HOME
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
    drones = scattered(config.home, config.drones, spread_km=config.spread_km, seed=config.seed)
    requests = request_stream(
        [drone.home for drone in drones.values()],
        center=config.home,
        spread_km=config.spread_km,
        seed=config.seed,
        id_prefix=run_prefix(run),
    )
    with contextlib.ExitStack() as stack:
        state_dir = config.state_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="murmur-up-"))
        )
        async with local_system(
            drones,
            state_dir=state_dir,
            clock=ScaledClock(config.speedup),
            broker=config.broker,
            # Throw-away state must not inherit a persistent session (and the messages
            # queued in it) from an earlier run on the same broker.
            session_suffix=None if config.state_dir else run,
            connect_timeout_s=CONNECT_TIMEOUT_S,
        ) as system:
            summary = await _drive(
                config,
                requests,
                system,
                run=run,
                until_idle=until_idle,
                on_status=on_status,
                on_ready=on_ready,
                console=console,
            )
    summary["elapsed_s"] = round(time.monotonic() - started, 3)
    return summary


async def _drive(
    config: UpConfig,
    requests: Iterator[DeliveryRequested],
    system: LocalSystem,
    *,
    run: str,
    until_idle: bool,
    on_status: Callable[[DeliveryStatusChanged], None],
    on_ready: Callable[[BrokerUrl], None],
    console: Observer | None,
) -> dict[str, Any]:
    tally, url = Tally(), system.url
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
                await _keep_requesting(config, requests, client, system.clock, tally)
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
