"""Retained messages: the last value of a topic, replayed to whoever subscribes later."""

from bus.transport import Outgoing, Session
from tests.transport.clients import receive, receive_until_marker
from tests.transport.targets import Target


async def test_a_retained_message_is_replayed_to_a_later_subscriber(target: Target) -> None:
    """Test that a subscriber gets the retained message published before it came, so flagged."""
    transport = target.transport()
    async with transport.connect(Session("publisher")) as publisher:
        await publisher.publish(Outgoing("drones/d-1/status", b"old", retain=True))
        await publisher.publish(Outgoing("drones/d-1/status", b"online", retain=True))

        async with transport.connect(Session("latecomer")) as latecomer:
            await latecomer.subscribe(["drones/+/status"])

            [replayed] = await receive(latecomer)
            assert (replayed.topic, replayed.payload, replayed.retained) == (
                "drones/d-1/status",
                b"online",
                True,
            )
            assert await receive_until_marker(latecomer, publisher, "drones/end/status") == []


async def test_a_live_message_arrives_not_flagged_retained(target: Target) -> None:
    """Test that a subscriber already there gets a message as live, retained or not."""
    transport = target.transport()
    async with (
        transport.connect(Session("subscriber")) as subscriber,
        transport.connect(Session("publisher")) as publisher,
    ):
        await subscriber.subscribe(["drones/+/status"])

        await publisher.publish(Outgoing("drones/d-1/status", b"retained", retain=True))
        await publisher.publish(Outgoing("drones/d-1/status", b"plain"))

        arrived = await receive(subscriber, 2)
    assert [(m.payload, m.retained) for m in arrived] == [(b"retained", False), (b"plain", False)]


async def test_an_empty_retained_payload_clears_the_retained_message(target: Target) -> None:
    """Test that after an empty retained publish a later subscriber gets nothing replayed."""
    transport = target.transport()
    async with transport.connect(Session("publisher")) as publisher:
        await publisher.publish(Outgoing("drones/d-1/status", b"online", retain=True))
        await publisher.publish(Outgoing("drones/d-1/status", b"", retain=True))

        async with transport.connect(Session("latecomer")) as latecomer:
            await latecomer.subscribe(["drones/+/status"])

            arrived = await receive_until_marker(latecomer, publisher, "drones/end/status")
    assert arrived == []


async def test_subscribing_again_replays_the_retained_messages(target: Target) -> None:
    """Test that a session resuming and subscribing to the same filter gets them once more."""
    transport = target.transport()
    scheduler = Session("scheduler", persistent=True)
    async with transport.connect(Session("publisher")) as publisher:
        await publisher.publish(Outgoing("drones/d-1/status", b"online", retain=True))
        async with transport.connect(scheduler) as connection:
            await connection.subscribe(["drones/+/status"])
            [first] = await receive(connection)
            await first.ack()
        await target.until_gone(scheduler.client_id)

        async with transport.connect(scheduler) as connection:
            await connection.subscribe(["drones/+/status"])  # as the bus does on every connection

            [replayed] = await receive(connection)  # amqtt sends it twice: at connect, on subscribe
    assert (replayed.topic, replayed.payload, replayed.retained) == (
        "drones/d-1/status",
        b"online",
        True,
    )


async def test_a_retained_message_delivered_again_is_still_flagged_retained(
    target: Target,
) -> None:
    """Test that a replayed message not acked comes back, on reconnecting, as it first came.

    (amqtt loses it, #401, but replays every retained message on connecting anyway.)
    """
    transport = target.transport()
    scheduler = Session("scheduler", persistent=True)
    async with transport.connect(Session("publisher")) as publisher:
        await publisher.publish(Outgoing("drones/d-1/status", b"online", retain=True))
        async with transport.connect(scheduler) as connection:
            await connection.subscribe(["drones/+/status"])
            await receive(connection)
        await target.until_gone(scheduler.client_id)

        async with transport.connect(scheduler) as connection:
            [again] = await receive(connection)
    assert (again.topic, again.payload, again.retained) == ("drones/d-1/status", b"online", True)
