"""The drone agent in the choreography: a test double plays the scheduler through the contract.

Agents and the simulator run in the test's loop on a fast virtual clock; the agent that is
killed runs as its own process.
"""

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bus.url import BrokerUrl
from contracts import Envelope, Event
from contracts.events import (
    CommandName,
    CommandReply,
    CommandResult,
    DroneCommand,
    DroneEvent,
    DroneEventKind,
    DroneState,
    DroneStatus,
    JobAccepted,
    JobCancellationRefused,
    JobCancelled,
    JobFailed,
    JobOffered,
    JobPhase,
    JobProgressed,
    JobRejected,
    JobRejectionReason,
    JobSucceeded,
    Link,
    PackageState,
    TelemetryReported,
)
from contracts.ids import Location
from drone_agent.service import DroneAgent
from drone_agent.wiring import FleetConfig
from firmware_sim.failures import Failure
from flight_model.clock import ScaledClock
from flight_model.geo import from_enu
from flight_model.phases import FlightPhase
from tests.brokers import TestBroker
from tests.netproxy import LinkProxy
from tests.probe import Probe, probing, publish_events
from world.fleet import Drone, simulated_fleet

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ROOT = "murmur/v1"
HOME = Location(latitude=47.3769, longitude=8.5417)
PICKUP = from_enu(HOME, 800, 300)
DROPOFF = from_enu(HOME, 1500, -400)
SPEEDUP = 150.0


def an_offer(
    drone_id: str = "d-1",
    job_id: str = "job-1",
    *,
    payload_kg: float = 1.0,
    dropoff: Location = DROPOFF,
    answer_within_s: float = 3600,
) -> Envelope[Event]:
    offer = JobOffered(
        drone_id=drone_id,
        job_id=job_id,
        delivery_id=f"del-{job_id}",
        pickup=PICKUP,
        dropoff=dropoff,
        payload_kg=payload_kg,
        answer_by=datetime.now(UTC) + timedelta(seconds=answer_within_s),
    )
    return Envelope[Event].new(offer, source="/cloud/scheduler", correlationid=offer.delivery_id)


def a_cancel(drone_id: str = "d-1", job_id: str = "job-1") -> Envelope[Event]:
    cancel = JobCancelled(
        drone_id=drone_id, job_id=job_id, delivery_id=f"del-{job_id}", reason="client cancelled"
    )
    return Envelope[Event].new(cancel, source="/cloud/scheduler", correlationid=cancel.delivery_id)


def of_job(job_id: str) -> Callable[[Any], bool]:
    return lambda e: e.job_id == job_id


@asynccontextmanager
async def fleet(
    url: str,
    tmp_path: Path,
    drones: dict[str, list[Failure]],
    *,
    speedup: float = SPEEDUP,
) -> AsyncIterator[dict[str, DroneAgent]]:
    """Agents with simulated flight controllers, in this loop, connected before the block."""
    config = FleetConfig(broker=BrokerUrl.parse(url), state_dir=tmp_path, speedup=speedup)
    clock = ScaledClock(speedup)
    planned = {drone_id: Drone(HOME, failures) for drone_id, failures in drones.items()}
    async with simulated_fleet(planned, config, clock) as built:
        flying = asyncio.create_task(built.run())
        try:
            async with asyncio.timeout(10):
                await built.ready()
            yield built.agents
        finally:
            flying.cancel()
            await asyncio.gather(flying, return_exceptions=True)


def updates(probe: Probe, job_id: str) -> list[Event]:
    """Job updates of one job in the order they arrived."""
    return [
        e.data
        for e in probe.seen
        if getattr(e.data, "job_id", None) == job_id
        and e.data.topic == "drones/{drone_id}/jobs/{job_id}/update"
    ]


