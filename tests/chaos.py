"""A chaos run: deliveries while services, the broker, drone links and an agent are broken.

Mosquitto with persistence; the three cloud services as `murmur service` processes, killed with
SIGKILL at seeded random moments and started again; a fleet of simulated drones in this process,
three of them behind links that are cut mid-job, and one drone as a `murmur agent` process killed
mid-job and started again; the broker restarted once. An independent subscriber records every
event; `tests.chaos_check` judges the run on that record and on the components' SQLite files.
docs/reliability.md describes it and holds the figures of the full run:

    python -m tests.chaos --deliveries 200 --drones 20 --seed 1     # ./scripts/chaos
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from benchmarks.processes import Child, spawn
from broker.mosquitto import Mosquitto
from bus.transport import Transport, open_transport
from bus.url import BrokerUrl
from cloud.services import SERVICE_NAMES, build_service
from contracts import DecodeError, Envelope, Event, decode
from contracts.events import DeliveryStatusChanged, JobAccepted, JobFailed, JobSucceeded
from contracts.ids import Location
from contracts.requests import delivery_request
from contracts.states import TERMINAL_STAGES, DeliveryStage
from drone_agent.sim_adapter import SimFlightController
from drone_agent.wiring import DEFAULT_HOME, FleetConfig, build_agent, drone_login
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import ScaledClock
from flight_model.geo import random_within
from tests.brokers import mqtt_client
from tests.chaos_check import Consumer, Recorded, Verdict, first_seen, lost, verdict
from tests.netproxy import LinkProxy
from world.fleet import Drone, simulated_fleet, spread_homes
from world.system import scheduler_for, telemetry_hz_for

ROOT = "murmur/v1"
CENTER = DEFAULT_HOME
_USER, _PASSWORD = "chaos", "chaos-password"


@dataclass(frozen=True)
class ChaosPlan:
    """What to break, how often; the seed makes requests and fault times repeatable."""

    deliveries: int = 200
    drones: int = 20
    kills_per_service: int = 3
    cut_links: int = 3
    seed: int = 1
    speedup: float = 200.0
    request_window_s: float = 30.0  # real seconds over which the requests are sent
    timeout_s: float = 600.0  # real seconds for every delivery to end


@dataclass(frozen=True)
class Fault:
    """One planned fault: `at_s` real seconds into the run, down for `down_s`."""

    at_s: float
    kind: str  # "kill" a service, "broker" restart, "cut" a drone's link, "agent" kill
    target: str
    down_s: float


def faults(plan: ChaosPlan, cut_drones: list[str], agent_drone: str) -> list[Fault]:
    """The seeded fault schedule, in time order, all within the request window."""
    rng = random.Random(plan.seed)  # noqa: S311 - a repeatable schedule, not a secret
    window = plan.request_window_s

    def moment() -> float:
        return round(rng.uniform(0.1 * window, window), 2)

    schedule = [
        Fault(moment(), "kill", service, round(rng.uniform(0.2, 2.0), 2))
        for service in SERVICE_NAMES
        for _ in range(plan.kills_per_service)
    ]
    schedule.append(Fault(moment(), "broker", "mosquitto", 0.0))
    schedule += [
        Fault(moment(), "cut", drone, round(rng.uniform(1.0, 3.0), 2)) for drone in cut_drones
    ]
    schedule.append(Fault(moment(), "agent", agent_drone, round(rng.uniform(0.5, 2.0), 2)))
    return sorted(schedule, key=lambda f: f.at_s)


@dataclass
class ChaosReport:
    """The outcome of one run: figures for docs/reliability.md and the verdict."""

    plan: ChaosPlan
    faults_done: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stages: dict[str, int] = field(default_factory=dict)
    recorded: int = 0
    redelivered: int = 0
    verdict: Verdict = field(default_factory=Verdict)

    def summary(self) -> dict[str, Any]:
        """Everything as JSON-ready data."""
        return {
            "plan": asdict(self.plan),
            "seconds": round(self.seconds, 1),
            "faults": self.faults_done,
            "final_stages": self.stages,
            "events_recorded": self.recorded,
            "redelivered_to_recorder": self.redelivered,
            "problems": self.verdict.problems,
        }


# --- the recorder: an independent subscriber ------------------------------------------------


class Recorder:
    """Every message under the root, on a persistent session that survives broker restarts."""

    def __init__(self, url: BrokerUrl) -> None:
        self._url = url
        self.trace: list[Recorded] = []
        self.stages: dict[str, DeliveryStage] = {}
        self.open_jobs: dict[str, str] = {}  # drone -> job it accepted and has not ended
        self.subscribed = asyncio.Event()
        self.changed = asyncio.Condition()

    async def run(self) -> None:
        """Record until cancelled, reconnecting whenever the broker goes away."""
        while True:
            try:
                async with mqtt_client(self._url, "chaos-recorder", clean_session=False) as client:
                    await client.subscribe(f"{ROOT}/#", qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        await self._record(str(message.topic), message.payload)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)  # the broker is restarting: try again shortly

    async def _record(self, topic: str, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else str(payload or "").encode()
        try:
            envelope = decode(topic, raw, root=ROOT)
        except DecodeError:
            return  # a dead letter's own topic carries valid events; garbage is not ours
        self.trace.append((topic, envelope))
        data = envelope.data
        if isinstance(data, DeliveryStatusChanged):
            self.stages[data.delivery_id] = data.stage
        elif isinstance(data, JobAccepted):
            self.open_jobs[data.drone_id] = data.job_id
        elif isinstance(data, JobSucceeded | JobFailed):
            self.open_jobs.pop(data.drone_id, None)
        async with self.changed:
            self.changed.notify_all()

    async def wait(self, predicate: Any, timeout: float) -> None:
        """Wait until `predicate()` holds, re-checked on every recorded event."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(predicate)


