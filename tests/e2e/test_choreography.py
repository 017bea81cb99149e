"""One delivery and many, end to end: three services and simulated drones on a real broker.

Nothing here plays a service: requests go in as a client sends them, and every assertion
is on what the services published (the retained status, job traffic) or recorded.
"""

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from bus.cancelling import raise_if_cancelled
from cloud.delivery.store import DeliveryStore
from cloud.package.rules import PackageStatus
from cloud.package.store import PackageStore
from contracts import Envelope, Event, decode
from contracts.events import (
    Availability,
    DeliveryCancellationRequested,
    DeliveryRequested,
    DeliveryStatusChanged,
    DeliveryUnassignable,
    DroneAssigned,
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
    PackageRejected,
    PackageState,
    PackageStranded,
    TelemetryReported,
)
from contracts.ids import Location
from contracts.requests import delivery_request
from contracts.states import DeliveryStage
from firmware_sim.failures import Failure
from flight_model.geo import haversine_m
from tests.brokers import TestBroker
from tests.probe import Probe, probing, publish_events
from tests.system import ROOT, Drone, near, running_system, scheduler_settings
from world.fleet import VehicleLink

pytestmark = pytest.mark.e2e

_S = DeliveryStage
FULL_JOURNEY = [
    _S.REQUESTED,
    _S.SCHEDULED,
    _S.HEADED_TO_PICKUP,
    _S.PICKED_UP,
    _S.HEADED_TO_DROPOFF,
    _S.DELIVERED,
]
WAIT_S = 30


def a_request(
    pickup: Location | None = None,
    dropoff: Location | None = None,
    **overrides: Any,
) -> DeliveryRequested:
    return delivery_request(
        pickup=pickup or near(600, 300),
        dropoff=dropoff or near(1200, -300),
        weight_kg=overrides.pop("weight_kg", 1.0),
        **overrides,
    )


async def send(url: str, *events: Event) -> None:
    """Publish as a client does: each event correlated with its delivery."""
    await publish_events(
        url,
        [
            Envelope[Event].new(e, source="/clients/test", correlationid=e.delivery_id)  # type: ignore[attr-defined]
            for e in events
        ],
    )


def of_delivery(delivery_id: str, stage: DeliveryStage | None = None) -> Any:
    return lambda e: e.delivery_id == delivery_id and (stage is None or e.stage == stage)


async def reached(probe: Probe, delivery_id: str, stage: DeliveryStage) -> DeliveryStatusChanged:
    [status] = await probe.wait_for(
        DeliveryStatusChanged, of_delivery(delivery_id, stage), timeout=WAIT_S
    )
    return status


def journey(stages: Iterable[DeliveryStage]) -> list[DeliveryStage]:
    """Stages in order with repeats (a new ETA, a refused cancel) collapsed."""
    collapsed: list[DeliveryStage] = []
    for stage in stages:
        if not collapsed or collapsed[-1] != stage:
            collapsed.append(stage)
    return collapsed


async def back_home_and_idle(probe: Probe, home: Location, *, after: int) -> None:
    await probe.wait_for(
        DroneState,
        lambda s: (
            s.job_id is None
            and s.availability is Availability.IDLE
            and haversine_m(s.position, home) < 20
        ),
        after=after,
        timeout=WAIT_S,
    )


def statuses(probe: Probe, delivery_id: str) -> list[DeliveryStatusChanged]:
    return probe.of(DeliveryStatusChanged, of_delivery(delivery_id))


def where_deliveries_stand(probe: Probe) -> str:
    """The last stage of every delivery and why jobs failed: what a timed-out test saw."""
    last = {s.delivery_id: s.stage.value for s in probe.of(DeliveryStatusChanged)}
    failed = Counter(f.reason for f in probe.of(JobFailed))
    unassignable = Counter(u.reason for u in probe.of(DeliveryUnassignable))
    expired = len(probe.of(JobCancelled))
    return (
        f"stages {dict(Counter(last.values()))}; jobs failed {dict(failed)}; "
        f"unassignable {dict(unassignable)}; jobs cancelled {expired}"
    )


