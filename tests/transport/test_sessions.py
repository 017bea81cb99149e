"""Sessions: what a persistent session is kept while away, and what it owes until it acks."""

import pytest

from bus.transport import Session
from tests.transport.amqtt_gaps import AMQTT_401
from tests.transport.clients import (
    numbered,
    payloads,
    publish_all,
    receive,
    receive_until_marker,
    settled,
    until_lost,
)
from tests.transport.targets import Target, targets

CONSUMER = Session("consumer", persistent=True)


async def test_a_persistent_session_gets_what_was_published_while_away_in_order(
    target: Target,
) -> None:
    """Test that QoS 1 messages published while a persistent session is away wait for it."""
    transport = target.transport()
    async with transport.connect(CONSUMER) as consumer:
        await consumer.subscribe(["jobs/#"])
    await target.until_gone(CONSUMER.client_id)
    async with transport.connect(Session("publisher")) as publisher:
        await publish_all(publisher, numbered("jobs/j-1", 5))

        async with transport.connect(CONSUMER) as consumer:  # not subscribing again
            assert payloads(await receive(consumer, 5)) == [b"0", b"1", b"2", b"3", b"4"]
            assert await receive_until_marker(consumer, publisher, "jobs/end") == []


async def test_a_clean_session_gets_nothing_published_while_away(target: Target) -> None:
    """Test that a clean session that subscribed and left finds nothing kept when it is back."""
    transport = target.transport()
    listener = Session("listener")
    async with transport.connect(listener) as connection:
        await connection.subscribe(["jobs/#"])
    async with transport.connect(Session("publisher")) as publisher:
        await publish_all(publisher, numbered("jobs/j-1", 5))

        async with transport.connect(listener) as connection:
            await connection.subscribe(["jobs/#"])

            assert await receive_until_marker(connection, publisher, "jobs/end") == []


async def test_connecting_clean_discards_a_persistent_session_and_what_it_kept(
    target: Target,
) -> None:
    """Test that a clean connection with a persistent session's id ends that session."""
    transport = target.transport()
    async with transport.connect(CONSUMER) as consumer:
        await consumer.subscribe(["jobs/#"])
    await target.until_gone(CONSUMER.client_id)
    async with transport.connect(Session("publisher")) as publisher:
        await publish_all(publisher, numbered("jobs/j-1", 5))

        async with transport.connect(Session(CONSUMER.client_id)) as clean:
            await clean.subscribe(["jobs/#"])
            assert await receive_until_marker(clean, publisher, "jobs/end") == []
        await target.until_gone(CONSUMER.client_id)
        async with transport.connect(CONSUMER) as consumer:  # a new session: no subscription
            await consumer.subscribe(["jobs/#"])
            assert await receive_until_marker(consumer, publisher, "jobs/end") == []


@pytest.mark.parametrize("target", targets(amqtt=[AMQTT_401]), indirect=True)
async def test_messages_not_acked_are_delivered_again_after_a_cut(target: Target) -> None:
    """Test that a persistent session cut before acking gets those messages again, in order."""
    transport = await target.cuttable_transport(CONSUMER.client_id)
    async with target.transport().connect(Session("publisher")) as publisher:
        async with transport.connect(CONSUMER) as consumer:
            await consumer.subscribe(["jobs/#"])
            await publish_all(publisher, numbered("jobs/j-1", 3))
            assert payloads(await receive(consumer, 3)) == [b"0", b"1", b"2"]

            target.cut(CONSUMER.client_id)
            await until_lost(consumer)
        await target.until_gone(CONSUMER.client_id)

        async with transport.connect(CONSUMER) as consumer:
            assert payloads(await receive(consumer, 3)) == [b"0", b"1", b"2"]


@pytest.mark.parametrize("target", targets(amqtt=[AMQTT_401]), indirect=True)
async def test_messages_not_acked_are_delivered_again_after_a_clean_close(
    target: Target,
) -> None:
    """Test that a persistent session closed before acking gets those messages again, in order."""
    transport = target.transport()
    async with transport.connect(Session("publisher")) as publisher:
        async with transport.connect(CONSUMER) as consumer:
            await consumer.subscribe(["jobs/#"])
            await publish_all(publisher, numbered("jobs/j-1", 3))
            assert payloads(await receive(consumer, 3)) == [b"0", b"1", b"2"]
        await target.until_gone(CONSUMER.client_id)

        async with transport.connect(CONSUMER) as consumer:
            assert payloads(await receive(consumer, 3)) == [b"0", b"1", b"2"]


@pytest.mark.parametrize("ending", ["cut", "clean close"])
async def test_messages_acked_are_not_delivered_again(target: Target, ending: str) -> None:
    """Test that a persistent session gets again only what it did not ack, however it ended."""
    transport = await target.cuttable_transport(CONSUMER.client_id)
    async with target.transport().connect(Session("publisher")) as publisher:
        async with transport.connect(CONSUMER) as consumer:
            await consumer.subscribe(["jobs/#"])
            await publish_all(publisher, numbered("jobs/j-1", 3))
            received = await receive(consumer, 3)
            for message in received:
                await message.ack()
            await settled(consumer)

            if ending == "cut":
                target.cut(CONSUMER.client_id)
                await until_lost(consumer)
        await target.until_gone(CONSUMER.client_id)

        async with transport.connect(CONSUMER) as consumer:
            assert await receive_until_marker(consumer, publisher, "jobs/end") == []
        assert payloads(received) == [b"0", b"1", b"2"]