# --- processes ------------------------------------------------------------------------------


class Process:
    """A `murmur` command as a subprocess that can be SIGKILLed and started again."""

    def __init__(self, name: str, args: list[str], workdir: Path) -> None:
        self.name = name
        self._args = ["-m", "murmur", *args]
        self._workdir = workdir
        self._child: Child | None = None

    async def start(self) -> None:
        """Start the command; its output goes to `<workdir>/<name>.log`."""
        self._child = await spawn(self.name, self._args, self._workdir)

    async def stop(self, sig: signal.Signals) -> None:
        """Send `sig` and reap the process (SIGKILL after 10 s)."""
        child, self._child = self._child, None
        if child is not None:
            await child.stop(10, sig)


def _login(url: BrokerUrl, workdir: Path) -> list[str]:
    """The broker options of a command: the password goes in a file, never on a command line."""
    password_file = workdir / "mqtt-password"
    password_file.write_text(f"{url.password}\n", encoding="utf-8")
    address = f"mqtt://{url.host}:{url.port}"
    user = str(url.username)
    return ["--broker", address, "--username", user, "--password-file", str(password_file)]


# --- the run --------------------------------------------------------------------------------


@dataclass
class Rig:
    """Everything of one run that faults act on."""

    plan: ChaosPlan
    workdir: Path
    mosquitto: Mosquitto
    url: BrokerUrl
    homes: dict[str, Location]
    epoch: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    proxies: dict[str, LinkProxy] = field(default_factory=dict)
    report: ChaosReport = field(init=False)

    def __post_init__(self) -> None:
        self.report = ChaosReport(self.plan)
        self.recorder = Recorder(self.url)
        self.services = {name: self._service(name) for name in SERVICE_NAMES}
        self.agent = self._agent(self.agent_drone)

    @property
    def cut_drones(self) -> list[str]:
        """The drones whose links are cut: the first ones."""
        return list(self.homes)[: self.plan.cut_links]

    @property
    def agent_drone(self) -> str:
        """The drone whose agent is a process of its own, killed once: the last one."""
        return list(self.homes)[-1]

    def _service(self, name: str) -> Process:
        timers = scheduler_for(self.plan.speedup)
        args = [
            "service", name, *_login(self.url, self.workdir),
            "--db", str(self.workdir / f"{name}.db"),
            "--speedup", str(self.plan.speedup), "--sim-epoch", self.epoch,
            "--offer-timeout", str(timers.offer_timeout_s),
            "--stale-after", str(timers.stale_after_s),
        ]  # fmt: skip
        return Process(name, args, self.workdir)

    def _agent(self, drone_id: str) -> Process:
        home = self.homes[drone_id]
        args = [
            "agent", "--drone-id", drone_id, *_login(self.url, self.workdir),
            "--state-dir", str(self.workdir / "agent"),
            "--home", f"{home.latitude},{home.longitude}",
            "--speedup", str(self.plan.speedup), "--sim-epoch", self.epoch,
            "--telemetry-hz", str(telemetry_hz_for(self.plan.speedup)),
        ]  # fmt: skip
        return Process(drone_id, args, self.workdir)

    async def fleet(self) -> None:
        """The simulated drones of this process, each with its own connection (some proxied)."""
        plan = self.plan
        clock = ScaledClock.anchored(plan.speedup, datetime.fromisoformat(self.epoch))
        config = FleetConfig(
            broker=self.url,
            state_dir=self.workdir / "drones",
            speedup=plan.speedup,
            telemetry_hz=telemetry_hz_for(plan.speedup),
        )

        def transport_for(drone_id: str) -> Transport:
            proxy = self.proxies.get(drone_id)
            link = self.url if proxy is None else replace(self.url, port=proxy.port)
            return open_transport(drone_login(replace(config, broker=link), drone_id))

        drones = {d: Drone(home) for d, home in self.homes.items() if d != self.agent_drone}
        async with simulated_fleet(drones, config, clock, transport_for=transport_for) as fleet:
            await fleet.run()

    async def break_things(self, schedule: list[Fault]) -> None:
        """Carry out the schedule; a target is never broken twice at once."""
        start = time.monotonic()
        by_target: dict[str, list[Fault]] = {}
        for fault in schedule:
            by_target.setdefault(fault.target, []).append(fault)

        async def in_turn(faults: list[Fault]) -> None:
            for fault in faults:
                await asyncio.sleep(max(0.0, start + fault.at_s - time.monotonic()))
                await self._break(fault, start)

        async with asyncio.TaskGroup() as tasks:
            for target_faults in by_target.values():
                tasks.create_task(in_turn(target_faults))

    async def _break(self, fault: Fault, start: float) -> None:
        """One fault; a cut link and the agent kill wait for their drone to be on a job."""
        if fault.kind in {"cut", "agent"}:
            try:
                await self.recorder.wait(
                    lambda: fault.target in self.recorder.open_jobs, self.plan.timeout_s / 4
                )
            except TimeoutError:
                self.report.faults_done.append(f"{fault.kind} {fault.target}: no job, skipped")
                return
        at = time.monotonic() - start
        if fault.kind == "broker":
            await self.mosquitto.restart(signal.SIGTERM)
        elif fault.kind == "cut":
            self.proxies[fault.target].cut()
            await asyncio.sleep(fault.down_s)  # the radio is out this long
            self.proxies[fault.target].restore()
        else:
            process = self.agent if fault.kind == "agent" else self.services[fault.target]
            await process.stop(signal.SIGKILL)
            await asyncio.sleep(fault.down_s)  # down a while, as after a crash
            await process.start()
        self.report.faults_done.append(
            f"{at:6.1f} s {fault.kind} {fault.target} ({fault.down_s} s)"
        )


