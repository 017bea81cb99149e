"""The largest fleet at 1 Hz telemetry whose p99 lag stays under 1 s, and what it costs.

The ``fleet`` section of `murmur bench`. Every part runs as it would in production, each in its
own process on this machine:

- the broker: the run's (`murmur bench --mosquitto` starts a private Mosquitto, `--embedded`
  the amqtt broker as `murmur broker`);
- the fleet: `murmur sim --drones N`, N full agents, each with its own MQTT connection, last
  will and SQLite file, parked (a fleet's usual state), telemetry at 1 Hz, QoS 0;
- the Package and Scheduler services: `murmur service package|scheduler`;
- the Delivery service: the real `DeliveryService` in its own process, wired as
  `murmur service delivery` wires it, except that its `_on_telemetry` first records
  lag = when the service handles the TelemetryReported - the envelope's `time`
  (set by the agent just before it hands the message to its MQTT client; one machine, one
  clock): `benchmarks.fleet_scale.delivery`.

The services start once and stay up while N steps up (100, 200, 300, 600, 1000, ...); each step
starts a fresh fleet, waits until every drone's retained status says online, lets it settle,
then counts the telemetry *sent* during a window (20 s; 3 s on 50 drones with `--quick`) and
handled by the Delivery service within a grace period after it. A step passes if every drone
connected and stayed connected, the p99 lag is under 1 s, the drones really sent at 1 Hz (at
least 0.95 Hz: a busy event loop delays reports) and at least 99 % of what they sent was
handled. Stepping stops once a larger fleet cannot do better: connections failed, the p99
reached 1 s, or half the messages are missing.

CPU is per process over the window (% of one core); RSS is read at the window's end. RSS per
drone is the fleet process's RSS above that of a one-drone fleet, divided by N - 1.
"""

import asyncio
import json
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the venv; amqtt brings psutil

from benchmarks.instrument import instrument
from benchmarks.machine import (
    broker_description,
    broker_process,
    cpu_s,
    machine,
    machine_busy,
    rss_mib,
)
from benchmarks.processes import Child, spawn, stop_all, url_arg
from benchmarks.watch import Watch
from bus.url import BrokerUrl
from cloud.services import SERVICE_NAMES
from contracts.events import DroneStatus, ServiceStatus

STEPS = (100, 200, 300, 600, 1000, 1500, 2000, 3000)
QUICK_STEPS = (50,)
P99_LIMIT_S = 1.0
MIN_HANDLED = 0.99  # of the reports sent in the window (QoS 0 may drop)
MIN_RATE_HZ = 0.95  # reports per drone per second actually sent, against the nominal 1 Hz
SERVICES = SERVICE_NAMES

__all__ = ["measure"]


@dataclass(frozen=True)
class Timing:
    """How long each phase of a step lasts."""

    settle_s: float
    window_s: float
    grace_s: float
    connect_base_s: float
    connect_per_drone_s: float

    def connect_timeout(self, drones: int) -> float:
        """How long N drones get to come online before the step counts as failed."""
        return self.connect_base_s + self.connect_per_drone_s * drones


FULL = Timing(settle_s=3, window_s=20, grace_s=5, connect_base_s=20, connect_per_drone_s=0.05)
QUICK = Timing(settle_s=0.5, window_s=3, grace_s=1, connect_base_s=10, connect_per_drone_s=0.05)


# --- the instrumented Delivery service (runs in its own process) -------------------------------


async def _sleep_until(wall: float) -> None:
    await asyncio.sleep(max(0.0, wall - time.time()))


@dataclass
class _Run:
    """What the steps share: broker, services, what the client sees, timing."""

    url: BrokerUrl
    workdir: Path
    timing: Timing
    watch: Watch
    services: dict[str, Child]
    broker: psutil.Process | None
    base_rss_mib: float | None

    @property
    def delivery(self) -> Child:
        return self.services["delivery"]

    async def ask_delivery(self, line: str) -> dict[str, Any] | None:
        await self.delivery.send(line)
        if line != "report":
            return None
        async with asyncio.timeout(30):
            return await self.delivery.read_json()

    def fleet_args(self, drones: int, state_dir: Path) -> list[str]:
        broker = url_arg(self.url)
        state = str(state_dir)
        fleet = ["--drones", str(drones), "--broker", broker, "--state-dir", state, "--seed", "1"]
        return ["-m", "murmur", "sim", *fleet]


