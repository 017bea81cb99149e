"""Choreography throughput and latency under load: the three services and a simulated fleet.

Run through `murmur bench` (`benchmarks.harness`), which gives it the broker and the raw baseline.

Everything is built as `murmur up` builds it (murmur/up.py): the Package, Drone Scheduler and
Delivery services, each with its own broker connection and SQLite file, and N real drone
agents flying simulated flight controllers on one simulated clock, with `murmur up`'s
real-time budgets (`telemetry_hz_for`, `scheduler_for`). Requests come from `request_stream`.

1. Throughput: a burst of K requests, all published at once. Deliveries per second to
   `DroneAssigned` and to `Delivered` (K divided by the time from the first request to the
   K-th event), and the events per second the three services handled and published over
   those windows (`BusStats`), with `ratio_to_raw` against a raw paho QoS 1 baseline.
   `events_per_s` is over the window to the K-th `DroneAssigned`, where the burst keeps the
   services busy; the window to `Delivered` is mostly flight time.
2. Latency under load: requests at a fixed offered rate (50/s), request -> `DroneAssigned`
   p50/p99 as a client sees it, timed from each request's scheduled send time (no
   coordinated omission); then the highest sustained rate (every request assigned, p99 under
   100 ms): stepped up from 50/s while it holds, or down from it until one does.

Where the services run (`placement`): "subprocess" (default) gives each service its own
process, as in production, so the two cores are shared between the fleet process (agents,
simulator, the benchmark's client) and the services; "inprocess" runs everything in one
event loop, as `murmur up` does. Separate processes need one clock: each process builds a
`ScaledClock` anchored on the same wall-clock instant (`ScaledClock.anchored`), so "now" agrees.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import math
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from benchmarks.instrument import instrument, publish_request, request_bytes
from benchmarks.machine import machine_busy
from benchmarks.processes import Child, commands, say, url_arg, workers
from benchmarks.stats import percentile
from benchmarks.watch import Watch
from bus.client import Client
from bus.errors import TransportError
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
from drone_agent.wiring import DEFAULT_HOME
from flight_model.clock import ScaledClock
from world.fleet import Drone, scattered
from world.requests import request_stream
from world.system import LocalSystem, local_system, telemetry_hz_for

if TYPE_CHECKING:
    from contracts import Event

Placement = Literal["subprocess", "inprocess"]
SOURCE = "/clients/bench"
P99_LIMIT_S = 0.100
CONNECT_TIMEOUT_S = 60.0
HOME = DEFAULT_HOME
_WORKER = ("-m", "benchmarks.choreography")  # this module's `main`: a service or a fleet shard


@dataclass(frozen=True)
class Settings:
    """One run's sizes; `FULL` and `QUICK` are the two `measure` uses."""

    # Throughput: a burst of `burst` requests on a fleet of `drones`.
    drones: int
    burst: int
    # Latency: `rate` requests per second for `seconds`, on `latency_drones`.
    latency_drones: int
    rate: float
    seconds: float
    # The search for the highest sustainable rate, `step_seconds` each: `step_rates` above
    # `rate` while they hold, or `lower_rates` below it until one holds.
    step_rates: tuple[float, ...]
    step_seconds: float
    lower_rates: tuple[float, ...] = ()
    speedup: float = 200.0
    spread_km: float = 1.0  # the burst's area (radius around the home)
    # The latency runs' area: short trips, so that fewer drones keep enough of them free.
    latency_spread_km: float = 0.3
    sim_tick_s: float = 1.0  # simulated seconds per physics step (murmur up: 0.5)
    # Processes the fleet is split over, like as many `murmur sim` (0: the benchmark's own).
    fleet_processes: int = 2
    grace_s: float = 3.0  # how long after the last request its assignment may still come
    delivered_timeout_s: float = 60.0


# The burst is half the fleet: with as many requests as drones, the last few find only far
# drones (or none able) and wait for one to come back, and the K-th assignment measures that.
FULL = Settings(
    drones=200,
    burst=100,
    latency_drones=150,
    rate=50.0,
    seconds=10.0,
    step_rates=(75.0, 100.0, 150.0),
    step_seconds=5.0,
    lower_rates=(25.0, 10.0, 5.0),
)
QUICK = Settings(
    drones=30,
    burst=15,
    latency_drones=50,
    rate=50.0,
    seconds=2.0,
    step_rates=(),
    step_seconds=2.0,
    delivered_timeout_s=15.0,
)


# --- pure helpers --------------------------------------------------------------------------


