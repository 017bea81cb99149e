"""Last wills: published when a connection dies, not when it is closed."""

import pytest

from bus.transport import Outgoing, Session
from tests.transport.amqtt_gaps import AMQTT_KEEPS_A_CLEAN_TWIN, AMQTT_TAKEOVER_SHARES_SESSION
from tests.transport.clients import receive, receive_until_marker, until_lost
from tests.transport.targets import Target, targets

STATUS = "drones/d-1/status"


def a_drone(*, retain: bool = False, persistent: bool = True) -> Session:
    will = Outgoing(STATUS, b"offline", retain=retain)
    return Session("d-1", persistent=persistent, will=will)


async def test_a_cut_connection_publishes_its_will(target: Target) -> None:
    """Test that the broker publishes the will of a connection that ends without a goodbye."""
    drone = a_drone()
    link = await target.cuttable_transport(drone.client_id)
    async with target.transport().connect(Session("monitor")) as monitor:
        await monitor.subscribe(["drones/+/status"])
        async with link.connect(drone) as connection:
            target.cut(drone.client_id)
            await until_lost(connection)

        [will] = await receive(monitor)
    assert (will.topic, will.payload, will.qos, will.retained) == (STATUS, b"offline", 1, False)


async def test_a_retained_will_is_kept_for_later_subscribers(target: Target) -> None:
    """Test that a will published retained is replayed, so flagged, to whoever subscribes next."""
    drone = a_drone(retain=True)
    link = await target.cuttable_transport(drone.client_id)
    transport = target.transport()
    async with transport.connect(Session("monitor")) as monitor:
        await monitor.subscribe(["drones/+/status"])
        async with link.connect(drone) as connection:
            target.cut(drone.client_id)
            await until_lost(connection)
        await receive(monitor)  # published: now it is kept

        async with transport.connect(Session("latecomer")) as latecomer:
            await latecomer.subscribe(["drones/+/status"])

            [replayed] = await receive(latecomer)
    assert (replayed.topic, replayed.payload, replayed.retained) == (STATUS, b"offline", True)


async def test_a_will_not_retained_is_not_kept(target: Target) -> None:
    """Test that a will published without retain reaches only those subscribed at the time."""
    drone = a_drone()
    link = await target.cuttable_transport(drone.client_id)
    transport = target.transport()
    async with transport.connect(Session("monitor")) as monitor:
        await monitor.subscribe(["drones/+/status"])
        async with link.connect(drone) as connection:
            target.cut(drone.client_id)
            await until_lost(connection)
        await receive(monitor)

        async with transport.connect(Session("latecomer")) as latecomer:
            await latecomer.subscribe(["drones/+/status"])

            assert await receive_until_marker(latecomer, monitor, "drones/end/status") == []


async def test_a_clean_close_publishes_no_will(target: Target) -> None:
    """Test that a connection closed cleanly leaves its will unpublished."""
    drone = a_drone(retain=True)
    transport = target.transport()
    async with transport.connect(Session("monitor")) as monitor:
        await monitor.subscribe(["drones/+/status"])
        async with transport.connect(drone):
            pass
        await target.until_gone(drone.client_id)
        async with transport.connect(Session(drone.client_id, persistent=True)):
            # The broker is done with the closed connection now: any will of its came before.
            assert await receive_until_marker(monitor, monitor, "drones/end/status") == []


@pytest.mark.parametrize("target", targets(amqtt=[AMQTT_TAKEOVER_SHARES_SESSION]), indirect=True)
async def test_a_persistent_session_taken_over_publishes_no_will(target: Target) -> None:
    """Test that a will stays unpublished when a newer connection carries its session on."""
    drone = a_drone()
    transport = target.transport()
    async with transport.connect(Session("monitor")) as monitor:
        await monitor.subscribe(["drones/+/status"])
        async with transport.connect(drone) as first, transport.connect(drone):
            await until_lost(first)

            assert await receive_until_marker(monitor, monitor, "drones/end/status") == []


@pytest.mark.parametrize("target", targets(amqtt=[AMQTT_KEEPS_A_CLEAN_TWIN]), indirect=True)
async def test_a_clean_session_taken_over_publishes_its_will(target: Target) -> None:
    """Test that a will is published when a newer connection ends the older one's session."""
    drone = a_drone(persistent=False)
    transport = target.transport()
    async with transport.connect(Session("monitor")) as monitor:
        await monitor.subscribe(["drones/+/status"])
        async with transport.connect(drone) as first, transport.connect(drone):
            await until_lost(first)

            [will] = await receive(monitor)
    assert (will.topic, will.payload) == (STATUS, b"offline")
