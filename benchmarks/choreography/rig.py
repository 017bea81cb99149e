"""The running system a choreography section measures: services, fleet and the client.

Every part is built by `world.system.local_system`, as `murmur up` builds it: the Package,
Drone Scheduler and Delivery services, each with its own broker connection and SQLite file,
and real drone agents flying simulated flight controllers, with `murmur up`'s real-time budgets
(`telemetry_hz_for`, `scheduler_for`). Where each part runs is the placement:

- "subprocess" (the default): each service in a worker process of its own, as in production,
  and the fleet split over `fleet_processes` workers, like as many `murmur sim` (or in this
  process, with 0), so that the cores are shared as they would be;
- "inprocess": everything in this event loop, as `murmur up` runs it.

The workers (`benchmarks.choreography.workers`) need one clock: each builds a `ScaledClock`
anchored on the same wall-clock instant (`ScaledClock.anchored`), so that "now" agrees.
"""

import asyncio
import contextlib
import dataclasses
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.choreography.settings import (
    CONNECT_TIMEOUT_S,
    HOME,
    SOURCE,
    Placement,
    Settings,
)
from benchmarks.instrument import instrument, request_bytes
from benchmarks.processes import Child, url_arg, workers
from benchmarks.stats import progress
from benchmarks.watch import Watch
from bus.client import Client
from bus.stats import BusStats
from bus.url import BrokerUrl
from cloud.services import SERVICE_NAMES
from contracts.events import (
    DeliveryStatusChanged,
    DroneAssigned,
    JobAccepted,
    JobOffered,
    TelemetryReported,
)
from contracts.ids import Location
from flight_model.clock import ScaledClock
from world.fleet import Drone, scattered
from world.requests import request_stream
from world.system import LocalSystem, local_system, telemetry_hz_for

if TYPE_CHECKING:
    from contracts import Event

_WORKER = ("-m", "benchmarks.choreography")  # a service or a fleet shard (`workers.main`)


# --- the services ----------------------------------------------------------------------------


class Services:
    """The three services, wherever they run; `stats` reads their bus counters."""

    # CPU seconds each service process had used at the last `stats` (subprocesses only).
    cpu_s: dict[str, float]

    async def stats(self) -> dict[str, BusStats]:
        """Each service's counters now."""
        raise NotImplementedError


@dataclass
class InProcessServices(Services):
    """The services in the benchmark's own event loop, as `murmur up` runs them."""

    system: LocalSystem
    cpu_s: dict[str, float] = field(default_factory=dict)

    async def stats(self) -> dict[str, BusStats]:
        """Each service's counters now."""
        return {n: dataclasses.replace(s.bus.stats) for n, s in self.system.services.items()}


@dataclass
class SubprocessServices(Services):
    """One process per service (`python -m benchmarks.choreography --worker NAME`)."""

    children: dict[str, Child]
    cpu_s: dict[str, float] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def stats(self) -> dict[str, BusStats]:
        """Each service's counters now, asked over its stdin."""
        async with self._lock:
            for child in self.children.values():
                await child.send("stats")
            result = {}
            for name, child in self.children.items():
                line = await child.read_json()
                known = {f.name for f in dataclasses.fields(BusStats)}
                result[name] = BusStats(**{k: v for k, v in line["stats"].items() if k in known})
                self.cpu_s[name] = line["cpu_s"]
            return result


def local_part(
    url: BrokerUrl,
    state_dir: Path,
    clock: ScaledClock,
    run: str,
    drones: dict[str, Drone],
    *,
    services: Sequence[str],
    tick_s: float | None = None,
) -> contextlib.AbstractAsyncContextManager[LocalSystem]:
    """The part of the system that runs in this process, connected, for the block.

    All of it (in-process placement), one service (a service worker) or drones only (a fleet
    shard, or the fleet beside service workers); each service's session is the run's own.
    """
    return local_system(
        drones,
        state_dir=state_dir,
        clock=clock,
        broker=url,
        services=services,
        session_suffix=run,
        connect_timeout_s=CONNECT_TIMEOUT_S,
        tick_s=tick_s,
    )


@contextlib.asynccontextmanager
async def _in_process(
    url: BrokerUrl,
    state_dir: Path,
    clock: ScaledClock,
    run: str,
    drones: dict[str, Drone],
    *,
    tick_s: float,
) -> AsyncIterator[Services]:
    """Services and fleet in this event loop, connected, until the block ends."""
    part = local_part(url, state_dir, clock, run, drones, services=SERVICE_NAMES, tick_s=tick_s)
    async with part as system:
        yield InProcessServices(system)


@contextlib.asynccontextmanager
async def _subprocesses(
    url: BrokerUrl, state_dir: Path, speedup: float, anchor: float, run: str
) -> AsyncIterator[Services]:
    """A worker process per service, each connected, until the block ends."""
    common = ["--url", url_arg(url), "--state-dir", str(state_dir), "--speedup", str(speedup)]
    common += ["--anchor", repr(anchor), "--run", run]
    commands_of = {name: [*_WORKER, "--worker", name, *common] for name in SERVICE_NAMES}
    async with workers(commands_of, state_dir, ready_within_s=CONNECT_TIMEOUT_S) as children:
        yield SubprocessServices(children)


# --- the fleet ---------------------------------------------------------------------------------