def latency_summary(spans: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p99 and max of latencies in seconds, as milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(1000 * value, 2)

    return {
        "count": len(spans),
        "p50_ms": ms(statistics.median(spans)) if spans else None,
        "p99_ms": ms(percentile(spans, 0.99)),
        "max_ms": ms(max(spans)) if spans else None,
    }


def stats_delta(before: dict[str, BusStats], after: dict[str, BusStats]) -> dict[str, int]:
    """Events the services handled and published between two snapshots, summed over them."""
    total = {"handled": 0, "published": 0, "volatile": 0, "duplicates": 0, "dead_letters": 0}
    for name, end in after.items():
        start = before.get(name, BusStats())
        for key in total:
            total[key] += getattr(end, key, 0) - getattr(start, key, 0)
    return total


def per_second(count: float, seconds: float | None) -> float | None:
    """A rate, rounded; None when the window is empty or unknown."""
    if seconds is None or seconds <= 0:
        return None
    return round(count / seconds, 1)


def sustainable(offered: int, assigned: int, p99_s: float | None) -> bool:
    """Every request assigned and the p99 within the limit."""
    return offered > 0 and assigned == offered and p99_s is not None and p99_s <= P99_LIMIT_S


def own_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the service workers)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


# --- the services --------------------------------------------------------------------------


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


def _local(
    url: BrokerUrl,
    state_dir: Path,
    clock: ScaledClock,
    run: str,
    drones: dict[str, Drone],
    *,
    services: Sequence[str],
    tick_s: float | None = None,
) -> contextlib.AbstractAsyncContextManager[LocalSystem]:
    """The part of the system that runs in this process, built as `murmur up` builds it.

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
    async with _local(
        url, state_dir, clock, run, drones, services=SERVICE_NAMES, tick_s=tick_s
    ) as system:
        yield InProcessServices(system)


@contextlib.asynccontextmanager
async def _subprocesses(
    url: BrokerUrl, state_dir: Path, speedup: float, anchor: float, run: str
) -> AsyncIterator[Services]:
    common = ["--url", url_arg(url), "--state-dir", str(state_dir), "--speedup", str(speedup)]
    common += ["--anchor", repr(anchor), "--run", run]
    commands_of = {name: [*_WORKER, "--worker", name, *common] for name in SERVICE_NAMES}
    async with workers(commands_of, state_dir, ready_within_s=CONNECT_TIMEOUT_S) as children:
        yield SubprocessServices(children)


async def _worker(args: argparse.Namespace) -> None:
    """One service in its own process: reports ready, then its counters on each stdin line."""
    clock = ScaledClock.anchored(args.speedup, datetime.fromtimestamp(args.anchor, UTC))
    url, state_dir = BrokerUrl.parse(args.url), Path(args.state_dir)
    # The drones are in processes of their own.
    async with _local(url, state_dir, clock, args.run, {}, services=[args.worker]) as system:
        bus = system.services[args.worker].bus
        say({"ready": True})
        async for line in commands():
            if line == "stats":
                say({"stats": dataclasses.asdict(bus.stats), "cpu_s": time.process_time()})


def progress(message: str) -> None:
    """A line on stderr: where a long run is."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the fleet -----------------------------------------------------------------------------


def _drones(*, drones: int, spread_km: float, shard: tuple[int, int] = (0, 1)) -> dict[str, Drone]:
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


async def _fleet_worker(args: argparse.Namespace) -> None:
    """One shard of the fleet in its own process: reports ready, runs until stdin closes."""
    clock = ScaledClock.anchored(args.speedup, datetime.fromtimestamp(args.anchor, UTC))
    drones = _drones(
        drones=args.drones, spread_km=args.spread_km, shard=(args.fleet_shard, args.shards)
    )
    url, state_dir = BrokerUrl.parse(args.url), Path(args.state_dir)
    async with _local(url, state_dir, clock, args.run, drones, services=(), tick_s=args.tick_s):
        say({"ready": True})
        async for _ in commands():
            pass


# --- the client's view ---------------------------------------------------------------------


def _instrument(url: BrokerUrl, run: str, watch: Watch, *, statuses: bool) -> Any:  # noqa: ANN401
    """The benchmark's client: publishes the requests and watches what comes back.

    Statuses only when `Delivered` is waited for: each subscription to them brings every
    retained status on the broker (amqtt sends them all before its SUBACK).
    """
    if os.environ.get("BENCH_DEBUG"):
        watch.trace = {}
    watched: list[type[Event]] = [DroneAssigned, JobOffered, JobAccepted]  # job updates: one topic
    watched += [DeliveryStatusChanged] if statuses else []
    return instrument(url, run, watch.see, *watched)


