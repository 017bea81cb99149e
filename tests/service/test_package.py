"""The Package service on a memory broker: requests in as a client sends them, answers out."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bus.memory_transport import MemoryBroker
from cloud.services import Service
from contracts.events import (
    DeliveryRequested,
    PackageReady,
    PackageRejected,
    PackageRejectionReason,
    PackageState,
    PackageStranded,
)
from contracts.ids import PackageSize
from tests.builders import (
    DELIVERY,
    DROPOFF,
    PACKAGE,
    a_delivery_request,
    a_job_failure,
    a_package,
    an_envelope,
)
from tests.service.harness import Peer, a_service, running

_R = PackageRejectionReason


@pytest.fixture
async def package(broker: MemoryBroker, peer: Peer, tmp_path: Path) -> AsyncIterator[Service]:
    """The Package service, running; the peer hears its answers."""
    await peer.listen(PackageReady, PackageRejected, PackageStranded)
    async with running(a_service(broker, "package", tmp_path)) as service:
        yield service


def another_request(delivery_id: str = "del-0002") -> DeliveryRequested:
    return a_delivery_request(
        delivery_id=delivery_id, package=a_package(package_id=f"pkg-{delivery_id}")
    )


async def test_a_package_the_fleet_carries_is_ready(package: Service, peer: Peer) -> None:
    [request] = await peer.send(a_delivery_request(package=a_package(weight_kg=2.0)))

    ready = await peer.next(PackageReady)

    assert ready.data == PackageReady(
        package_id=PACKAGE, delivery_id=DELIVERY, size=PackageSize.SMALL, weight_kg=2.0
    )
    assert ready.source == package.bus.source == "/cloud/package"
    assert (ready.correlationid, ready.causationid) == (DELIVERY, request.id)


@pytest.mark.parametrize(
    ("request_", "reason", "detail"),
    [
        (
            a_delivery_request(package=a_package(weight_kg=3.0)),
            _R.OVERWEIGHT,
            "3 kg is over the fleet's maximum of 2.5 kg",
        ),
        (
            a_delivery_request(package=a_package(size=PackageSize.LARGE)),
            _R.TOO_LARGE,
            "size large; carried: medium, small",
        ),
        (
            a_delivery_request(package=a_package(tag="hazmat")),
            _R.TAG_REFUSED,
            "tag 'hazmat' is not carried",
        ),
    ],
    ids=["overweight", "too-large", "tag"],
)
@pytest.mark.usefixtures("package")
async def test_a_package_the_fleet_does_not_carry_is_rejected_with_its_reason(
    peer: Peer,
    request_: DeliveryRequested,
    reason: PackageRejectionReason,
    detail: str,
) -> None:
    await peer.send(request_)

    rejected = await peer.next(PackageRejected)

    assert (rejected.data.delivery_id, rejected.data.package_id) == (DELIVERY, PACKAGE)
    assert (rejected.data.reason, rejected.data.detail) == (reason, detail)
    assert not peer.heard(PackageReady)


@pytest.mark.usefixtures("package")
async def test_a_package_already_in_another_delivery_is_rejected_as_a_duplicate(
    peer: Peer,
) -> None:
    await peer.send(a_delivery_request())
    await peer.next(PackageReady)

    await peer.send(a_delivery_request(delivery_id="del-0002"))  # the same package id

    rejected = await peer.next(PackageRejected)
    assert (rejected.data.delivery_id, rejected.data.reason) == ("del-0002", _R.DUPLICATE_PACKAGE)
    assert rejected.data.detail == f"package {PACKAGE} already belongs to delivery {DELIVERY}"


@pytest.mark.parametrize("same_event_id", [True, False], ids=["redelivered", "resent"])
async def test_a_request_heard_twice_is_answered_once(
    package: Service, peer: Peer, *, same_event_id: bool
) -> None:
    """Test that a request redelivered (same event id) or resent by its client is answered once.

    The answer to a later request comes after anything the second copy could have caused.
    """
    request = an_envelope(a_delivery_request())
    again = request if same_event_id else an_envelope(a_delivery_request())
    await peer.send(request, again, another_request())

    await peer.next(PackageReady, lambda r: r.delivery_id == "del-0002")

    assert [r.delivery_id for r in peer.heard(PackageReady)] == [DELIVERY, "del-0002"]
    assert not peer.heard(PackageRejected)
    assert package.bus.stats.duplicates == (1 if same_event_id else 0)


@pytest.mark.usefixtures("package")
async def test_a_job_failing_with_the_package_on_board_strands_it_where_the_drone_was(
    peer: Peer,
) -> None:
    await peer.send(a_delivery_request())
    await peer.next(PackageReady)

    [failure] = await peer.send(
        a_job_failure(package_state=PackageState.ON_BOARD, location=DROPOFF)
    )

    stranded = await peer.next(PackageStranded)
    assert (stranded.data.package_id, stranded.data.location) == (PACKAGE, DROPOFF)
    assert stranded.causationid == failure.id


@pytest.mark.usefixtures("package")
async def test_a_job_failing_before_pickup_strands_nothing(peer: Peer) -> None:
    await peer.send(
        a_delivery_request(),
        a_job_failure(package_state=PackageState.NOT_LOADED),
        another_request(),
    )

    await peer.next(PackageReady, lambda r: r.delivery_id == "del-0002")

    assert not peer.heard(PackageStranded)


async def test_a_request_sent_while_the_service_is_down_is_answered_once_it_is_back(
    broker: MemoryBroker, peer: Peer, tmp_path: Path
) -> None:
    """Test that the service's persistent session keeps what it missed while it was stopped."""
    await peer.listen(PackageReady)
    async with running(a_service(broker, "package", tmp_path)):
        pass  # subscribed once: the broker now queues for it

    await peer.send(a_delivery_request())
    async with running(a_service(broker, "package", tmp_path)):
        ready = await peer.next(PackageReady)

    assert ready.data.delivery_id == DELIVERY