async def _start_services(url: BrokerUrl, workdir: Path) -> dict[str, Child]:
    broker = url_arg(url)
    services = {}
    for name in SERVICES:
        db = str(workdir / "services" / f"{name}.db")
        if name == "delivery":
            args = ["-m", "benchmarks.fleet_scale", "--broker", broker, "--db", db]
        else:
            args = ["-m", "murmur", "service", name, "--broker", broker, "--db", db]
        services[name] = await spawn(name, args, workdir, piped=name == "delivery")
    return services


async def _base_rss(run: _Run) -> float | None:
    """RSS of a one-drone fleet: the interpreter, the modules and the simulator loop."""
    since = time.time()
    fleet = await spawn("fleet-1", run.fleet_args(1, run.workdir / "fleet-1"), run.workdir)
    try:
        if not await run.watch.until(lambda: run.watch.drones_online(since) >= 1, 15):
            return None
        await asyncio.sleep(1.0)  # a few reports out
        return rss_mib(fleet.ps)
    finally:
        await fleet.stop(10)


async def _step(run: _Run, drones: int) -> dict[str, Any]:
    timing = run.timing
    since = time.time()
    state_dir = run.workdir / f"fleet-{drones}"
    fleet = await spawn(f"fleet-{drones}", run.fleet_args(drones, state_dir), run.workdir)
    try:
        await run.watch.until(
            lambda: run.watch.drones_online(since) >= drones or not fleet.alive(),
            timing.connect_timeout(drones),
        )
        connected = run.watch.drones_online(since)
        connect_s = time.time() - since
        start = time.time() + timing.settle_s
        end = start + timing.window_s
        await run.ask_delivery(f"window {start!r} {end!r}")
        procs = {"fleet": fleet.ps, **{n: c.ps for n, c in run.services.items()}}
        procs_or_none: dict[str, psutil.Process | None] = {**procs, "broker": run.broker}
        await _sleep_until(start)
        cpu0 = {name: cpu_s(p) for name, p in procs_or_none.items()}
        busy0, total0 = machine_busy()
        wall0 = time.monotonic()
        await _sleep_until(end)
        cpu1 = {name: cpu_s(p) for name, p in procs_or_none.items()}
        busy1, total1 = machine_busy()
        # Longer than the window when this process's loop was busy (the embedded broker's).
        sampled_s = time.monotonic() - wall0
        rss = {name: rss_mib(p) for name, p in procs_or_none.items()}
        connected_at_end = run.watch.drones_online(since)
        fleet_alive = fleet.alive()
        await asyncio.sleep(timing.grace_s)
        window = await run.ask_delivery("report")
        assert window is not None
    finally:
        await fleet.stop(30 + drones / 50)
    cpu: dict[str, float | None] = {}
    for name in procs_or_none:
        before, after = cpu0[name], cpu1[name]
        cpu[name] = (
            None
            if before is None or after is None
            else round(100 * (after - before) / sampled_s, 1)
        )
    # The whole machine in the same unit (all cores busy = 100 x cores), and what of it was not
    # ours: other work on the machine during the window makes the step's figures pessimistic.
    cores = psutil.cpu_count() or 1
    whole = 100 * cores * (busy1 - busy0) / max(total1 - total0, 1e-9)
    ours = sum(v for v in cpu.values() if v is not None)
    cpu["machine"] = round(whole, 1)
    cpu["others"] = round(max(0.0, whole - ours), 1)
    expected = round(drones * timing.window_s)
    per_drone = None
    if run.base_rss_mib is not None and rss["fleet"] is not None and drones > 1:
        per_drone = round((rss["fleet"] - run.base_rss_mib) / (drones - 1), 3)
    result: dict[str, Any] = {
        "drones": drones,
        "connected": connected,
        "connected_at_end": connected_at_end,
        "connect_s": round(connect_s, 1),
        "messages_expected": expected,
        "messages_sent": window["sent"],
        "messages_received": window["received"],
        "rate_hz": round(window["sent"] / (drones * timing.window_s), 3),
        "lag_p50_ms": window["lag_p50_ms"],
        "lag_p90_ms": window["lag_p90_ms"],
        "lag_p99_ms": window["lag_p99_ms"],
        "lag_max_ms": window["lag_max_ms"],
        "cpu_pct_of_one_core": cpu,
        "rss_mib": rss,
        "fleet_rss_mib_per_drone": per_drone,
    }
    failures, stop = _verdict(result, fleet_alive=fleet_alive)
    if failures and not fleet_alive:
        result["fleet_log_tail"] = fleet.log_tail()
    result["ok"] = not failures
    result["failures"] = failures
    result["stop"] = stop
    return result


