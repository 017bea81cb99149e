"""Subscribe and publish: MQTT's filters, publish order, topic, payload and QoS as sent."""

import pytest

from bus.transport import Outgoing, Session
from tests.transport.amqtt_gaps import AMQTT_UPGRADES_QOS
from tests.transport.clients import payloads, publish_all, receive, receive_until_marker
from tests.transport.targets import Target, targets


async def test_plus_matches_one_level_and_hash_the_rest_of_the_topic(target: Target) -> None:
    """Test that `+` stands for exactly one level and a trailing `#` for any number, even none."""
    transport = target.transport()
    async with (
        transport.connect(Session("subscriber")) as subscriber,
        transport.connect(Session("publisher")) as publisher,
    ):
        await subscriber.subscribe(["a/+/c", "b/#", "end"])
        topics = ["a/x/c", "a//c", "a/c", "a/x/y/c", "a/x/c/d", "b", "b/x", "b/x/y", "bb/x", "c/b"]

        await publish_all(publisher, [Outgoing(topic, topic.encode()) for topic in topics])

        arrived = await receive_until_marker(subscriber, publisher, "end")
    assert [topic for topic, _ in arrived] == ["a/x/c", "a//c", "b", "b/x", "b/x/y"]


async def test_messages_arrive_in_publish_order_with_topic_payload_and_qos(target: Target) -> None:
    """Test that each message arrives as published, in the order it was published."""
    transport = target.transport()
    sent = [
        Outgoing("orders/1", b"\x00binary\xff", qos=1),
        Outgoing("orders/2", b"", qos=1),
        Outgoing("orders/1", b"x" * 10_000, qos=1),
        Outgoing("orders/3", b"last", qos=1),
    ]
    async with (
        transport.connect(Session("subscriber")) as subscriber,
        transport.connect(Session("publisher")) as publisher,
    ):
        await subscriber.subscribe(["orders/#"])

        await publish_all(publisher, sent)

        arrived = await receive(subscriber, len(sent))
    assert [(m.topic, m.payload, m.qos) for m in arrived] == [(m.topic, m.payload, 1) for m in sent]


@pytest.mark.parametrize("target", targets(amqtt=[AMQTT_UPGRADES_QOS]), indirect=True)
async def test_a_qos_0_message_arrives_at_qos_0(target: Target) -> None:
    """Test that a QoS 1 subscription delivers a QoS 0 message at QoS 0 (MQTT's minimum)."""
    transport = target.transport()
    async with (
        transport.connect(Session("subscriber")) as subscriber,
        transport.connect(Session("publisher")) as publisher,
    ):
        await subscriber.subscribe(["telemetry/#"])

        await publisher.publish(Outgoing("telemetry/d-1", b"report", qos=0))

        [arrived] = await receive(subscriber)
    assert (arrived.topic, arrived.payload, arrived.qos) == ("telemetry/d-1", b"report", 0)


async def test_subscribing_to_no_filters_does_nothing(target: Target) -> None:
    """Test that an empty subscription returns, subscribes to nothing and breaks nothing."""
    transport = target.transport()
    async with (
        transport.connect(Session("subscriber")) as subscriber,
        transport.connect(Session("publisher")) as publisher,
    ):
        await subscriber.subscribe([])
        await publisher.publish(Outgoing("anything", b"unseen"))
        await subscriber.subscribe(["seen"])

        await publisher.publish(Outgoing("seen", b"1"))

        assert payloads(await receive(subscriber)) == [b"1"]
        assert await receive_until_marker(subscriber, publisher, "seen") == []
