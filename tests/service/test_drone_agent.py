"""A drone agent on a memory broker, flying a simulated vehicle; a peer plays the scheduler.

The agent, its vehicle and the simulator run in the test's loop on a fast `ScaledClock`, as in
`tests/e2e/test_agent.py`, which holds the same promises on real brokers (and link cuts,
crashes, operator commands); here they are kept without one.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bus.memory_transport import MemoryBroker
from contracts.events import (
    Availability,
    DroneEvent,
    DroneEventKind,
    DroneState,
    JobAccepted,
    JobCancellationRefused,
    JobFailed,
    JobOffered,
    JobPhase,
    JobProgressed,
    JobRejected,
    JobRejectionReason,
    JobSucceeded,
    PackageState,
)
from contracts.ids import Location
from drone_agent.service import DroneAgent
from drone_agent.sim_adapter import TickRouter
from firmware_sim.failures import Failure
from firmware_sim.simulator import Simulator
from flight_model.clock import ScaledClock
from flight_model.geo import from_enu
from tests.builders import a_job_cancellation, a_job_offer, an_envelope
from tests.service.harness import Peer, an_agent, running

DRONE = "d-1"
HOME = Location(latitude=47.3769, longitude=8.5417)
PICKUP = from_enu(HOME, 300, 200)
DROPOFF = from_enu(HOME, 600, -200)
SPEEDUP = 500.0
JOB_UPDATES = (JobAccepted, JobRejected, JobProgressed, JobSucceeded, JobFailed)


@asynccontextmanager
async def flying(
    broker: MemoryBroker, tmp_path: Path, failures: list[Failure] | None = None
) -> AsyncIterator[DroneAgent]:
    """The agent of a drone at HOME, connected, its vehicle simulated until the block ends."""
    clock = ScaledClock(SPEEDUP)
    simulator = Simulator(clock)
    agent = an_agent(
        broker,
        DRONE,
        tmp_path,
        home=HOME,
        clock=clock,
        router=TickRouter(simulator),
        failures=failures,
    )
    simulating = asyncio.create_task(simulator.run(), name="simulator")
    try:
        async with running(agent):
            yield agent
    finally:
        simulating.cancel()
        with suppress(asyncio.CancelledError):
            await simulating


@pytest.fixture
async def agent(broker: MemoryBroker, peer: Peer, tmp_path: Path) -> AsyncIterator[DroneAgent]:
    """A drone that can fly the usual offer; the peer hears its job updates, events and state."""
    await listen_to_the_drone(peer)
    async with flying(broker, tmp_path) as running_agent:
        yield running_agent


async def listen_to_the_drone(peer: Peer) -> None:
    await peer.listen(*JOB_UPDATES, JobCancellationRefused, DroneEvent, DroneState, drone_id=DRONE)


def an_offer(agent: DroneAgent, job_id: str = "job-1", **overrides: Any) -> JobOffered:
    """An offer the scheduler makes, to be answered within the hour of the agent's clock."""
    return a_job_offer(
        **{
            "drone_id": DRONE,
            "job_id": job_id,
            "delivery_id": f"del-{job_id}",
            "pickup": PICKUP,
            "dropoff": DROPOFF,
            "payload_kg": 1.0,
            "answer_by": agent.clock.now() + timedelta(hours=1),
            **overrides,
        }
    )


def of_job(job_id: str) -> Any:
    return lambda e: e.job_id == job_id


def back_home_and_idle(state: DroneState) -> bool:
    return state.job_id is None and state.availability is Availability.IDLE


async def test_an_offer_it_can_fly_is_accepted_and_flown_to_success_with_updates_in_order(
    agent: DroneAgent, peer: Peer
) -> None:
    [offer] = await peer.send(an_offer(agent))

    succeeded = await peer.next(JobSucceeded, of_job("job-1"))
    await peer.next(DroneState, back_home_and_idle)  # the job closes once it landed at home

    updates = [e for e in peer.seen if isinstance(e.data, JOB_UPDATES)]
    assert [type(e.data) for e in updates] == [
        JobAccepted,
        JobProgressed,
        JobProgressed,
        JobProgressed,
        JobProgressed,
        JobSucceeded,
    ]
    assert [e.data.phase for e in updates if isinstance(e.data, JobProgressed)] == [
        JobPhase.TO_PICKUP,
        JobPhase.LOADING,
        JobPhase.TO_DROPOFF,
        JobPhase.RELEASING,
    ]
    assert [e.sequence for e in updates] == list(range(len(updates)))
    assert {e.correlationid for e in updates} == {"del-job-1"}
    assert {e.source for e in updates} == {f"/drones/{DRONE}"}
    assert updates[0].causationid == offer.id
    assert succeeded.data.location is not None
    kinds = [e.kind for e in peer.heard(DroneEvent)]
    job_kinds = [DroneEventKind.PACKAGE_LOADED, DroneEventKind.PACKAGE_RELEASED]
    assert [k for k in kinds if k in job_kinds] == job_kinds