async def test_one_delivery_goes_through_every_stage_in_order(
    broker: TestBroker, tmp_path: Path, flight_link: VehicleLink
) -> None:
    request = a_request()
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {"d-1": Drone()}, link=flight_link) as system,
    ):
        await send(broker.url, request)
        delivered = await reached(probe, request.delivery_id, _S.DELIVERED)
        history = DeliveryStore(system.services["delivery"].bus.db).history(request.delivery_id)
        package = PackageStore(system.services["package"].bus.db).of_delivery(request.delivery_id)
        async with probing(broker.url, [f"{ROOT}/deliveries/+/status"]) as late:
            [retained] = await late.wait_for(DeliveryStatusChanged)

    assert journey(stage for _, stage, _ in history) == FULL_JOURNEY
    assert [version for version, _, _ in history] == list(range(1, len(history) + 1))
    published = statuses(probe, request.delivery_id)
    assert [s.version for s in published] == [v for v, _, _ in history]
    assert retained == delivered
    assert delivered.drone_id == "d-1"
    assert delivered.last_known_location is not None
    assert haversine_m(delivered.last_known_location, request.dropoff) < 20
    assert package is not None
    assert package.status is PackageStatus.DELIVERED
    assert len(probe.of(JobSucceeded)) == 1


async def test_a_package_rejected_after_assignment_cancels_the_job_and_sends_the_drone_home(
    broker: TestBroker, tmp_path: Path, flight_link: VehicleLink
) -> None:
    home = near(0, 0)
    request = a_request(pickup=near(2500, 0), tag="hazmat")
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {"d-1": Drone(home)}, link=flight_link) as system,
    ):
        await system.stop("package")  # its session keeps the request for it
        await send(broker.url, request)
        [assigned] = await probe.wait_for(DroneAssigned, timeout=WAIT_S)
        mark = probe.mark()
        system.start("package")
        [rejected] = await probe.wait_for(PackageRejected, timeout=WAIT_S)
        [cancelled] = await probe.wait_for(JobCancelled, timeout=WAIT_S)
        final = await reached(probe, request.delivery_id, _S.REJECTED)
        await back_home_and_idle(probe, home, after=mark)

    assert rejected.reason == "tag_refused"
    assert cancelled.job_id == assigned.job_id
    assert final.reason is not None
    assert "tag_refused" in final.reason
    assert not probe.of(JobSucceeded)
    assert _S.PICKED_UP not in journey(s.stage for s in statuses(probe, request.delivery_id))


async def test_a_delivery_waits_for_a_busy_drone_and_is_assigned_when_it_frees_up(
    broker: TestBroker, tmp_path: Path, flight_link: VehicleLink
) -> None:
    first, second = a_request(), a_request(pickup=near(-500, 200), dropoff=near(-900, 700))
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {"d-1": Drone()}, link=flight_link),
    ):
        await send(broker.url, first, second)
        await reached(probe, first.delivery_id, _S.DELIVERED)
        await reached(probe, second.delivery_id, _S.DELIVERED)

    order = [
        (type(e.data), e.data.delivery_id)
        for e in probe.seen
        if isinstance(e.data, DroneAssigned | JobSucceeded)
    ]
    assert order == [
        (DroneAssigned, first.delivery_id),
        (JobSucceeded, first.delivery_id),
        (DroneAssigned, second.delivery_id),
        (JobSucceeded, second.delivery_id),
    ]


def a_fake_state(drone_id: str) -> DroneState:
    return DroneState(
        drone_id=drone_id,
        availability=Availability.IDLE,
        battery_pct=100.0,
        energy_wh=89.0,
        position=near(0, 0),
        home=near(0, 0),
        max_payload_kg=2.5,
    )


