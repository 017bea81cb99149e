"""The Delivery service on a memory broker, fed events in orders a broker may deliver them.

Each event is published by a peer as its producer would and reaches the service's handlers
through its bus (decode, inbox dedupe, handler, outbox), on a real SQLite file. The service
handles what arrives in order, so the answer to a trace request sent last says that everything
before it was handled (`settle`).
"""

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bus.memory_transport import MemoryBroker
from cloud.delivery.store import DeliveryStore
from cloud.services import Service
from contracts import Envelope, Event
from contracts.events import (
    DeadLetter,
    DeliveryStatusChanged,
    DeliveryTraced,
    DeliveryTraceRequested,
    DroneAssigned,
    JobPhase,
    JobProgressed,
    JobSucceeded,
    PackageReady,
)
from contracts.ids import PackageSize
from contracts.requests import delivery_request
from contracts.states import DeliveryStage
from tests.builders import source_of
from tests.service.harness import Peer, a_service, running
from tests.system import near

_S = DeliveryStage
DELIVERY, JOB, DRONE = "del-1", "job-1", "d-1"
_settled = itertools.count()


@pytest.fixture
async def service(broker: MemoryBroker, peer: Peer, tmp_path: Path) -> AsyncIterator[Service]:
    """The Delivery service, running; the peer hears its statuses, traces and dead letters."""
    await peer.listen(DeliveryStatusChanged, DeliveryTraced)
    await peer.listen(DeadLetter, component="delivery")
    async with running(a_service(broker, "delivery", tmp_path)) as running_service:
        yield running_service


def envelope(data: Event, source: str | None = None) -> Envelope[Event]:
    return Envelope[Event].new(data, source=source or source_of(data), correlationid=DELIVERY)


async def settle(peer: Peer) -> None:
    """Wait until the service has handled everything sent so far.

    It answers a trace request (of a delivery no test uses) only after them.
    """
    ask = DeliveryTraceRequested(delivery_id="del-settle", request_id=f"settle-{next(_settled)}")
    await peer.send(Envelope[Event].new(ask, source="/clients/cli"))
    await peer.next(DeliveryTraced, lambda t: t.request_id == ask.request_id)


async def feed(peer: Peer, *envelopes: Envelope[Event]) -> None:
    """Publish the events in order, and wait until the service has handled them."""
    await peer.send(*envelopes)
    await settle(peer)


def stages(service: Service) -> list[DeliveryStage]:
    return [stage for _, stage, _ in DeliveryStore(service.bus.db).history(DELIVERY)]


def published(peer: Peer) -> list[DeliveryStage]:
    """The stages of the delivery's statuses the service published, in order."""
    return [s.stage for s in peer.heard(DeliveryStatusChanged, lambda s: s.delivery_id == DELIVERY)]


def requested() -> Envelope[Event]:
    return envelope(
        delivery_request(
            pickup=near(500, 0),
            dropoff=near(900, 0),
            weight_kg=1.0,
            size=PackageSize.SMALL,
            delivery_id=DELIVERY,
        )
    )


def ready() -> Envelope[Event]:
    return envelope(
        PackageReady(package_id="p-1", delivery_id=DELIVERY, size=PackageSize.SMALL, weight_kg=1.0)
    )


def assigned() -> Envelope[Event]:
    return envelope(DroneAssigned(delivery_id=DELIVERY, job_id=JOB, drone_id=DRONE))


def progress(phase: JobPhase) -> Envelope[Event]:
    data = JobProgressed(drone_id=DRONE, job_id=JOB, delivery_id=DELIVERY, phase=phase)
    return envelope(data, source=f"/drones/{DRONE}")


def success() -> Envelope[Event]:
    data = JobSucceeded(drone_id=DRONE, job_id=JOB, delivery_id=DELIVERY)
    return envelope(data, source=f"/drones/{DRONE}")