def _requests(homes: list[Location], run: str, *, spread_km: float) -> Iterator[tuple[str, bytes]]:
    """(delivery id, wire bytes) of seeded, servable requests: built before they are timed."""
    stream = request_stream(
        homes, center=HOME, spread_km=spread_km, seed=1, id_prefix=f"bench-{run}-"
    )
    for request in stream:
        yield request.delivery_id, request_bytes(request, source=SOURCE)


# --- one running system --------------------------------------------------------------------


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
async def _rig(
    url: BrokerUrl,
    *,
    drones: int,
    speedup: float,
    spread_km: float,
    placement: Placement,
    tick_s: float = 1.0,
    fleet_processes: int = 0,
    statuses: bool = False,
) -> AsyncIterator[Rig]:
    run = uuid.uuid4().hex[:8]
    anchor = time.time()
    clock = ScaledClock.anchored(speedup, datetime.fromtimestamp(anchor, UTC))
    with tempfile.TemporaryDirectory(prefix="murmur-bench-chor-") as tmp:
        state_dir = Path(tmp)
        fleet = _drones(drones=drones, spread_km=spread_km)
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
                else _local(url, state_dir, clock, run, fleet, services=(), tick_s=tick_s)
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


# --- 1. throughput -------------------------------------------------------------------------


async def throughput(
    url: BrokerUrl, settings: Settings, placement: Placement, raw: dict[str, Any] | None
) -> dict[str, Any]:
    """A burst of K requests through the whole choreography."""
    async with _rig(
        url,
        drones=settings.drones,
        speedup=settings.speedup,
        spread_km=settings.spread_km,
        placement=placement,
        tick_s=settings.sim_tick_s,
        fleet_processes=settings.fleet_processes if placement == "subprocess" else 0,
        statuses=True,
    ) as rig:
        watch = rig.watch
        burst = list(
            itertools.islice(_requests(rig.homes, rig.run, spread_km=rig.spread_km), settings.burst)
        )
        ids = [delivery_id for delivery_id, _ in burst]
        before = await rig.services.stats()
        cpu_before = dict(rig.services.cpu_s)
        started = time.monotonic()
        await asyncio.gather(*(publish_request(rig.client, d, payload) for d, payload in burst))
        published_s = time.monotonic() - started

        def all_in(seen: dict[str, float]) -> bool:
            return all(d in seen for d in ids)

        assigned_ok = await watch.until(lambda: all_in(watch.assigned_at), 30)
        at_assigned = await rig.services.stats()
        # Events are counted up to the snapshot: right after the K-th event, or at the timeout.
        assigned_window = time.monotonic() - started
        cpu_assigned = dict(rig.services.cpu_s)
        assigned_s = _last(watch.assigned_at, ids, started)
        delivered_ok = await watch.until(
            lambda: all_in(watch.delivered_at), settings.delivered_timeout_s
        )
        at_delivered = await rig.services.stats()
        delivered_window = time.monotonic() - started
        delivered_s = _last(watch.delivered_at, ids, started)

    progress(f"burst of {settings.burst}: assigned in {assigned_s}, delivered in {delivered_s}")
    to_assigned = stats_delta(before, at_assigned)
    cpu_s = sum(cpu_assigned.values()) - sum(cpu_before.values()) if cpu_before else None
    to_delivered = stats_delta(before, at_delivered)
    events_assigned = to_assigned["handled"] + to_assigned["published"]
    events_delivered = to_delivered["handled"] + to_delivered["published"]
    events_per_s = per_second(events_assigned, assigned_window)
    raw_msg_s = raw.get("throughput_msg_s") if raw else None
    return {
        "placement": placement,
        "fleet_processes": settings.fleet_processes if placement == "subprocess" else 0,
        "drones": settings.drones,
        "deliveries": settings.burst,
        "speedup": settings.speedup,
        "spread_km": settings.spread_km,
        "burst_published_s": round(published_s, 3),
        "assigned": sum(d in watch.assigned_at for d in ids),
        "delivered": sum(d in watch.delivered_at for d in ids),
        "all_assigned": assigned_ok,
        "all_delivered": delivered_ok,
        "to_assigned_s": _round(assigned_s),
        # When half and nine in ten of the burst were assigned: a straggler shows as a gap.
        "to_assigned_p50_s": _round(_nth(watch.assigned_at, ids, started, 0.5)),
        "to_assigned_p90_s": _round(_nth(watch.assigned_at, ids, started, 0.9)),
        "to_delivered_s": _round(delivered_s),
        "assigned_per_s": per_second(settings.burst, assigned_s) if assigned_ok else None,
        "delivered_per_s": per_second(settings.burst, delivered_s) if delivered_ok else None,
        "window_to_assigned": {
            **to_assigned,
            "events_per_s": events_per_s,
            "window_s": _round(assigned_window),
            # CPU the three service processes spent per event: unlike a rate, it holds still
            # when something else shares the machine (subprocess placement only).
            "services_cpu_s": _round(cpu_s),
            "services_cpu_us_per_event": round(1e6 * cpu_s / events_assigned, 1)
            if cpu_s is not None and events_assigned
            else None,
        },
        "window_to_delivered": {
            **to_delivered,
            "events_per_s": per_second(events_delivered, delivered_window),
            "window_s": _round(delivered_window),
        },
        "events_per_s": events_per_s,
        "choreography_events_per_s": per_second(
            events_assigned - to_assigned["volatile"], assigned_window
        ),
        "ratio_to_raw": round(events_per_s / raw_msg_s, 3) if events_per_s and raw_msg_s else None,
    }