async def run_chaos(plan: ChaosPlan, workdir: Path) -> ChaosReport:
    """Run the plan against a fresh Mosquitto in `workdir`; never raises on a broken rule."""
    ids = [f"d-{i:03d}" for i in range(1, plan.drones + 1)]
    homes = spread_homes(CENTER, len(ids), spread_km=2.0, seed=plan.seed)
    started = time.monotonic()
    async with Mosquitto(workdir / "mosquitto", users={_USER: _PASSWORD}) as mosquitto:
        url = BrokerUrl.parse(f"mqtt://{_USER}:{_PASSWORD}@127.0.0.1:{mosquitto.port}")
        rig = Rig(plan, workdir, mosquitto, url, dict(zip(ids, homes, strict=True)))
        recorder = rig.recorder
        async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tasks:
            recording = tasks.create_task(recorder.run())
            await _wait_for(recorder.subscribed.wait(), 10, "the recorder did not subscribe")
            for process in [*rig.services.values(), rig.agent]:
                stack.push_async_callback(process.stop, signal.SIGTERM)
            for process in rig.services.values():
                await process.start()
            await recorder.wait(lambda: _online(recorder, SERVICE_NAMES), 30)
            for drone_id in rig.cut_drones:
                proxy = LinkProxy("127.0.0.1", mosquitto.port)
                rig.proxies[drone_id] = await stack.enter_async_context(proxy)
            fleet = tasks.create_task(rig.fleet())
            await rig.agent.start()
            await recorder.wait(lambda: _online(recorder, ids), 30)
            requested = _requests(plan)
            chaos = tasks.create_task(
                rig.break_things(faults(plan, rig.cut_drones, rig.agent_drone))
            )
            await _send(url, requested, plan)
            with contextlib.suppress(TimeoutError):  # the verdict names what did not end
                await recorder.wait(lambda: _all_ended(recorder, requested), plan.timeout_s)
            await chaos
            # Nothing new once the drones are down (but their last will): then the verdict.
            fleet.cancel()
            await rig.agent.stop(signal.SIGTERM)
            rig.report.verdict = await _judge(rig, requested)
            recording.cancel()
    _write_trace(recorder.trace, workdir / "trace.jsonl")
    report = rig.report
    report.seconds = time.monotonic() - started
    report.stages = dict(Counter(str(s) for s in recorder.stages.values()))
    report.recorded = len(recorder.trace)
    report.redelivered = report.recorded - len(first_seen(recorder.trace))
    return report