async def test_a_job_update_that_beats_its_assignment_is_replayed_after_it(
    service: Service, peer: Peer
) -> None:
    await feed(peer, requested(), ready(), progress(JobPhase.TO_PICKUP), assigned())
    assert stages(service) == [_S.REQUESTED, _S.SCHEDULED, _S.HEADED_TO_PICKUP]
    assert published(peer) == stages(service)


async def test_a_late_earlier_stage_and_duplicates_change_nothing(
    service: Service, peer: Peer
) -> None:
    to_pickup = progress(JobPhase.TO_PICKUP)
    await feed(peer, requested(), ready(), assigned(), to_pickup)
    await feed(peer, progress(JobPhase.TO_DROPOFF), success())
    before = stages(service)
    await feed(peer, to_pickup, progress(JobPhase.TO_PICKUP), assigned(), success())
    assert stages(service) == before
    assert before == [
        _S.REQUESTED,
        _S.SCHEDULED,
        _S.HEADED_TO_PICKUP,
        _S.PICKED_UP,
        _S.HEADED_TO_DROPOFF,
        _S.DELIVERED,
    ]
    assert published(peer) == before
    assert service.bus.stats.duplicates == 1  # the same event id again: not even handled


async def test_events_before_the_request_still_build_the_delivery(
    service: Service, peer: Peer
) -> None:
    await feed(peer, assigned(), ready(), requested())
    assert stages(service) == [_S.SCHEDULED]
    tracked = DeliveryStore(service.bus.db).get(DELIVERY)
    assert tracked is not None
    assert tracked.pickup is not None  # the late request still filled in what it carries


async def test_an_update_from_another_drone_for_the_job_is_dead_lettered(
    service: Service, peer: Peer
) -> None:
    await feed(peer, requested(), ready(), assigned())
    impostor = envelope(JobSucceeded(drone_id="d-9", job_id=JOB, delivery_id=DELIVERY))
    await feed(peer, impostor)

    assert stages(service)[-1] == _S.SCHEDULED
    [(reason, detail, event_id)] = service.bus.db.execute(
        "SELECT reason, detail, event_id FROM bus_dead_letters"
    ).fetchall()
    assert (reason, event_id) == ("not_assigned", impostor.id)
    assert detail == f"job {JOB} is assigned to {DRONE}, not d-9"
    letter = (await peer.next(DeadLetter)).data
    assert (letter.reason, letter.event_id, letter.detail) == ("not_assigned", impostor.id, detail)


async def traced(peer: Peer, request_id: str) -> DeliveryTraced:
    """The service's answer to the trace request `request_id`."""
    return (await peer.next(DeliveryTraced, lambda t: t.request_id == request_id)).data


async def test_the_journal_keeps_each_event_once_and_answers_a_trace_request(
    service: Service, peer: Peer
) -> None:
    request, ready_, assigned_ = requested(), ready(), assigned()
    await peer.send(request, ready_, request, assigned_, progress(JobPhase.TO_PICKUP))
    ask = DeliveryTraceRequested(delivery_id=DELIVERY, request_id="tr-1")
    await peer.send(Envelope[Event].new(ask, source="/clients/cli"))

    trace = await traced(peer, "tr-1")
    fed = {request.id, ready_.id, assigned_.id}
    assert [e.id for e in trace.entries if e.id in fed] == [request.id, ready_.id, assigned_.id]
    statuses = [e for e in trace.entries if e.source == service.bus.source]
    assert [e.summary for e in statuses][-1] == f"v3 {DRONE} {JOB} HeadedToPickup"
    assert trace.truncated is False


@pytest.mark.usefixtures("service")
async def test_a_trace_of_an_unknown_delivery_is_empty(peer: Peer) -> None:
    ask = DeliveryTraceRequested(delivery_id="del-unknown", request_id="tr-2")
    await peer.send(Envelope[Event].new(ask, source="/clients/cli"))
    assert (await traced(peer, "tr-2")).entries == []