async def test_an_offer_is_accepted_and_flown_to_success_with_events_in_order(
    broker: TestBroker, tmp_path: Path
) -> None:
    async with (
        probing(broker.url, [f"{ROOT}/drones/#"]) as probe,
        fleet(broker.url, tmp_path, {"d-1": []}),
    ):
        await publish_events(broker.url, [an_offer()])
        await probe.wait_for(JobSucceeded, of_job("job-1"))
        await probe.wait_for(DroneEvent, lambda e: e.kind == DroneEventKind.LANDED, count=3)
        await probe.wait_for(
            DroneState,
            lambda s: s.job_id is None and s.availability == "idle" and s.battery_pct < 100,
        )
    progress = [u.phase for u in updates(probe, "job-1") if isinstance(u, JobProgressed)]
    assert isinstance(updates(probe, "job-1")[0], JobAccepted)
    assert progress == [
        JobPhase.TO_PICKUP,
        JobPhase.LOADING,
        JobPhase.TO_DROPOFF,
        JobPhase.RELEASING,
    ]
    assert isinstance(updates(probe, "job-1")[-1], JobSucceeded)
    kinds = [e.kind for e in probe.of(DroneEvent)]
    assert kinds == [
        DroneEventKind.TAKEOFF,
        DroneEventKind.LANDED,
        DroneEventKind.PACKAGE_LOADED,
        DroneEventKind.TAKEOFF,
        DroneEventKind.LANDED,
        DroneEventKind.PACKAGE_RELEASED,
        DroneEventKind.TAKEOFF,
        DroneEventKind.LANDED,
    ]
    sequences = [
        e.sequence
        for e in probe.seen
        if isinstance(e.data, (JobAccepted, JobProgressed, JobSucceeded))
    ]
    assert sequences == list(range(len(sequences)))
    assert probe.of(DroneStatus, lambda s: s.link == Link.ONLINE)


@pytest.mark.parametrize(
    ("offer", "failures", "reason"),
    [
        (an_offer(payload_kg=5.0), [], JobRejectionReason.PAYLOAD_OVER_CAPACITY),
        (an_offer(dropoff=from_enu(HOME, 40_000, 0)), [], JobRejectionReason.INSUFFICIENT_ENERGY),
        (an_offer(answer_within_s=-60), [], JobRejectionReason.OFFER_EXPIRED),
        (
            an_offer(),
            [Failure(component="gps", kind="off", at_s=0.0)],
            JobRejectionReason.FC_NOT_READY,
        ),
    ],
    ids=["payload", "energy", "expired", "fc-not-ready"],
)
async def test_an_offer_the_drone_cannot_fly_is_rejected_with_its_reason(
    broker: TestBroker,
    tmp_path: Path,
    offer: Envelope[Event],
    failures: list[Failure],
    reason: JobRejectionReason,
) -> None:
    async with (
        probing(broker.url, [f"{ROOT}/drones/#"]) as probe,
        fleet(broker.url, tmp_path, {"d-1": failures}),
    ):
        if failures:
            await probe.wait_for(DroneState, lambda s: s.availability == "unavailable")
        await publish_events(broker.url, [offer])
        [rejected] = await probe.wait_for(JobRejected)
    assert rejected.reason == reason


async def test_a_busy_drone_rejects_a_second_offer(broker: TestBroker, tmp_path: Path) -> None:
    async with (
        probing(broker.url, [f"{ROOT}/drones/+/jobs/+/update"]) as probe,
        fleet(broker.url, tmp_path, {"d-1": []}),
    ):
        await publish_events(broker.url, [an_offer(job_id="job-1")])
        await probe.wait_for(JobAccepted, of_job("job-1"))
        await publish_events(broker.url, [an_offer(job_id="job-2")])
        [rejected] = await probe.wait_for(JobRejected, of_job("job-2"))
    assert rejected.reason == JobRejectionReason.BUSY


