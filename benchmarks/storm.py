"""Event storms: a burst of delivery requests at once, and what it costs the services.

`scripts/storm` runs it (10,000 requests, then a smaller burst to compare); the e2e test
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

What bounds the memory of a service under a burst is described in docs/reliability.md.
"""

import argparse
import asyncio
import contextlib
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the venv; amqtt brings psutil

from benchmarks.harness import MOSQUITTO, Target, started_broker
from benchmarks.instrument import instrument, publish_request, request_bytes
from benchmarks.machine import broker_process, machine, rss_mib
from benchmarks.processes import Child, spawn, stop_all, url_arg
from benchmarks.watch import Watch
from bus.client import Client
from bus.errors import TransportError
from bus.url import BrokerUrl
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
SERVICES = ("package", "scheduler", "delivery")
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


@dataclass
class _Sampler:
    """RSS of each process, and each service's inbox (requests taken in) and outbox."""

    processes: dict[str, psutil.Process | None]
    dbs: dict[str, Path]
    wanted: int
    baseline: dict[str, float | None] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)
    outbox_peak: dict[str, int] = field(default_factory=dict)
    absorbed_at: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    # (seconds since the first publish, RSS in MiB, inbox, outbox) per process or service
    timeline: list[tuple[float, dict[str, float | None], dict[str, tuple[int, int]]]] = field(
        default_factory=list
    )

    def rss(self) -> dict[str, float | None]:
        return {name: rss_mib(p) for name, p in self.processes.items()}

    def sample(self, started: float) -> None:
        rss = self.rss()
        for name, value in rss.items():
            if value is not None:
                self.peak[name] = max(self.peak.get(name, 0.0), value)
        counts = {name: _counts(db) for name, db in self.dbs.items()}
        self.timeline.append((round(time.monotonic() - started, 2), rss, counts))
        for name, (inbox, outbox) in counts.items():
            self.outbox_peak[name] = max(self.outbox_peak.get(name, 0), outbox)
            if inbox >= self.wanted and name not in self.absorbed_at:
                self.absorbed_at[name] = time.monotonic() - started
        self.samples += 1

    async def run(self, started: float, every_s: float) -> None:
        while True:
            await asyncio.to_thread(self.sample, started)
            await asyncio.sleep(every_s)


def _counts(db: Path) -> tuple[int, int]:
    """Requests of the storm in a service's inbox, and rows in its outbox (read-only)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            inbox = conn.execute(
                "SELECT count(*) FROM bus_inbox WHERE source = ?", [SOURCE]
            ).fetchone()[0]
            outbox = conn.execute("SELECT count(*) FROM bus_outbox").fetchone()[0]
    except sqlite3.Error:
        return 0, 0
    return int(inbox), int(outbox)


def _dead_letters(db: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT count(*) FROM bus_dead_letters").fetchone()[0])
    except sqlite3.Error:
        return -1


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
            figures["dead_letters"] = {n: _dead_letters(workdir / f"{n}.db") for n in SERVICES}
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
    sampler = _Sampler(processes, {n: workdir / f"{n}.db" for n in SERVICES}, len(built))
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


# --- the script ----------------------------------------------------------------------------

BROKERS: dict[str, Target] = {"mosquitto": MOSQUITTO, "amqtt": None}


async def compare(
    brokers: Sequence[str],
    sizes: Sequence[int],
    *,
    drones: int,
    padding_bytes: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One storm per broker and size, each on a fresh broker; JSON-able figures of each."""
    tell = progress or (lambda _: None)
    storms = []
    for name in brokers:
        for size in sizes:
            async with started_broker(BROKERS[name]) as running:
                broker = await asyncio.to_thread(broker_process, running.url)
                version = running.version or ""
                kind = version if version.startswith(name) else f"{name} {version}".rstrip()
                tell(f"a storm of {size:,} requests on {kind}")
                settings = StormSettings(requests=size, drones=drones, padding_bytes=padding_bytes)
                with tempfile.TemporaryDirectory(prefix="murmur-storm-") as tmp:
                    try:
                        result = await storm(
                            running.url, settings, Path(tmp), broker=broker, progress=tell
                        )
                    except (RuntimeError, TimeoutError, TransportError, OSError) as exc:
                        tell(f"the storm failed: {type(exc).__name__}: {exc}")
                        storms.append({"broker": kind, "requests": size, "error": str(exc)})
                        continue
            storms.append({"broker": kind, "padding_bytes": padding_bytes, **result.figures})
    return {"machine": machine(), "storms": storms}


