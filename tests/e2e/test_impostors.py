"""Events from whoever may not publish them are refused with a reason, on both brokers.

The broker's ACL is the first line (issue 8 adds it); the services do not rely on it: an event
whose CloudEvents source is not its producer's, or a job update from a drone that does not hold
the job, ends in the consumer's dead-letter queue, and the delivery does not move.
"""

from pathlib import Path

import pytest

from contracts import Envelope, Event
from contracts.events import (
    DeadLetter,
    DeliveryStatusChanged,
    JobAccepted,
    JobOffered,
    PackageReady,
)
from contracts.ids import PackageSize
from contracts.states import DeliveryStage
from tests.brokers import TestBroker
from tests.e2e.test_choreography import a_request, send
from tests.probe import probing, publish_events
from tests.system import ROOT, Drone, running_system

pytestmark = pytest.mark.e2e


async def test_an_event_with_another_producers_source_is_dead_lettered(
    broker: TestBroker, tmp_path: Path
) -> None:
    request = a_request()
    forged = PackageReady(
        package_id="pkg-forged", delivery_id=request.delivery_id, size=PackageSize.SMALL,
        weight_kg=1.0,
    )  # fmt: skip
    async with (
        running_system(broker.url, tmp_path, {}, services=("delivery",)),
        probing(broker.url, [f"{ROOT}/dlq/#", f"{ROOT}/deliveries/+/status"]) as probe,
    ):
        await send(broker.url, request)
        await probe.wait_for(DeliveryStatusChanged, lambda s: s.delivery_id == request.delivery_id)
        await publish_events(broker.url, [Envelope[Event].new(forged, source="/clients/mallory")])

        [letter] = await probe.wait_for(DeadLetter, lambda d: d.reason == "source_mismatch")

    assert letter.component == "delivery"
    assert letter.event_type == PackageReady.type
    assert "must come from /cloud/package, not /clients/mallory" in letter.detail
    statuses = probe.of(DeliveryStatusChanged, lambda s: s.delivery_id == request.delivery_id)
    assert [s.stage for s in statuses] == [DeliveryStage.REQUESTED]  # the forgery moved nothing


async def test_a_job_update_from_a_drone_without_the_job_is_dead_lettered(
    broker: TestBroker, tmp_path: Path
) -> None:
    request = a_request()
    async with (
        running_system(broker.url, tmp_path, {"d-1": Drone()}),
        probing(broker.url, [f"{ROOT}/dlq/#", f"{ROOT}/drones/+/jobs/+/offer"]) as probe,
    ):
        await send(broker.url, request)
        [offer] = await probe.wait_for(JobOffered)
        # Another drone, speaking as itself (its source is right), claims d-1's job.
        claim = JobAccepted(drone_id="d-2", job_id=offer.job_id, delivery_id=offer.delivery_id)
        await publish_events(broker.url, [Envelope[Event].new(claim, source="/drones/d-2")])

        [letter] = await probe.wait_for(DeadLetter, lambda d: d.reason == "not_assigned")

    assert letter.component == "scheduler"
    assert letter.detail == f"job {offer.job_id} is assigned to d-1, not d-2"
