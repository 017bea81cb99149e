"""Event storms: a burst of delivery requests at once, and what it costs the services.

`scripts/storm` runs it (10,000 requests, then a smaller burst to compare: `compare`); the e2e test
`tests/e2e/test_storm.py` runs a small one on each test broker. Every part runs as in
production, each in its own process: the Package, Scheduler and Delivery services
(`murmur service NAME`) and a handful of drones (`murmur sim`), all on one simulated clock
(`--sim-epoch`). This process is the client: it publishes every request as fast as its MQTT
client can (QoS 1, a window of 1,000 in flight), then waits until each one has a terminal
retained status, sampling meanwhile the memory (RSS) of every process and what each service has
taken in (its inbox) and still has to publish (its outbox), from their SQLite files.

Every `reject_every`-th request is overweight, so the Package service rejects it; the others
are servable, but a few drones cannot fly thousands of them before `assign_within_s`: most end
`Unassignable`, some `Delivered`. A request that ends nowhere is lost, and counted as such.

What bounds the memory of a service under a burst is described in docs/reliability.md; what a
storm costs is sampled by `costs`.
"""

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the venv; amqtt brings psutil

from benchmarks.instrument import instrument, publish_request, request_bytes
from benchmarks.processes import Child, spawn, stop_all, url_arg
from benchmarks.storm.costs import Sampler, dead_letters
from benchmarks.watch import Watch
from bus.client import Client
from bus.url import BrokerUrl
from cloud.services import SERVICE_NAMES
from contracts.events import (
    DeliveryStatusChanged,
    ServiceStatus,
    TelemetryReported,
)
from drone_agent.wiring import DEFAULT_HOME
from world.fleet import spread_homes
from world.requests import request_stream
from world.system import telemetry_hz_for

SOURCE = "/clients/storm"
HOME = DEFAULT_HOME
SERVICES = SERVICE_NAMES
OVERWEIGHT_KG = 3.0  # above the Package service's default maximum (2.5 kg)


@dataclass(frozen=True)
class StormSettings:
    """One storm. Times are real seconds; the services get them in simulated seconds."""

    requests: int
    drones: int = 5
    speedup: float = 20.0
    assign_within_s: float = 15.0  # a request not placed on a drone by then is Unassignable
    offer_timeout_s: float = 3.0
    stale_after_s: float = 5.0
    reject_every: int = 10  # every n-th request is overweight (0: none)
    # Bytes of a field the services ignore (a tolerant reader's "unknown field"), added to each
    # request: what a burst costs in transit grows with it, what the services keep does not.
    padding_bytes: int = 0
    spread_km: float = 0.5
    ready_timeout_s: float = 60.0
    sample_s: float = 0.1

    @property
    def terminal_timeout_s(self) -> float:
        """How long every request may take to reach a terminal stage, from the first publish."""
        return 60.0 + self.assign_within_s + self.requests / 50


@dataclass
class StormResult:
    """The figures (JSON-able) and the final stage and reason of each request."""

    figures: dict[str, Any]
    final: dict[str, tuple[str, str | None]]
    rejected_ids: set[str]


# --- the storm ---------------------------------------------------------------------------


def requests(settings: StormSettings, run: str) -> Iterator[tuple[str, bytes, bool]]:
    """(delivery id, wire bytes, overweight) of each request, built before any is timed."""
    homes = spread_homes(HOME, settings.drones, spread_km=settings.spread_km, seed=1)
    stream = request_stream(
        homes, center=HOME, spread_km=settings.spread_km, seed=1, id_prefix=f"storm-{run}-"
    )
    for i, request in zip(range(settings.requests), stream, strict=False):
        overweight = settings.reject_every > 0 and i % settings.reject_every == 0
        if overweight:
            package = request.package.model_copy(update={"weight_kg": OVERWEIGHT_KG})
            request = request.model_copy(update={"package": package})  # noqa: PLW2901
        payload = request_bytes(request, source=SOURCE)
        if settings.padding_bytes:
            wire = json.loads(payload)
            wire["data"]["storm_padding"] = "x" * settings.padding_bytes
            payload = json.dumps(wire).encode()
        yield request.delivery_id, payload, overweight


def _service_args(
    name: str, url: BrokerUrl, workdir: Path, settings: StormSettings, epoch: str
) -> list[str]:
    sim = settings.speedup
    return [
        *("-m", "murmur", "service", name, "--broker", url_arg(url)),
        *("--db", str(workdir / f"{name}.db"), "--speedup", f"{sim:g}", "--sim-epoch", epoch),
        *("--assign-within", f"{settings.assign_within_s * sim:g}"),
        *("--offer-timeout", f"{settings.offer_timeout_s * sim:g}"),
        *("--stale-after", f"{settings.stale_after_s * sim:g}"),
    ]


def _fleet_args(url: BrokerUrl, workdir: Path, settings: StormSettings, epoch: str) -> list[str]:
    sim = settings.speedup
    return [
        *("-m", "murmur", "sim", "--drones", str(settings.drones), "--broker", url_arg(url)),
        *("--state-dir", str(workdir / "drones"), "--speedup", f"{sim:g}", "--sim-epoch", epoch),
        *("--telemetry-hz", f"{telemetry_hz_for(sim):g}"),
        *("--spread-km", f"{settings.spread_km:g}", "--seed", "1"),
    ]