def _verdict(step: dict[str, Any], *, fleet_alive: bool) -> tuple[list[str], bool]:
    """Why the step fails (nothing: it passes), and whether a larger fleet is worth trying."""
    drones = step["drones"]
    limits: list[str] = []  # a larger fleet will not do better
    if not fleet_alive:
        limits.append("the fleet process exited")
    if step["connected"] < drones:
        limits.append(f"only {step['connected']} of {drones} drones connected")
    elif step["connected_at_end"] < drones:
        limits.append(f"{drones - step['connected_at_end']} drones dropped their connection")
    p99 = step["lag_p99_ms"]
    if p99 is None or p99 >= 1000 * P99_LIMIT_S:
        limits.append(f"p99 lag {p99} ms >= {1000 * P99_LIMIT_S:g} ms")
    if step["messages_received"] < step["messages_expected"] / 2:
        limits.append("less than half the expected messages arrived")
    misses: list[str] = []
    sent, received = step["messages_sent"], step["messages_received"]
    if received < MIN_HANDLED * sent:
        misses.append(f"handled {received} of {sent} messages sent (< {MIN_HANDLED:.0%})")
    if step["rate_hz"] < MIN_RATE_HZ:
        misses.append(f"the drones sent at {step['rate_hz']} Hz (< {MIN_RATE_HZ} Hz)")
    return limits + misses, bool(limits)


async def measure(url: BrokerUrl, *, quick: bool) -> dict[str, Any]:
    """Step the fleet up on the broker at `url` until a step hits a limit; JSON-able figures.

    `quick`: 50 drones, a 3 s window (seconds).
    """
    timing = QUICK if quick else FULL
    sizes = QUICK_STEPS if quick else STEPS
    workdir = Path(tempfile.mkdtemp(prefix="murmur-fleet-scale-"))
    watch = Watch()
    started = time.monotonic()
    broker = await asyncio.to_thread(broker_process, url)
    result: dict[str, Any] = {
        "benchmark": "fleet_scale",
        "broker": broker_description(broker),
        "machine": machine(),
        "quick": quick,
        "settle_s": timing.settle_s,
        "window_s": timing.window_s,
        "grace_s": timing.grace_s,
        "p99_limit_ms": 1000 * P99_LIMIT_S,
        "min_handled": MIN_HANDLED,
        "min_rate_hz": MIN_RATE_HZ,
    }
    services: dict[str, Child] = {}
    try:
        async with instrument(url, "fleet-scale", watch.see, DroneStatus, ServiceStatus):
            since = time.time()
            services = await _start_services(url, workdir)
            up = await watch.until(
                lambda: (
                    watch.services_online(since) >= len(SERVICES)
                    or not all(c.alive() for c in services.values())
                ),
                30,
            )
            if not up or not all(c.alive() for c in services.values()):
                tails = {n: c.log_tail() for n, c in services.items()}
                msg = f"the services did not come online: {tails}"
                raise RuntimeError(msg)
            run = _Run(url, workdir, timing, watch, services, broker, None)
            run.base_rss_mib = await _base_rss(run)
            result["fleet_rss_mib_one_drone"] = run.base_rss_mib
            steps: list[dict[str, Any]] = []
            for size in sizes:
                step = await _step(run, size)
                steps.append(step)
                print(json.dumps({"step": step}), file=sys.stderr, flush=True)
                if step.pop("stop"):
                    break
            result["steps"] = steps
            result["largest_ok"] = max((s["drones"] for s in steps if s["ok"]), default=None)
            result["largest_p99_ok"] = max(
                (s["drones"] for s in steps if (s["lag_p99_ms"] or math.inf) < 1000 * P99_LIMIT_S),
                default=None,
            )
    finally:
        await stop_all(services.values(), 15)
        shutil.rmtree(workdir, ignore_errors=True)
    result["total_s"] = round(time.monotonic() - started, 1)
    return result
