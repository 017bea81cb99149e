"""The Delivery service fed events directly, in orders a broker may deliver them.

No broker: each message goes through `Bus.receive` (decode, inbox dedupe, handler, outbox)
exactly as one from the network would, on a real SQLite file.
"""

from pathlib import Path

import pytest

from bus.bus import Bus
from bus.memory_transport import MemoryBroker
from bus.store import open_database
from cloud.delivery.service import DeliveryService
from cloud.delivery.store import DeliveryStore
from contracts import Envelope, Event, decode
from contracts.events import (
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
from flight_model.clock import ManualClock
from tests.builders import source_of
from tests.system import near

_S = DeliveryStage
DELIVERY, JOB, DRONE = "del-1", "job-1", "d-1"


@pytest.fixture
def service(tmp_path: Path) -> DeliveryService:
    db = open_database(tmp_path / "d.db")
    bus = Bus(
        component="delivery",
        transport=MemoryBroker().transport(),
        db=db,
        source="/cloud/delivery",
    )
    return DeliveryService(bus, ManualClock())


def envelope(data: Event, source: str | None = None) -> Envelope[Event]:
    return Envelope[Event].new(data, source=source or source_of(data), correlationid=DELIVERY)


async def feed(service: DeliveryService, *envelopes: Envelope[Event]) -> None:
    for e in envelopes:
        await service.bus.receive(e.data.resolved_topic(), e.to_json())


def stages(service: DeliveryService) -> list[DeliveryStage]:
    return [stage for _, stage, _ in DeliveryStore(service.bus.db).history(DELIVERY)]


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
    service: DeliveryService,
) -> None:
    await feed(service, requested(), ready(), progress(JobPhase.TO_PICKUP), assigned())
    assert stages(service) == [_S.REQUESTED, _S.SCHEDULED, _S.HEADED_TO_PICKUP]


async def test_a_late_earlier_stage_and_duplicates_change_nothing(
    service: DeliveryService,
) -> None:
    to_pickup = progress(JobPhase.TO_PICKUP)
    await feed(service, requested(), ready(), assigned(), to_pickup)
    await feed(service, progress(JobPhase.TO_DROPOFF), success())
    before = stages(service)
    await feed(service, to_pickup, progress(JobPhase.TO_PICKUP), assigned(), success())
    assert stages(service) == before
    assert before == [
        _S.REQUESTED,
        _S.SCHEDULED,
        _S.HEADED_TO_PICKUP,
        _S.PICKED_UP,
        _S.HEADED_TO_DROPOFF,
        _S.DELIVERED,
    ]
    assert service.bus.stats.duplicates == 1  # the same event id again: not even handled


async def test_events_before_the_request_still_build_the_delivery(
    service: DeliveryService,
) -> None:
    await feed(service, assigned(), ready(), requested())
    assert stages(service) == [_S.SCHEDULED]
    tracked = DeliveryStore(service.bus.db).get(DELIVERY)
    assert tracked is not None
    assert tracked.pickup is not None  # the late request still filled in what it carries


async def test_an_update_from_another_drone_for_the_job_is_dead_lettered(
    service: DeliveryService,
) -> None:
    await feed(service, requested(), ready(), assigned())
    impostor = envelope(JobSucceeded(drone_id="d-9", job_id=JOB, delivery_id=DELIVERY))
    await feed(service, impostor)

    assert stages(service)[-1] == _S.SCHEDULED
    [(reason, detail, event_id)] = service.bus.db.execute(
        "SELECT reason, detail, event_id FROM bus_dead_letters"
    ).fetchall()
    assert (reason, event_id) == ("not_assigned", impostor.id)
    assert detail == f"job {JOB} is assigned to {DRONE}, not d-9"


def traced(service: DeliveryService, request_id: str) -> DeliveryTraced:
    """The answer the service queued in its outbox for `request_id`."""
    for row in service.bus.store.pending(1000):
        data = decode(row.topic, row.payload).data
        if isinstance(data, DeliveryTraced) and data.request_id == request_id:
            return data
    raise AssertionError(request_id)


async def test_the_journal_keeps_each_event_once_and_answers_a_trace_request(
    service: DeliveryService,
) -> None:
    request, ready_, assigned_ = requested(), ready(), assigned()
    await feed(service, request, ready_, request, assigned_, progress(JobPhase.TO_PICKUP))
    ask = DeliveryTraceRequested(delivery_id=DELIVERY, request_id="tr-1")
    await feed(service, Envelope[Event].new(ask, source="/clients/cli"))

    trace = traced(service, "tr-1")
    fed = {request.id, ready_.id, assigned_.id}
    assert [e.id for e in trace.entries if e.id in fed] == [request.id, ready_.id, assigned_.id]
    statuses = [e for e in trace.entries if e.source == service.bus.source]
    assert [e.summary for e in statuses][-1] == f"v3 {DRONE} {JOB} HeadedToPickup"
    assert trace.truncated is False


async def test_a_trace_of_an_unknown_delivery_is_empty(service: DeliveryService) -> None:
    ask = DeliveryTraceRequested(delivery_id="del-unknown", request_id="tr-2")
    await feed(service, Envelope[Event].new(ask, source="/clients/cli"))
    assert traced(service, "tr-2").entries == []