async def _judge(rig: Rig, requested: list[Any]) -> Verdict:
    """The verdict on a consistent view: a copy of the trace, and what each component has
    committed of it (waiting up to 30 s for them to catch up)."""
    delivery_ids = [r.delivery_id for r in requested]
    final_stages = await _retained_stages(rig.url, delivery_ids)
    readers = _consumers(rig.url, rig.workdir, list(rig.homes), rig.agent_drone)
    with contextlib.suppress(TimeoutError):  # the verdict names what is still missing
        async with asyncio.timeout(30):
            while True:
                trace, consumers = list(rig.recorder.trace), [read() for read in readers]
                events = first_seen(trace)
                if not any(lost(events, consumer) for consumer in consumers):
                    break
                await asyncio.sleep(0.2)  # handled rows land in SQLite files: poll them
    return verdict(trace, requested=delivery_ids, final_stages=final_stages, consumers=consumers)


def _write_trace(trace: list[Recorded], path: Path) -> None:
    """The recorded trace as JSON lines, for a look after the run."""
    with path.open("w", encoding="utf-8") as out:
        for topic, envelope in trace:
            out.write(f'{{"topic": {json.dumps(topic)}, "event": {envelope.to_json().decode()}}}\n')


async def _wait_for(awaitable: Any, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            await awaitable
    except TimeoutError:
        raise RuntimeError(what) from None


def _online(recorder: Recorder, names: Any) -> bool:
    up = {
        getattr(e.data, "service", None) or getattr(e.data, "drone_id", None)
        for _, e in recorder.trace
        if e.type in {"murmur.service.status.v1", "murmur.drone.status.v1"}
        and e.data.link == "online"
    }
    return set(names) <= up


def _requests(plan: ChaosPlan) -> list[Any]:
    rng = random.Random(plan.seed)  # noqa: S311
    return [
        delivery_request(
            pickup=random_within(rng, CENTER, 1_500),
            dropoff=random_within(rng, CENTER, 1_500),
            # Light enough for every drone: the run is about faults, not about energy (a heavy
            # parcel on a long leg is beyond the fleet and ends unassignable at its deadline).
            weight_kg=round(rng.uniform(0.2, 1.5), 2),
            owner_id="chaos",
            delivery_id=f"chaos-{plan.seed}-{i:04d}",
        )
        for i in range(plan.deliveries)
    ]


async def _send(url: BrokerUrl, requests: list[Any], plan: ChaosPlan) -> None:
    """Send the requests evenly over the window, each retried until the broker acknowledged it.

    A retry sends the same envelope: consumers dedupe it by event id (and by delivery id).
    """
    envelopes = [
        Envelope[Event].new(r, source="/clients/chaos", correlationid=r.delivery_id)
        for r in requests
    ]
    gap = plan.request_window_s / max(1, len(envelopes))
    start = time.monotonic()
    pending = list(enumerate(envelopes))
    while pending:
        try:
            async with mqtt_client(url, f"chaos-client-{os.getpid()}") as client:
                while pending:
                    i, envelope = pending[0]
                    await asyncio.sleep(max(0.0, start + i * gap - time.monotonic()))
                    data = envelope.data
                    await client.publish(data.resolved_topic(ROOT), envelope.to_json(), qos=1)
                    pending.pop(0)
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)  # the broker is restarting