async def test_a_battery_failure_mid_route_fails_the_job_with_the_package_state(
    broker: TestBroker, tmp_path: Path
) -> None:
    # 30 armed seconds into cruise: mid-route, not at lift-off, where a hop shorter than one
    # telemetry period would show neither a takeoff nor a landing.
    drop = Failure(
        component="battery", kind="drop", at_s=30.0, at_phase=FlightPhase.CRUISE, value=5.0
    )
    async with (
        probing(broker.url, [f"{ROOT}/drones/#"]) as probe,
        fleet(broker.url, tmp_path, {"d-1": [drop]}),
    ):
        await publish_events(broker.url, [an_offer()])
        [failed] = await probe.wait_for(JobFailed, of_job("job-1"))
        await probe.wait_for(DroneEvent, lambda e: e.kind == DroneEventKind.LANDED)
    assert failed.reason.startswith("failsafe_battery")
    assert failed.package_state == PackageState.NOT_LOADED
    assert any(e.kind == DroneEventKind.FAILSAFE_BATTERY for e in probe.of(DroneEvent))
    assert not probe.of(JobSucceeded)


async def test_a_cancel_before_pickup_sends_the_drone_home_and_after_pickup_is_refused(
    broker: TestBroker, tmp_path: Path
) -> None:
    async with (
        probing(broker.url, [f"{ROOT}/drones/#"]) as probe,
        fleet(broker.url, tmp_path, {"d-1": [], "d-2": []}),
    ):
        await publish_events(broker.url, [an_offer("d-1", "job-1"), an_offer("d-2", "job-2")])
        await probe.wait_for(
            JobProgressed, lambda p: p.job_id == "job-1" and p.phase == JobPhase.TO_PICKUP
        )
        await publish_events(broker.url, [a_cancel("d-1", "job-1")])
        await probe.wait_for(
            DroneState,
            lambda s: s.drone_id == "d-1" and s.job_id is None and s.availability == "idle",
        )
        await probe.wait_for(
            JobProgressed, lambda p: p.job_id == "job-2" and p.phase == JobPhase.TO_DROPOFF
        )
        await publish_events(broker.url, [a_cancel("d-2", "job-2")])
        [refused] = await probe.wait_for(JobCancellationRefused, of_job("job-2"))
        await probe.wait_for(JobSucceeded, of_job("job-2"))
    assert "on_board" in refused.reason
    # The answer to the granted cancel: the job ended without the package, never delivered.
    ended = [u for u in updates(probe, "job-1") if isinstance(u, (JobSucceeded, JobFailed))]
    assert [(type(u), getattr(u, "package_state", None)) for u in ended] == [
        (JobFailed, PackageState.NOT_LOADED)
    ]


async def test_a_cut_broker_link_mid_job_loses_nothing_and_keeps_the_order(
    broker: TestBroker, tmp_path: Path
) -> None:
    """Test that the agent flies on without the broker and sends every update after, in order."""
    async with (
        LinkProxy(broker.host, broker.port) as link,
        probing(broker.url, [f"{ROOT}/drones/#"]) as probe,
    ):
        proxied = broker.url.replace(f":{broker.port}", f":{link.port}")
        async with fleet(proxied, tmp_path, {"d-1": []}) as agents:
            agent = agents["d-1"]
            await publish_events(broker.url, [an_offer()])
            await probe.wait_for(JobProgressed, lambda p: p.phase == JobPhase.TO_PICKUP)
            link.cut()
            # The flight goes on: wait on the vehicle's own ticks for the local outcome.
            await agent.fc.wait_until(
                lambda _: job_outcome(agent, "job-1") == "succeeded", timeout_s=3600
            )
            assert not probe.of(JobSucceeded)
            link.restore()
            await probe.wait_for(JobSucceeded, of_job("job-1"), timeout=30)
    # At-least-once: an update in flight when the link died may arrive twice; its id says so.
    unique = {e.id: e for e in probe.seen}.values()
    seen = [e for e in unique if isinstance(e.data, (JobAccepted, JobProgressed, JobSucceeded))]
    assert [e.sequence for e in seen] == list(range(len(seen)))
    progress = [e.data.phase for e in seen if isinstance(e.data, JobProgressed)]
    assert progress == [
        JobPhase.TO_PICKUP,
        JobPhase.LOADING,
        JobPhase.TO_DROPOFF,
        JobPhase.RELEASING,
    ]


