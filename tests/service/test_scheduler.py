"""The Drone Scheduler on a memory broker, with a peer playing the clients and the drones.

The scheduler learns the fleet as it does in production: each drone's retained status and state
are on the broker before it starts (it gets them on subscribing), then each drone reports
telemetry. Its clock is a `ManualClock`: offer, step and delivery timeouts fire only when a test
advances it.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from bus.memory_transport import MemoryBroker
from cloud.scheduler.service import SchedulerService, SchedulerSettings
from cloud.scheduler.store import Plan
from cloud.services import CloudSettings
from contracts.events import (
    Availability,
    DeadLetter,
    DeliveryUnassignable,
    DroneAssigned,
    DroneState,
    JobCancelled,
    JobOffered,
    JobRejectionReason,
    Link,
    PackageState,
)
from contracts.ids import Location
from flight_model.clock import ManualClock
from flight_model.geo import from_enu
from tests.builders import (
    DELIVERY,
    PICKUP,
    a_delivery_request,
    a_drone_state,
    a_drone_status,
    a_job_acceptance,
    a_job_failure,
    a_job_rejection,
    a_package,
    a_package_rejection,
    a_telemetry_report,
    an_envelope,
)
from tests.service.harness import Peer, a_service, advance, running

OFFER_TIMEOUT_S = 10.0
STEP_TIMEOUT_S = 1800.0
# Time jumps here with no telemetry in between: a day keeps every drone that reported fresh.
SETTINGS = SchedulerSettings(
    offer_timeout_s=OFFER_TIMEOUT_S, step_timeout_s=STEP_TIMEOUT_S, stale_after_s=24 * 3600
)


def east_of_pickup(metres: float) -> Location:
    return from_enu(PICKUP, metres, 0)


def on_the_ground(drone_id: str, metres_from_pickup: float, **overrides: object) -> DroneState:
    """The retained state of an idle drone landed at its home, this far east of the pickup."""
    at = east_of_pickup(metres_from_pickup)
    return a_drone_state(**{"drone_id": drone_id, "position": at, "home": at, **overrides})


@asynccontextmanager
async def scheduling(
    broker: MemoryBroker,
    peer: Peer,
    tmp_path: Path,
    clock: ManualClock,
    fleet: list[DroneState],
    *,
    offline: frozenset[str] = frozenset(),
    silent: frozenset[str] = frozenset(),
) -> AsyncIterator[SchedulerService]:
    """The scheduler, started once `fleet` said who it is; then each drone not `silent` reports.

    The `offline` ones' retained status says offline.
    """
    await peer.listen(JobOffered, JobCancelled, DroneAssigned, DeliveryUnassignable)
    await peer.listen(DeadLetter, component="scheduler")
    for state in fleet:
        link = Link.OFFLINE if state.drone_id in offline else Link.ONLINE
        await peer.send(a_drone_status(drone_id=state.drone_id, link=link), state)
    service = a_service(
        broker, "scheduler", tmp_path, clock=clock, settings=CloudSettings(scheduler=SETTINGS)
    )
    assert isinstance(service, SchedulerService)
    async with running(service) as scheduler:
        await peer.send(
            *(
                a_telemetry_report(
                    drone_id=s.drone_id, position=s.position, phase="landed", job_id=None
                )
                for s in fleet
                if s.drone_id not in silent
            )
        )
        yield scheduler


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def scheduler(
    broker: MemoryBroker, peer: Peer, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[SchedulerService]:
    """The scheduler with two able drones: d-1 500 m from the pickup, d-2 1.5 km."""
    fleet = [on_the_ground("d-1", 500), on_the_ground("d-2", 1500)]
    async with scheduling(broker, peer, tmp_path, clock, fleet) as service:
        yield service


async def offered(peer: Peer, drone_id: str) -> JobOffered:
    """The next offer, which must be to `drone_id`."""
    offer = (await peer.next(JobOffered)).data
    assert offer.drone_id == drone_id
    return offer


async def test_a_request_goes_to_the_nearest_idle_drone_that_can_fly_it(
    broker: MemoryBroker, peer: Peer, tmp_path: Path, clock: ManualClock
) -> None:
    fleet = [
        on_the_ground("d-drained", 100, energy_wh=20.0),
        on_the_ground("d-busy", 150, availability=Availability.BUSY),
        on_the_ground("d-offline", 200),
        on_the_ground("d-silent", 250),
        on_the_ground("d-light", 300, max_payload_kg=1.0),
        on_the_ground("d-far", 2000),
        on_the_ground("d-near", 800),
    ]
    async with scheduling(
        broker,
        peer,
        tmp_path,
        clock,
        fleet,
        offline=frozenset({"d-offline"}),
        silent=frozenset({"d-silent"}),
    ):
        [request] = await peer.send(a_delivery_request(package=a_package(weight_kg=1.2)))
        offer = await peer.next(JobOffered)

    assert offer.data.drone_id == "d-near"
    assert (offer.data.delivery_id, offer.data.payload_kg) == (DELIVERY, 1.2)
    assert (offer.data.pickup, offer.data.dropoff) == (request.data.pickup, request.data.dropoff)
    assert offer.data.answer_by == clock.now() + timedelta(seconds=OFFER_TIMEOUT_S)
    assert (offer.correlationid, offer.causationid) == (DELIVERY, request.id)
    assert offer.source == "/cloud/scheduler"


async def test_a_drone_heard_just_after_a_start_gets_the_waiting_delivery_at_the_next_tick(
    broker: MemoryBroker, peer: Peer, tmp_path: Path, clock: ManualClock
) -> None:
    """Test that the grace after a start holds back judging silence, not placing deliveries.

    With a timeout of 10 real seconds, a delivery due within the grace got no offer at all.
    """
    fleet = [on_the_ground("d-1", 500)]
    async with scheduling(broker, peer, tmp_path, clock, fleet, silent=frozenset({"d-1"})):
        await peer.send(a_delivery_request())
        await peer.send(a_telemetry_report(drone_id="d-1", position=fleet[0].position, job_id=None))
        await advance(clock, SETTINGS.tick_s)  # well within the grace (half the offer timeout)
        offer = await offered(peer, "d-1")

    assert offer.delivery_id == DELIVERY


@pytest.mark.usefixtures("scheduler")
async def test_a_rejected_offer_goes_to_the_next_nearest_drone(peer: Peer) -> None:
    await peer.send(a_delivery_request())
    first = await offered(peer, "d-1")

    await peer.send(
        a_job_rejection(drone_id="d-1", job_id=first.job_id, reason=JobRejectionReason.BUSY)
    )

    second = await offered(peer, "d-2")
    assert second.delivery_id == DELIVERY
    assert second.job_id != first.job_id


@pytest.mark.usefixtures("scheduler")
async def test_an_accepted_offer_assigns_the_drone(peer: Peer) -> None:
    await peer.send(a_delivery_request())
    offer = await offered(peer, "d-1")

    [accepted] = await peer.send(a_job_acceptance(drone_id="d-1", job_id=offer.job_id))

    assigned = await peer.next(DroneAssigned)
    assert (assigned.data.delivery_id, assigned.data.job_id) == (DELIVERY, offer.job_id)
    assert assigned.data.drone_id == "d-1"
    assert assigned.causationid == accepted.id


@pytest.mark.usefixtures("scheduler")
async def test_an_offer_unanswered_past_its_grace_is_cancelled_and_offered_to_the_next_drone(
    peer: Peer, clock: ManualClock
) -> None:
    """Test that with no answer by `answer_by` plus half the timeout the next drone is asked."""
    await peer.send(a_delivery_request())
    first = await offered(peer, "d-1")

    await advance(clock, OFFER_TIMEOUT_S * 1.5 + 1)

    cancelled = (await peer.next(JobCancelled)).data
    assert (cancelled.drone_id, cancelled.job_id) == ("d-1", first.job_id)
    assert cancelled.reason == "offer timed out: no answer in time"
    second = await offered(peer, "d-2")
    assert second.delivery_id == DELIVERY


@pytest.mark.usefixtures("scheduler")
async def test_an_accept_within_the_grace_after_answer_by_still_assigns_the_drone(
    peer: Peer, clock: ManualClock
) -> None:
    await peer.send(a_delivery_request())
    offer = await offered(peer, "d-1")

    await advance(clock, OFFER_TIMEOUT_S * 1.5)  # answer_by passed, the grace not yet
    await peer.send(a_job_acceptance(drone_id="d-1", job_id=offer.job_id))

    assert (await peer.next(DroneAssigned)).data.drone_id == "d-1"
    assert not peer.heard(JobCancelled)


@pytest.mark.usefixtures("scheduler")
async def test_an_accept_after_the_offer_timed_out_is_answered_with_a_cancellation(
    peer: Peer, clock: ManualClock
) -> None:
    await peer.send(a_delivery_request())
    late = await offered(peer, "d-1")
    await advance(clock, OFFER_TIMEOUT_S * 1.5 + 1)
    await peer.next(JobCancelled)
    await offered(peer, "d-2")

    await peer.send(a_job_acceptance(drone_id="d-1", job_id=late.job_id))

    cancelled = (await peer.next(JobCancelled)).data
    assert (cancelled.drone_id, cancelled.job_id) == ("d-1", late.job_id)
    assert cancelled.reason == "the offer was withdrawn before it was accepted"
    assert not peer.heard(DroneAssigned)


@pytest.mark.parametrize("same_event_id", [True, False], ids=["redelivered", "resent"])
async def test_a_request_heard_twice_yields_one_offer(
    scheduler: SchedulerService, peer: Peer, *, same_event_id: bool
) -> None:
    """Test that a request redelivered (same event id) or resent by its client is offered once.

    The offer of a later request comes after anything the second copy could have caused.
    """
    request = an_envelope(a_delivery_request())
    again = request if same_event_id else an_envelope(a_delivery_request())
    later = a_delivery_request(delivery_id="del-0002", package=a_package(package_id="pkg-0002"))
    await peer.send(request, again, later)

    await peer.next(JobOffered, lambda o: o.delivery_id == "del-0002")

    offers = [(o.delivery_id, o.drone_id) for o in peer.heard(JobOffered)]
    assert offers == [(DELIVERY, "d-1"), ("del-0002", "d-2")]
    assert scheduler.bus.stats.duplicates == (1 if same_event_id else 0)


@pytest.mark.usefixtures("scheduler")
async def test_a_job_update_from_a_drone_that_does_not_hold_the_job_is_dead_lettered(
    peer: Peer,
) -> None:
    await peer.send(a_delivery_request())
    offer = await offered(peer, "d-1")

    [impostor] = await peer.send(a_job_acceptance(drone_id="d-2", job_id=offer.job_id))

    letter = (await peer.next(DeadLetter)).data
    assert (letter.reason, letter.event_id) == ("not_assigned", impostor.id)
    assert letter.detail == f"job {offer.job_id} is assigned to d-1, not d-2"
    await peer.send(a_job_acceptance(drone_id="d-1", job_id=offer.job_id))
    assigned = await peer.next(DroneAssigned)
    assert assigned.data.drone_id == "d-1"
    assert len(peer.heard(DroneAssigned)) == 1


async def test_a_job_without_progress_is_withdrawn_and_offered_again_once_its_drone_answers(
    scheduler: SchedulerService, peer: Peer, clock: ManualClock
) -> None:
    await peer.send(a_delivery_request())
    offer = await offered(peer, "d-1")
    await peer.send(a_job_acceptance(drone_id="d-1", job_id=offer.job_id))
    await peer.next(DroneAssigned)

    await advance(clock, STEP_TIMEOUT_S + 1)

    withdrawn = (await peer.next(JobCancelled)).data
    assert (withdrawn.drone_id, withdrawn.job_id) == ("d-1", offer.job_id)
    assert withdrawn.reason == f"timed out: no progress for {STEP_TIMEOUT_S:g} s"
    # Only the silent drone knows where the package is: the delivery waits for its word.
    booking = scheduler.store.booking(DELIVERY)
    assert booking is not None
    assert booking.plan is Plan.WITHDRAWING
    await peer.send(
        a_job_failure(
            drone_id="d-1",
            job_id=offer.job_id,
            reason=f"cancelled: {withdrawn.reason}",
            package_state=PackageState.NOT_LOADED,
        )
    )
    again = await offered(peer, "d-2")
    assert again.delivery_id == DELIVERY


async def test_a_delivery_no_drone_can_fly_is_unassignable_at_its_deadline(
    scheduler: SchedulerService, peer: Peer, clock: ManualClock
) -> None:
    """Test that it waits until its deadline, and meanwhile holds up no other delivery."""
    deadline_s = 300
    too_far = from_enu(PICKUP, 40_000, 0)
    await peer.send(
        a_delivery_request(
            pickup=too_far, dropoff=too_far, deadline=clock.now() + timedelta(seconds=deadline_s)
        ),
        a_delivery_request(delivery_id="del-0002", package=a_package(package_id="pkg-0002")),
    )
    await peer.next(JobOffered, lambda o: o.delivery_id == "del-0002")

    await advance(clock, deadline_s - 1)
    booking = scheduler.store.booking(DELIVERY)
    assert booking is not None
    assert booking.plan is Plan.WAITING
    await advance(clock, 2)

    unassignable = (await peer.next(DeliveryUnassignable)).data
    assert unassignable.delivery_id == DELIVERY
    assert unassignable.reason == "no drone took the delivery before its deadline"
    assert DELIVERY not in {o.delivery_id for o in peer.heard(JobOffered)}


@pytest.mark.usefixtures("scheduler")
async def test_a_package_rejected_after_assignment_cancels_the_job(peer: Peer) -> None:
    await peer.send(a_delivery_request())
    offer = await offered(peer, "d-1")
    await peer.send(a_job_acceptance(drone_id="d-1", job_id=offer.job_id))
    await peer.next(DroneAssigned)

    await peer.send(a_package_rejection())

    cancelled = (await peer.next(JobCancelled)).data
    assert (cancelled.drone_id, cancelled.job_id) == ("d-1", offer.job_id)
    assert cancelled.reason == "package rejected: overweight"