def _all_ended(recorder: Recorder, requests: list[Any]) -> bool:
    return all(recorder.stages.get(r.delivery_id) in TERMINAL_STAGES for r in requests)


# --- afterwards -----------------------------------------------------------------------------


def _consumers(url: BrokerUrl, workdir: Path, drones: list[str], agent_drone: str) -> list[Any]:
    """For each component, a function reading what it has committed (called repeatedly)."""
    clock = ScaledClock(1.0)
    (workdir / "routes").mkdir(exist_ok=True)
    readers = []
    for name in SERVICE_NAMES:
        subscriptions = build_service(
            name,
            transport=open_transport(url),
            db_path=workdir / "routes" / f"{name}.db",
            clock=clock,
        ).bus.subscriptions
        readers.append(_reader(name, subscriptions, workdir / f"{name}.db"))
    for drone_id in drones:
        state_dir = workdir / ("agent" if drone_id == agent_drone else "drones")
        subscriptions = _agent_subscriptions(url, workdir, drone_id)
        readers.append(_reader(drone_id, subscriptions, state_dir / f"{drone_id}.db"))
    return readers


def _agent_subscriptions(url: BrokerUrl, workdir: Path, drone_id: str) -> dict[type[Event], str]:
    clock = ScaledClock(1.0)
    config = FleetConfig(broker=url, state_dir=workdir / "routes")
    fc = SimFlightController(SimVehicle(vehicle_id=drone_id, home=CENTER), clock)
    return build_agent(config, drone_id, fc=fc, clock=clock).bus.subscriptions


def _reader(name: str, subscriptions: dict[type[Event], str], db: Path) -> Any:
    def read() -> Consumer:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            handled = frozenset(conn.execute("SELECT source, event_id FROM bus_inbox"))
            dead = frozenset(
                row[0]
                for row in conn.execute("SELECT event_id FROM bus_dead_letters")
                if row[0] is not None
            )
        return Consumer(name, subscriptions, handled, dead)

    return read


async def _retained_stages(url: BrokerUrl, delivery_ids: list[str]) -> dict[str, DeliveryStage]:
    """The statuses a client connecting now is told: the broker's retained ones."""
    stages: dict[str, DeliveryStage] = {}
    wanted = set(delivery_ids)
    with contextlib.suppress(TimeoutError):
        async with (
            asyncio.timeout(10),
            mqtt_client(url, f"chaos-final-{os.getpid()}") as client,
        ):
            await client.subscribe(f"{ROOT}/deliveries/+/status", qos=1)
            async for message in client.messages:
                raw = message.payload if isinstance(message.payload, bytes) else b""
                with contextlib.suppress(DecodeError):
                    data = decode(str(message.topic), raw, root=ROOT).data
                    if isinstance(data, DeliveryStatusChanged):
                        stages[data.delivery_id] = data.stage
                if wanted <= stages.keys():
                    break
    return stages


def main() -> int:
    """`python -m tests.chaos`: the full run, figures on stdout, exit 1 on a broken rule."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = ChaosPlan()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--workdir", type=Path, help="keep logs and databases here")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args()
    plan = ChaosPlan(**{k: getattr(args, k) for k in asdict(defaults)})
    with _workdir(args.workdir) as workdir:
        report = asyncio.run(run_chaos(plan, workdir))
    summary = report.summary()
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 1 if report.verdict.problems else 0


@contextlib.contextmanager
def _workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="murmur-chaos-") as tmp:
        yield Path(tmp)


if __name__ == "__main__":
    sys.exit(main())