def report(figures: dict[str, Any]) -> str:
    """One storm's figures, for people."""
    head = f"{figures['requests']:,} requests on {figures['broker']}"
    if "error" in figures:
        return f"{head}: failed: {figures['error']}"
    absorbed = ", ".join(f"{n} {s} s" for n, s in figures["absorbed_s"].items())
    outcomes = ", ".join(f"{stage} {count:,}" for stage, count in figures["outcomes"].items())
    memory = ", ".join(
        f"{name} {v['baseline']} -> {v['peak']} ({_signed(v['growth'])})"
        for name, v in figures["rss_mib"].items()
    )
    outbox = ", ".join(f"{n} {count:,}" for n, count in figures["outbox_peak"].items())
    lines = [
        (
            f"{head} ({figures['drones']} drones, x{figures['speedup']:g}, assigned within "
            f"{figures['assign_within_s']:g} s or unassignable)"
        ),
        (
            f"  published in {figures['published_s']} s; absorbed in {figures['all_absorbed_s']} s "
            f"({absorbed}); all terminal in {figures['terminal_s']} s"
        ),
        (
            f"  outcomes: {outcomes}; lost {figures['lost']:,}; terminal retained statuses "
            f"{figures['retained_terminal']:,}; dead letters {figures['dead_letters']}"
        ),
        f"  RSS MiB, baseline -> peak: {memory}",
        f"  outbox peak (rows in SQLite): {outbox}",
    ]
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "?" if value is None else f"{value:+.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run storms of the given sizes on each broker and print their figures."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.storm", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--brokers", default="mosquitto,amqtt", help="comma-separated: mosquitto, amqtt"
    )
    parser.add_argument(
        "--requests", type=int, nargs="+", default=[10_000, 2_000], help="burst sizes"
    )
    parser.add_argument("--drones", type=int, default=5)
    parser.add_argument(
        "--padding-bytes", type=int, default=0, help="an ignored field of this size per request"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    unknown = sorted(set(brokers) - set(BROKERS))
    if unknown:
        parser.error(f"--brokers: unknown {', '.join(unknown)}; choose from mosquitto, amqtt")

    def tell(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    results = asyncio.run(
        compare(
            brokers,
            args.requests,
            drones=args.drones,
            padding_bytes=args.padding_bytes,
            progress=tell,
        )
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for figures in results["storms"]:
        print(report(figures))
    _compare_sizes(results["storms"])
    failed = [f for f in results["storms"] if "error" in f or f["lost"]]
    return 1 if failed else 0


def _compare_sizes(storms: list[dict[str, Any]]) -> None:
    """Per broker: how much more each process grew in the largest storm than in the smallest."""
    done = [f for f in storms if "error" not in f]
    for kind in dict.fromkeys(f["broker"] for f in done):
        mine = sorted((f for f in done if f["broker"] == kind), key=lambda f: f["requests"])
        if len(mine) < 2:  # noqa: PLR2004 - a comparison needs two
            continue
        small, large = mine[0], mine[-1]
        deltas = ", ".join(
            f"{name} {_signed(_minus(large['rss_mib'][name]['growth'], v['growth']))}"
            for name, v in small["rss_mib"].items()
        )
        print(
            f"{kind}: {large['requests']:,} requests instead of {small['requests']:,} "
            f"grew each process by this much more (MiB): {deltas}"
        )


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)


if __name__ == "__main__":
    sys.exit(main())