def a_fake_report(drone_id: str) -> TelemetryReported:
    return TelemetryReported(
        drone_id=drone_id,
        session=1,
        position=near(0, 0),
        ground_speed_mps=0.0,
        climb_rate_mps=0.0,
        heading_deg=0.0,
        battery_pct=100.0,
        phase="landed",
    )


async def publish_as_drone(
    client: aiomqtt.Client, data: Event, correlationid: str | None = None
) -> None:
    envelope = Envelope[Event].new(
        data, source=f"/drones/{data.subject()}", correlationid=correlationid
    )
    await client.publish(data.resolved_topic(ROOT), envelope.to_json(), qos=1)


async def report_alive(client: aiomqtt.Client, drone_ids: list[str]) -> None:
    for drone_id in drone_ids:
        await publish_as_drone(client, DroneStatus(drone_id=drone_id, link=Link.ONLINE, session=1))
        await publish_as_drone(client, a_fake_state(drone_id))
    while True:  # a report every real 50 ms, as live drones do; stops when cancelled
        for drone_id in drone_ids:
            await publish_as_drone(client, a_fake_report(drone_id))
        raise_if_cancelled()  # aiomqtt's publish may swallow a cancellation (bus.py)
        await asyncio.sleep(0.05)


Answer = Callable[[JobOffered], Event | list[Event]]
CancelAnswer = Callable[[JobCancelled], Event | list[Event]]


def refuse(offer: JobOffered) -> Event:
    return JobRejected(
        drone_id=offer.drone_id,
        job_id=offer.job_id,
        delivery_id=offer.delivery_id,
        reason=JobRejectionReason.BUSY,
    )


def accept_and_go_silent(offer: JobOffered) -> Event:
    return JobAccepted(drone_id=offer.drone_id, job_id=offer.job_id, delivery_id=offer.delivery_id)


def confirm_cancel(cancel: JobCancelled) -> Event:
    """What a drone without the package answers to a cancellation (as the agent does)."""
    return JobFailed(
        drone_id=cancel.drone_id,
        job_id=cancel.job_id,
        delivery_id=cancel.delivery_id,
        reason=f"cancelled: {cancel.reason}",
        package_state=PackageState.NOT_LOADED,
    )


def fly_past_pickup_and_go_silent(offer: JobOffered) -> list[Event]:
    job = JobAccepted(drone_id=offer.drone_id, job_id=offer.job_id, delivery_id=offer.delivery_id)
    phases = [JobPhase.TO_PICKUP, JobPhase.LOADING, JobPhase.TO_DROPOFF]
    return [job, *(JobProgressed(**job.model_dump(), phase=phase) for phase in phases)]


def refuse_then_deliver(cancel: JobCancelled) -> list[Event]:
    """A drone back in touch with the package on board: it refuses, then reports it delivered."""
    refusal = JobCancellationRefused(
        drone_id=cancel.drone_id,
        job_id=cancel.job_id,
        delivery_id=cancel.delivery_id,
        reason="package on_board",
    )
    ids = refusal.model_dump(include={"drone_id", "job_id", "delivery_id"})
    return [refusal, JobSucceeded(**ids)]


async def answer_offers(
    client: aiomqtt.Client, answer: Answer, on_cancel: CancelAnswer | None
) -> None:
    async for message in client.messages:
        event = decode(str(message.topic), bytes(message.payload), root=ROOT).data
        if isinstance(event, JobOffered):
            replies = answer(event)
        elif isinstance(event, JobCancelled) and on_cancel is not None:
            replies = on_cancel(event)
        else:
            continue  # amqtt replays other clients' retained topics on connect
        for reply in replies if isinstance(replies, list) else [replies]:
            await publish_as_drone(client, reply, correlationid=event.delivery_id)