async def storm(
    url: BrokerUrl,
    settings: StormSettings,
    workdir: Path,
    *,
    broker: psutil.Process | None = None,
    progress: Callable[[str], None] | None = None,
) -> StormResult:
    """Run one storm against the broker at `url`; services and drones start and stop here.

    Args:
        url: The broker.
        settings: Sizes and timers.
        workdir: Databases and logs of the child processes.
        broker: The broker's process, if it is one of its own, for its RSS.
        progress: Told, in words, where the storm is.

    Raises:
        RuntimeError: The services or the drones did not come online.
    """
    tell = progress or (lambda _: None)
    run = uuid.uuid4().hex[:8]
    epoch = datetime.now(UTC).isoformat()
    watch = Watch()
    built = list(requests(settings, run))
    watch.wanted = {delivery_id for delivery_id, _, _ in built}
    rejected_ids = {delivery_id for delivery_id, _, overweight in built if overweight}
    children: dict[str, Child] = {}
    async with instrument(
        url,
        f"storm-{run}",
        watch.see,
        ServiceStatus,
        DeliveryStatusChanged,
        ack_timeout_s=settings.terminal_timeout_s,
    ) as client:
        try:
            for name in SERVICES:
                args = _service_args(name, url, workdir, settings, epoch)
                children[name] = await spawn(name, args, workdir)
            children["drones"] = await spawn(
                "drones", _fleet_args(url, workdir, settings, epoch), workdir
            )
            async with instrument(url, f"storm-{run}-telemetry", watch.see, TelemetryReported):
                ready = await watch.until(
                    lambda: (
                        (
                            watch.services_online() == len(SERVICES)
                            and len(watch.telemetry_from) == settings.drones
                        )
                        or not all(c.alive() for c in children.values())
                    ),
                    settings.ready_timeout_s,
                )
            if not ready or not all(c.alive() for c in children.values()):
                tails = {n: c.log_tail() for n, c in children.items()}
                msg = f"services or drones did not come up: {tails}"
                raise RuntimeError(msg)
            figures = await _burst(
                client,
                watch,
                built,
                url=url,
                settings=settings,
                children=children,
                workdir=workdir,
                broker=broker,
            )
            figures["dead_letters"] = {n: dead_letters(workdir / f"{n}.db") for n in SERVICES}
        finally:
            await stop_all(children.values(), 15)
    final = {d: (stage, reason) for d, (_, stage, reason) in watch.latest.items()}
    tell(f"{settings.requests:,} requests: {json.dumps(figures['outcomes'])}")
    return StormResult(figures, final, rejected_ids)


async def _burst(
    client: Client,
    watch: Watch,
    built: list[tuple[str, bytes, bool]],
    *,
    url: BrokerUrl,
    settings: StormSettings,
    children: dict[str, Child],
    workdir: Path,
    broker: psutil.Process | None,
) -> dict[str, Any]:
    """Publish every request at once; wait until each is terminal; the figures."""
    processes: dict[str, psutil.Process | None] = {n: c.ps for n, c in children.items()}
    if broker is not None:
        processes["broker"] = broker
    sampler = Sampler(processes, {n: workdir / f"{n}.db" for n in SERVICES}, len(built), SOURCE)
    sampler.baseline = sampler.rss()
    started = time.monotonic()
    sampling = asyncio.create_task(sampler.run(started, settings.sample_s), name="storm.sample")
    try:
        # As fast as the client goes: a window of 1,000 in flight, the rest queued in paho.
        await asyncio.gather(*(publish_request(client, d, payload) for d, payload, _ in built))
        published_s = time.monotonic() - started
        all_terminal = await watch.until(
            lambda: len(watch.terminal) == len(built), settings.terminal_timeout_s
        )
        terminal_s = time.monotonic() - started
    finally:
        sampling.cancel()
        await asyncio.gather(sampling, return_exceptions=True)
    await asyncio.to_thread(sampler.sample, started)  # the last word on each outbox and inbox
    retained = await _retained_terminal(url, watch.wanted)
    outcomes = Counter(stage for _, stage, _ in watch.latest.values())
    reasons = Counter(f"{stage}: {reason}" for _, stage, reason in watch.latest.values() if reason)
    return {
        "requests": len(built),
        "drones": settings.drones,
        "speedup": settings.speedup,
        "assign_within_s": settings.assign_within_s,
        "published_s": round(published_s, 2),
        "absorbed_s": {n: _round(sampler.absorbed_at.get(n)) for n in SERVICES},
        "all_absorbed_s": _round(max(sampler.absorbed_at.values()))
        if len(sampler.absorbed_at) == len(SERVICES)
        else None,
        "all_terminal": all_terminal,
        "terminal_s": round(terminal_s, 2) if all_terminal else None,
        "outcomes": dict(sorted(outcomes.items())),
        "reasons": dict(reasons.most_common()),
        "lost": len(built) - len(watch.terminal),
        "retained_terminal": retained,
        "rss_mib": {
            name: {
                "baseline": sampler.baseline.get(name),
                "peak": sampler.peak.get(name),
                "growth": _growth(sampler.baseline.get(name), sampler.peak.get(name)),
            }
            for name in processes
        },
        "outbox_peak": sampler.outbox_peak,
        "samples": sampler.samples,
        "timeline": sampler.timeline,
    }


async def _retained_terminal(url: BrokerUrl, wanted: set[str]) -> int:
    """How many of `wanted` a newcomer finds with a terminal retained status."""
    late = Watch(wanted=set(wanted))
    async with instrument(url, "storm-late", late.see, DeliveryStatusChanged):
        await late.until(lambda: len(late.terminal) == len(wanted), 30 + len(wanted) / 500)
    return len(late.terminal)


def _growth(baseline: float | None, peak: float | None) -> float | None:
    return None if baseline is None or peak is None else round(peak - baseline, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