def _hop(
    start: dict[str, float], end: dict[str, float], only: dict[str, float] | None = None
) -> dict[str, float | int | None]:
    """Latency from `start` to `end` of the deliveries in both (and in `only`, if given)."""
    keys = start.keys() if only is None else only.keys()
    return latency_summary([end[k] - start[k] for k in keys if k in start and k in end])


def _last(seen: dict[str, float], ids: list[str], started: float) -> float | None:
    times = [seen[d] for d in ids if d in seen]
    return max(times) - started if times else None


def _nth(seen: dict[str, float], ids: list[str], started: float, q: float) -> float | None:
    """When the `q` share of `ids` had been seen, from `started` (None if never)."""
    times = sorted(seen[d] - started for d in ids if d in seen)
    rank = math.ceil(q * len(ids))
    return times[rank - 1] if 0 < rank <= len(times) else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# --- 2. latency under load ---------------------------------------------------------------


async def offered_load(
    rig: Rig, requests: Iterator[tuple[str, bytes]], *, rate: float, seconds: float, grace_s: float
) -> dict[str, Any]:
    """Requests at `rate` per second for `seconds`; request -> DroneAssigned as seen."""
    count = max(1, round(rate * seconds))
    batch = list(itertools.islice(requests, count))
    due: dict[str, float] = {}
    pending: set[asyncio.Task[Any]] = set()
    before = await rig.services.stats()
    started = time.monotonic()
    late = 0.0
    for i, (delivery_id, payload) in enumerate(batch):
        at = started + i / rate
        wait = at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            late = max(late, -wait)
        due[delivery_id] = at
        task = asyncio.create_task(publish_request(rig.client, delivery_id, payload))
        pending.add(task)
        task.add_done_callback(pending.discard)
    sent_s = time.monotonic() - started
    await asyncio.gather(*pending)
    watch = rig.watch
    await watch.until(lambda: all(d in watch.assigned_at for d in due), grace_s)
    window = time.monotonic() - started
    after = await rig.services.stats()
    spans = [watch.assigned_at[d] - at for d, at in due.items() if d in watch.assigned_at]
    if os.environ.get("BENCH_DEBUG"):
        progress(
            f"latency by order: {[round(1000 * x) for x in spans[:: max(1, len(spans) // 30)]]}"
        )
        for d in list(due)[:: max(1, len(due) // 12)]:
            marks = {
                k: round(1000 * (v - due[d])) for k, v in (watch.trace or {}).get(d, {}).items()
            }
            marks["assigned"] = round(1000 * (watch.assigned_at.get(d, math.nan) - due[d]))
            progress(f"  {d}: {marks}")
    summary = latency_summary(spans)
    hops = {
        # The services' part (scheduler), the drone's part (fleet), the services' part again.
        "request_to_offer": _hop(due, watch.offered_at),
        "offer_to_accept": _hop(watch.offered_at, watch.accepted_at, due),
        "accept_to_assigned": _hop(watch.accepted_at, watch.assigned_at, due),
    }
    delta = stats_delta(before, after)
    p99 = percentile(spans, 0.99)
    progress(f"{rate}/s: {len(spans)}/{count} assigned, {summary}")
    return {
        "rate_per_s": rate,
        "offered": count,
        "assigned": len(spans),
        "send_s": round(sent_s, 3),
        "sender_late_ms": round(1000 * late, 1),
        "request_to_assigned": summary,
        "hops": hops,
        "events_per_s": per_second(delta["handled"] + delta["published"], window),
        "sustainable": sustainable(count, len(spans), p99),
    }


async def latency(url: BrokerUrl, settings: Settings, placement: Placement) -> dict[str, Any]:
    """p50/p99 at the fixed rate, then the highest sustained rate near it (`Settings`)."""
    async with _rig(
        url,
        drones=settings.latency_drones,
        speedup=settings.speedup,
        spread_km=settings.latency_spread_km,
        placement=placement,
        tick_s=settings.sim_tick_s,
        fleet_processes=settings.fleet_processes if placement == "subprocess" else 0,
    ) as rig:
        requests = _requests(rig.homes, rig.run, spread_km=rig.spread_km)
        fixed = await offered_load(
            rig, requests, rate=settings.rate, seconds=settings.seconds, grace_s=settings.grace_s
        )
        steps = []
        # Up from the fixed rate while it holds, or down from it until one does.
        upward = fixed["sustainable"]
        best = settings.rate if upward else None
        for rate in settings.step_rates if upward else settings.lower_rates:
            # Let the drones of the previous step come home first.
            await asyncio.sleep(2.0)
            step = await offered_load(
                rig, requests, rate=rate, seconds=settings.step_seconds, grace_s=settings.grace_s
            )
            steps.append(step)
            if step["sustainable"]:
                best = rate
            if step["sustainable"] != upward:
                break
    return {
        "placement": placement,
        "fleet_processes": settings.fleet_processes if placement == "subprocess" else 0,
        "drones": settings.latency_drones,
        "speedup": settings.speedup,
        "spread_km": settings.latency_spread_km,
        "fixed_rate": fixed,
        "steps": steps,
        "highest_sustainable_rate_per_s": best,
        "p99_limit_ms": 1000 * P99_LIMIT_S,
    }


# --- the API -------------------------------------------------------------------------------


async def measure(
    url: BrokerUrl,
    *,
    quick: bool,
    raw: dict[str, Any] | None = None,
    placement: Placement = "subprocess",
) -> dict[str, Any]:
    """Both sections on the broker at `url`; JSON-able. `quick` finishes in well under 30 s.

    `raw` is the raw paho baseline of the same run (its `throughput_msg_s` is used).
    """
    settings = QUICK if quick else FULL
    started = time.monotonic()
    busy_before, total_before = machine_busy()
    own_before = own_cpu_s()
    result: dict[str, Any] = {
        "quick": quick,
        "throughput": await _guarded(throughput(url, settings, placement, raw)),
        "latency": await _guarded(latency(url, settings, placement)),
    }
    busy_after, total_after = machine_busy()
    elapsed = time.monotonic() - started
    # What else ran on the machine meanwhile (another benchmark, a build) skews every figure.
    # The broker, when started by the caller, counts as "other" here.
    result["machine"] = {
        "cores": os.cpu_count(),
        "busy_pct_of_all_cores": round(
            100 * (busy_after - busy_before) / max(1e-9, total_after - total_before), 1
        ),
        "own_cpu_pct_of_one_core": round(100 * (own_cpu_s() - own_before) / elapsed, 1),
        "other_cpu_pct_of_one_core": round(
            100 * ((busy_after - busy_before) - (own_cpu_s() - own_before)) / elapsed, 1
        ),
    }
    result["elapsed_s"] = round(elapsed, 1)
    return result


async def _guarded(section: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """A section's figures, or the reason it has none: one failure spares the other section."""
    try:
        return await section
    except (TimeoutError, RuntimeError, TransportError, OSError) as exc:
        progress(f"section failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}


# --- worker processes ----------------------------------------------------------------------


def main() -> None:
    """The benchmark's own child processes: a service worker or a fleet shard (see `measure`)."""
    parser = argparse.ArgumentParser(description="Run through `murmur bench`, not by hand.")
    parser.add_argument("--worker", choices=SERVICE_NAMES)
    parser.add_argument("--url")
    parser.add_argument("--state-dir")
    parser.add_argument("--speedup", type=float)
    parser.add_argument("--anchor", type=float)
    parser.add_argument("--run")
    parser.add_argument("--fleet-shard", type=int)
    parser.add_argument("--shards", type=int)
    parser.add_argument("--drones", type=int)
    parser.add_argument("--spread-km", type=float)
    parser.add_argument("--tick-s", type=float)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker(args))
    elif args.fleet_shard is not None:
        asyncio.run(_fleet_worker(args))
    else:
        parser.error("nothing to do: run `murmur bench`")


if __name__ == "__main__":
    main()