Change = Callable[[DroneAgent], dict[str, Any]]


def nothing(_: DroneAgent) -> dict[str, Any]:
    return {}


@pytest.mark.parametrize(
    ("change", "failures", "reason"),
    [
        (lambda _: {"payload_kg": 5.0}, [], JobRejectionReason.PAYLOAD_OVER_CAPACITY),
        (
            lambda _: {"dropoff": from_enu(HOME, 40_000, 0)},
            [],
            JobRejectionReason.INSUFFICIENT_ENERGY,
        ),
        (
            lambda agent: {"answer_by": agent.clock.now() - timedelta(seconds=60)},
            [],
            JobRejectionReason.OFFER_EXPIRED,
        ),
        (
            nothing,
            [Failure(component="gps", kind="off", at_s=0.0)],
            JobRejectionReason.FC_NOT_READY,
        ),
    ],
    ids=["payload", "energy", "expired", "fc-not-ready"],
)
async def test_an_offer_it_cannot_fly_is_rejected_with_its_reason(
    broker: MemoryBroker,
    peer: Peer,
    tmp_path: Path,
    *,
    change: Change,
    failures: list[Failure],
    reason: JobRejectionReason,
) -> None:
    await listen_to_the_drone(peer)
    async with flying(broker, tmp_path, failures) as agent:
        if failures:
            await peer.next(DroneState, lambda s: s.availability is Availability.UNAVAILABLE)
        await peer.send(an_offer(agent, **change(agent)))

        rejected = await peer.next(JobRejected)

    assert (rejected.data.job_id, rejected.data.reason) == ("job-1", reason)
    assert rejected.sequence == 0
    assert agent.store.job("job-1") is None  # nothing recorded, nothing flown
    assert not peer.heard(JobAccepted)


async def test_a_drone_on_a_job_rejects_another_offer_as_busy(
    agent: DroneAgent, peer: Peer
) -> None:
    await peer.send(an_offer(agent, "job-1"))
    await peer.next(JobAccepted, of_job("job-1"))

    await peer.send(an_offer(agent, "job-2"))

    rejected = (await peer.next(JobRejected, of_job("job-2"))).data
    assert rejected.reason is JobRejectionReason.BUSY
    await peer.next(JobSucceeded, of_job("job-1"))  # the first job flies on


@pytest.mark.parametrize("same_event_id", [True, False], ids=["redelivered", "resent"])
async def test_an_offer_heard_twice_is_answered_once(
    agent: DroneAgent, peer: Peer, *, same_event_id: bool
) -> None:
    """Test that an offer redelivered (same event id) or sent again is answered once.

    The answer to a later offer comes after anything the second copy could have caused.
    """
    offer = an_envelope(an_offer(agent))
    again = offer if same_event_id else an_envelope(an_offer(agent))
    await peer.send(offer, again, an_offer(agent, "job-2"))

    await peer.next(JobRejected, of_job("job-2"))

    assert len(peer.heard(JobAccepted, of_job("job-1"))) == 1
    assert not peer.heard(JobRejected, of_job("job-1"))


async def test_a_cancel_before_pickup_is_answered_with_the_package_not_loaded(
    agent: DroneAgent, peer: Peer
) -> None:
    await peer.send(an_offer(agent))
    await peer.next(JobProgressed, lambda p: p.phase is JobPhase.TO_PICKUP)

    [cancel] = await peer.send(
        a_job_cancellation(drone_id=DRONE, job_id="job-1", delivery_id="del-job-1")
    )

    failed = await peer.next(JobFailed, of_job("job-1"))
    assert failed.data.package_state is PackageState.NOT_LOADED
    assert failed.data.reason == "cancelled: package rejected"
    assert failed.causationid == cancel.id
    await peer.next(DroneState, back_home_and_idle)
    assert not peer.heard(JobSucceeded)
    assert not peer.heard(JobCancellationRefused)