def job_outcome(agent: DroneAgent, job_id: str) -> str | None:
    job = agent.store.job(job_id)
    return job.outcome if job else None


async def test_an_agent_killed_mid_job_resumes_it_and_sends_one_terminal_update(
    broker: TestBroker, tmp_path: Path
) -> None:
    """Test that SIGKILL of the agent process mid-flight neither loses nor repeats the outcome."""
    command = [
        sys.executable,
        "-m",
        "murmur",
        "agent",
        "--drone-id",
        "d-9",
        "--fc",
        "sim",
        "--broker",
        broker.url,
        "--home",
        f"{HOME.latitude},{HOME.longitude}",
        "--speedup",
        str(SPEEDUP),
        "--state-dir",
        str(tmp_path),
    ]
    async with probing(broker.url, [f"{ROOT}/drones/#"]) as probe:
        agent = await asyncio.create_subprocess_exec(*command, cwd=REPO)
        try:
            await probe.wait_for(DroneStatus, lambda s: s.link == Link.ONLINE and s.session == 1)
            await publish_events(broker.url, [an_offer("d-9", "job-9")])
            await probe.wait_for(JobProgressed, lambda p: p.phase == JobPhase.TO_DROPOFF)
            agent.send_signal(signal.SIGKILL)
            await agent.wait()
            await probe.wait_for(DroneStatus, lambda s: s.link == Link.OFFLINE and s.session == 1)
            agent = await asyncio.create_subprocess_exec(*command, cwd=REPO)
            await probe.wait_for(JobSucceeded, of_job("job-9"), timeout=60)
            # The job closes after landing at home; by then any duplicate would be out.
            await probe.wait_for(
                DroneState,
                lambda s: s.job_id is None and s.availability == "idle" and s.battery_pct < 100,
                timeout=60,
            )
        finally:
            agent.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                await agent.wait()
    assert len(probe.of(JobSucceeded, of_job("job-9"))) == 1
    assert not probe.of(JobFailed)


def a_command(name: CommandName, command_id: str, drone_id: str = "d-1") -> Envelope[Event]:
    command = DroneCommand(drone_id=drone_id, command=name, command_id=command_id)
    return Envelope[Event].new(command, source="/operators/test")


async def test_operator_commands_are_executed_and_answered(
    broker: TestBroker, tmp_path: Path
) -> None:
    """Test that hold and resume are accepted mid-flight and land ends the job as failed."""
    async with (
        probing(broker.url, [f"{ROOT}/drones/#"]) as probe,
        fleet(broker.url, tmp_path, {"d-1": []}),
    ):
        await publish_events(broker.url, [an_offer()])
        await probe.wait_for(JobProgressed, lambda p: p.phase == JobPhase.TO_DROPOFF)
        # The leg is announced before the drone takes off; mid-flight is once it cruises there.
        await probe.wait_for(
            TelemetryReported, lambda t: t.phase == FlightPhase.CRUISE, after=probe.mark()
        )
        for name, command_id in [(CommandName.HOLD, "c-1"), (CommandName.RESUME, "c-2")]:
            await publish_events(broker.url, [a_command(name, command_id)])
            [reply] = await probe.wait_for(CommandReply, replying_to(command_id))
            assert reply.result == CommandResult.ACCEPTED
        await publish_events(broker.url, [a_command(CommandName.LAND, "c-3")])
        [failed] = await probe.wait_for(JobFailed, of_job("job-1"))
    assert failed.reason == "operator_land"
    assert failed.package_state == PackageState.ON_BOARD
    assert not probe.of(JobSucceeded)


def replying_to(command_id: str) -> Callable[[CommandReply], bool]:
    return lambda reply: reply.command_id == command_id
