"""The Delivery service fed events directly, in orders a broker may deliver them.

No broker: each message goes through `Bus.receive` (decode, inbox dedupe, handler, outbox)
exactly as one from the network would, on a real SQLite file.
"""

from pathlib import Path

import pytest

from broker.bus import Bus
from broker.store import open_database
from cloud.delivery.service import DeliveryService
from cloud.delivery.store import DeliveryStore
from contracts import Envelope, Event
from contracts.events import (
    DroneAssigned,
    JobPhase,
    JobProgressed,
    JobSucceeded,
    PackageReady,
)
from contracts.ids import PackageSize
from contracts.states import DeliveryStage
from firmware_sim.clock import ManualClock
from murmur.client import delivery_request
from tests.system import near

_S = DeliveryStage
DELIVERY, JOB, DRONE = "del-1", "job-1", "d-1"


@pytest.fixture
def service(tmp_path: Path) -> DeliveryService:
    bus = Bus(component="delivery", url="mqtt://127.0.0.1:1", db=open_database(tmp_path / "d.db"))
    return DeliveryService(bus, ManualClock())


def envelope(data: Event, source: str = "/test") -> Envelope[Event]:
    return Envelope[Event].new(data, source=source, correlationid=DELIVERY)


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


async def test_an_update_from_another_drone_for_the_job_is_ignored(
    service: DeliveryService,
) -> None:
    await feed(service, requested(), ready(), assigned())
    impostor = JobSucceeded(drone_id="d-9", job_id=JOB, delivery_id=DELIVERY)
    await feed(service, envelope(impostor, source="/drones/d-9"))
    assert stages(service)[-1] == _S.SCHEDULED