@asynccontextmanager
async def fake_drones(
    broker: TestBroker,
    drone_ids: list[str],
    answer: Answer,
    *,
    on_cancel: CancelAnswer | None = None,
) -> AsyncIterator[None]:
    """Drones that look idle, able and alive, answer every offer with `answer` and every
    cancellation with `on_cancel` (or never)."""
    async with broker.client(identifier="fake-drones") as client:
        await client.subscribe(f"{ROOT}/drones/+/jobs/+/offer", qos=1)
        await client.subscribe(f"{ROOT}/drones/+/jobs/+/cancel", qos=1)
        tasks = [
            asyncio.create_task(report_alive(client, drone_ids)),
            asyncio.create_task(answer_offers(client, answer, on_cancel)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if not isinstance(outcome, asyncio.CancelledError | None):
                    raise outcome


async def test_a_delivery_every_drone_refuses_is_unassignable_at_its_deadline(
    broker: TestBroker, tmp_path: Path
) -> None:
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {}) as system,
        fake_drones(broker, ["f-1", "f-2"], refuse),
    ):
        deadline = system.clock.now() + timedelta(seconds=300)
        request = a_request(deadline=deadline)
        await send(broker.url, request)
        [unassignable] = await probe.wait_for(DeliveryUnassignable, timeout=WAIT_S)
        seen_at = system.clock.now()
        await reached(probe, request.delivery_id, _S.UNASSIGNABLE)

    assert seen_at >= deadline
    assert unassignable.delivery_id == request.delivery_id
    assert {o.drone_id for o in probe.of(JobOffered)} == {"f-1", "f-2"}
    assert not probe.of(DroneAssigned)


async def test_a_job_without_progress_is_withdrawn_and_rescheduled_once_its_drone_answers(
    broker: TestBroker, tmp_path: Path
) -> None:
    settings = scheduler_settings(step_timeout_s=300)
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {}, scheduler=settings),
        fake_drones(broker, ["f-1", "f-2"], accept_and_go_silent, on_cancel=confirm_cancel),
    ):
        request = a_request()
        await send(broker.url, request)
        [assigned] = await probe.wait_for(DroneAssigned, timeout=WAIT_S)
        [withdrawn] = await probe.wait_for(JobCancelled, timeout=WAIT_S)
        rescheduled = await reached(probe, request.delivery_id, _S.RESCHEDULED)
        offers = await probe.wait_for(JobOffered, count=2, timeout=WAIT_S)

    assert withdrawn.job_id == assigned.job_id
    assert withdrawn.reason.startswith("timed out")
    assert rescheduled.drone_id is None
    assert rescheduled.reason is not None
    assert "timed out" in rescheduled.reason
    assert offers[1].drone_id != assigned.drone_id  # offered again, to the other drone


async def test_a_drone_silent_since_it_accepted_keeps_its_delivery_until_the_deadline(
    broker: TestBroker, tmp_path: Path
) -> None:
    # It may have picked the package up meanwhile: giving the delivery to another drone could
    # deliver it twice. Without its answer the delivery ends at its deadline.
    settings = scheduler_settings(step_timeout_s=300)
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {}, scheduler=settings) as system,
        fake_drones(broker, ["f-1", "f-2"], accept_and_go_silent),
    ):
        request = a_request(deadline=system.clock.now() + timedelta(seconds=1200))
        await send(broker.url, request)
        [withdrawn] = await probe.wait_for(JobCancelled, timeout=WAIT_S)
        ended = await reached(probe, request.delivery_id, _S.UNASSIGNABLE)

    assert withdrawn.reason.startswith("timed out")
    assert ended.reason is not None
    assert "silent" in ended.reason
    assert len(probe.of(JobOffered)) == 1  # never offered to the other drone
    assert _S.RESCHEDULED not in {s.stage for s in probe.of(DeliveryStatusChanged)}