def fleet_drones(
    *, drones: int, spread_km: float, shard: tuple[int, int] = (0, 1)
) -> dict[str, Drone]:
    """All the drones, or those of shard i of n (the i-th of every n, as `shard` = (i, n))."""
    fleet = scattered(HOME, drones, spread_km=spread_km, seed=1)
    index, count = shard
    return {drone_id: fleet[drone_id] for drone_id in list(fleet)[index::count]}


@contextlib.asynccontextmanager
async def _fleet_processes(
    url: BrokerUrl,
    state_dir: Path,
    speedup: float,
    anchor: float,
    run: str,
    *,
    drones: int,
    spread_km: float,
    tick_s: float,
    shards: int,
) -> AsyncIterator[None]:
    """The fleet split over `shards` processes, like as many `murmur sim`, on one clock."""
    common = ["--url", url_arg(url), "--state-dir", str(state_dir), "--speedup", str(speedup)]
    common += ["--anchor", repr(anchor), "--drones", str(drones), "--spread-km", str(spread_km)]
    common += ["--tick-s", str(tick_s), "--shards", str(shards), "--run", run]
    commands_of = {
        f"fleet-{i}": [*_WORKER, "--fleet-shard", str(i), *common] for i in range(shards)
    }
    # Each says it is ready once every agent of its shard is connected.
    async with workers(commands_of, state_dir, ready_within_s=CONNECT_TIMEOUT_S):
        yield


# --- the client --------------------------------------------------------------------------------


def _instrument(
    url: BrokerUrl, run: str, watch: Watch, *, statuses: bool
) -> contextlib.AbstractAsyncContextManager[Client]:
    """The benchmark's client: publishes the requests and watches what comes back.

    Statuses only when `Delivered` is waited for: each subscription to them brings every
    retained status on the broker (amqtt sends them all before its SUBACK).
    """
    if os.environ.get("BENCH_DEBUG"):
        watch.trace = {}
    watched: list[type[Event]] = [DroneAssigned, JobOffered, JobAccepted]  # job updates: one topic
    watched += [DeliveryStatusChanged] if statuses else []
    return instrument(url, run, watch.see, *watched)


def requests(homes: list[Location], run: str, *, spread_km: float) -> Iterator[tuple[str, bytes]]:
    """(delivery id, wire bytes) of seeded, servable requests: built before they are timed."""
    stream = request_stream(
        homes, center=HOME, spread_km=spread_km, seed=1, id_prefix=f"bench-{run}-"
    )
    for request in stream:
        yield request.delivery_id, request_bytes(request, source=SOURCE)


# --- one running system ------------------------------------------------------------------------


@dataclass
class Rig:
    """A running system: services, fleet, and the benchmark's client."""

    client: Client
    services: Services
    homes: list[Location]  # of every drone, wherever the fleet runs
    watch: Watch
    run: str
    spread_km: float


@contextlib.asynccontextmanager
async def rig(
    url: BrokerUrl,
    settings: Settings,
    placement: Placement,
    *,
    drones: int,
    spread_km: float,
    statuses: bool = False,
) -> AsyncIterator[Rig]:
    """`drones` drones within `spread_km` and the services, every drone reporting, for the block.

    `statuses`: the client also watches every delivery's status (for `Delivered`).
    """
    speedup, tick_s = settings.speedup, settings.sim_tick_s
    fleet_processes = settings.fleet_processes_for(placement)
    run = uuid.uuid4().hex[:8]
    anchor = time.time()
    clock = ScaledClock.anchored(speedup, datetime.fromtimestamp(anchor, UTC))
    with tempfile.TemporaryDirectory(prefix="murmur-bench-chor-") as tmp:
        state_dir = Path(tmp)
        fleet = fleet_drones(drones=drones, spread_km=spread_km)
        fleet_cm: contextlib.AbstractAsyncContextManager[object]
        if placement == "inprocess":
            services_cm = _in_process(url, state_dir, clock, run, fleet, tick_s=tick_s)
            fleet_cm = contextlib.nullcontext()  # it runs in the system of `_in_process`
        else:
            services_cm = _subprocesses(url, state_dir, speedup, anchor, run)
            fleet_cm = (
                _fleet_processes(
                    url,
                    state_dir,
                    speedup,
                    anchor,
                    run,
                    drones=drones,
                    spread_km=spread_km,
                    tick_s=tick_s,
                    shards=fleet_processes,
                )
                if fleet_processes > 0
                else local_part(url, state_dir, clock, run, fleet, services=(), tick_s=tick_s)
            )
        watch = Watch()
        async with (
            services_cm as services,
            _instrument(url, run, watch, statuses=statuses) as client,
            instrument(url, f"{run}-telemetry", watch.see, TelemetryReported),
            fleet_cm,
        ):
            # Every drone reporting, then a few more periods so the scheduler has seen each
            # drone's retained state and fresh telemetry.
            if not await watch.until(
                lambda: len(watch.telemetry_from) >= drones, CONNECT_TIMEOUT_S
            ):
                msg = f"only {len(watch.telemetry_from)} of {drones} drones report"
                raise RuntimeError(msg)
            await asyncio.sleep(3 / telemetry_hz_for(speedup) / speedup)
            where = f"{fleet_processes} processes" if fleet_processes else "the benchmark process"
            progress(f"{drones} drones ready in {where}, services {placement}")
            homes = [drone.home for drone in fleet.values()]
            yield Rig(client, services, homes, watch, run, spread_km)