async def test_a_drone_silent_with_the_package_keeps_it_and_its_late_report_delivers_it(
    broker: TestBroker, tmp_path: Path
) -> None:
    settings = scheduler_settings(step_timeout_s=300)
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {}, scheduler=settings),
        fake_drones(
            broker, ["f-1", "f-2"], fly_past_pickup_and_go_silent, on_cancel=refuse_then_deliver
        ),
    ):
        request = a_request()
        await send(broker.url, request)
        [withdrawn] = await probe.wait_for(JobCancelled, timeout=WAIT_S)
        await reached(probe, request.delivery_id, _S.DELIVERED)

    statuses = probe.of(DeliveryStatusChanged, of_delivery(request.delivery_id))
    [told] = [s for s in statuses if s.reason and "no word from drone" in s.reason]
    assert withdrawn.reason.startswith("timed out")
    assert told.stage is _S.HEADED_TO_DROPOFF
    assert _S.FAILED not in {s.stage for s in statuses}
    assert len(probe.of(JobOffered)) == 1  # the package never went to another drone


async def test_a_drone_failing_before_pickup_is_replaced_and_the_delivery_still_arrives(
    broker: TestBroker, tmp_path: Path, flight_link: VehicleLink
) -> None:
    pickup = near(1500, 0)
    motor = Failure(component="motor", kind="off", at_s=20.0)
    drones = {"d-1": Drone(near(1300, 0), [motor]), "d-2": Drone(near(0, 0))}
    request = a_request(pickup=pickup, dropoff=near(1500, 800))
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, drones, link=flight_link),
    ):
        await send(broker.url, request)
        delivered = await reached(probe, request.delivery_id, _S.DELIVERED)

    [failed] = probe.of(JobFailed)
    assert failed.drone_id == "d-1"
    assert failed.package_state == "not_loaded"
    assert journey(s.stage for s in statuses(probe, request.delivery_id)) == [
        _S.REQUESTED,
        _S.SCHEDULED,
        _S.HEADED_TO_PICKUP,
        _S.RESCHEDULED,
        _S.SCHEDULED,
        _S.HEADED_TO_PICKUP,
        _S.PICKED_UP,
        _S.HEADED_TO_DROPOFF,
        _S.DELIVERED,
    ]
    assert delivered.drone_id == "d-2"
    assert [a.drone_id for a in probe.of(DroneAssigned)] == ["d-1", "d-2"]


async def test_a_drone_failing_after_pickup_fails_the_delivery_and_strands_the_package(
    broker: TestBroker, tmp_path: Path, flight_link: VehicleLink
) -> None:
    motor = Failure(component="motor", kind="off", at_s=200.0)  # armed seconds: past pickup
    request = a_request(pickup=near(300, 0), dropoff=near(2300, 0))
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(
            broker.url, tmp_path, {"d-1": Drone(near(0, 0), [motor])}, link=flight_link
        ) as system,
    ):
        await send(broker.url, request)
        failed = await reached(probe, request.delivery_id, _S.FAILED)
        [stranded] = await probe.wait_for(PackageStranded, timeout=WAIT_S)
        package = PackageStore(system.services["package"].bus.db).of_delivery(request.delivery_id)

    [job_failed] = probe.of(JobFailed)
    assert job_failed.package_state == "on_board"
    assert failed.last_known_location is not None
    assert stranded.location == job_failed.location
    # Somewhere on the way: away from both ends of the leg.
    assert haversine_m(stranded.location, request.pickup) > 100
    assert haversine_m(stranded.location, request.dropoff) > 100
    assert package is not None
    assert package.status is PackageStatus.STRANDED
    assert package.location == stranded.location
    assert not probe.of(JobSucceeded)


async def test_a_client_cancel_before_pickup_is_granted_and_the_drone_flies_home(
    broker: TestBroker, tmp_path: Path, flight_link: VehicleLink
) -> None:
    home = near(0, 0)
    request = a_request(pickup=near(2500, 0))
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {"d-1": Drone(home)}, link=flight_link) as system,
    ):
        await send(broker.url, request)
        await reached(probe, request.delivery_id, _S.HEADED_TO_PICKUP)
        mark = probe.mark()
        await send(broker.url, DeliveryCancellationRequested(delivery_id=request.delivery_id))
        cancelled = await reached(probe, request.delivery_id, _S.CANCELLED)
        await probe.wait_for(JobCancelled, timeout=WAIT_S)
        await back_home_and_idle(probe, home, after=mark)
        package = PackageStore(system.services["package"].bus.db).of_delivery(request.delivery_id)

    assert cancelled.reason is not None
    assert "cancelled by the client" in cancelled.reason
    assert package is not None
    assert package.status is PackageStatus.RELEASED
    assert not probe.of(JobSucceeded)


async def test_a_client_cancel_after_pickup_is_refused_with_a_reason_and_the_package_arrives(
    broker: TestBroker, tmp_path: Path, flight_link: VehicleLink
) -> None:
    request = a_request(pickup=near(200, 0), dropoff=near(2200, 0))
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, {"d-1": Drone()}, link=flight_link),
    ):
        await send(broker.url, request)
        picked = await reached(probe, request.delivery_id, _S.HEADED_TO_DROPOFF)
        await send(broker.url, DeliveryCancellationRequested(delivery_id=request.delivery_id))
        [refusal] = await probe.wait_for(
            DeliveryStatusChanged,
            lambda s: s.delivery_id == request.delivery_id and s.reason is not None,
            timeout=WAIT_S,
        )
        await reached(probe, request.delivery_id, _S.DELIVERED)

    assert refusal.stage == _S.HEADED_TO_DROPOFF
    assert refusal.version > picked.version
    assert refusal.reason is not None
    assert refusal.reason.startswith("cancellation refused")
    assert not probe.of(JobCancelled)


async def test_fifty_concurrent_deliveries_with_ten_drones_are_all_delivered_once(
    broker: TestBroker, tmp_path: Path, flight_link: VehicleLink
) -> None:
    drones = {f"d-{i:02d}": Drone(near(150 * (i % 4), 150 * (i // 4))) for i in range(10)}
    requests = [
        a_request(
            pickup=near(100 * (i % 7) - 300, 90 * (i % 5)),
            dropoff=near(-80 * (i % 6), 120 * (i % 4) - 200),
            delivery_id=f"del-{i:02d}",
        )
        for i in range(50)
    ]
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, drones, link=flight_link),
    ):
        await send(broker.url, *requests)
        try:
            await probe.wait_for(
                DeliveryStatusChanged, lambda s: s.stage == _S.DELIVERED, count=50, timeout=90
            )
        except TimeoutError:
            pytest.fail(f"not all delivered within 90 s: {where_deliveries_stand(probe)}")

    delivered = {s.delivery_id for s in probe.of(DeliveryStatusChanged) if s.stage == _S.DELIVERED}
    assert delivered == {r.delivery_id for r in requests}
    # Each delivery succeeded by one job: one JobSucceeded, however many copies at-least-once
    # delivery brought.
    events = probe.distinct()
    succeeded = [e.data for e in events if isinstance(e.data, JobSucceeded)]
    assert sorted(s.delivery_id for s in succeeded) == sorted(delivered)
    # A drone's own updates arrive in its order: a job starts only after the last one ended.
    open_job: dict[str, str | None] = defaultdict(lambda: None)
    for update in [
        e.data for e in events if isinstance(e.data, JobAccepted | JobSucceeded | JobFailed)
    ]:
        if isinstance(update, JobAccepted):
            assert open_job[update.drone_id] is None, f"{update.drone_id} holds two jobs"
            open_job[update.drone_id] = update.job_id
        else:
            open_job[update.drone_id] = None
    # Every event about a delivery carries its id as the correlation id.
    for envelope in probe.seen:
        delivery_id = getattr(envelope.data, "delivery_id", None)
        if delivery_id is not None:
            assert envelope.correlationid == delivery_id, envelope.type
