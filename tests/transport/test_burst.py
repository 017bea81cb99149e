"""A burst: what a subscriber does not read yet waits, and arrives whole once it reads."""

from bus.transport import Session
from tests.transport.clients import numbered, payloads, receive, receive_until_marker
from tests.transport.targets import Target

BURST = 1000


async def test_a_burst_waits_for_a_subscriber_not_reading_and_arrives_whole(
    target: Target,
) -> None:
    """Test that 1,000 QoS 1 messages arrive once read: all, in order, none twice."""
    transport = target.transport()
    async with (
        transport.connect(Session("subscriber")) as subscriber,
        transport.connect(Session("publisher")) as publisher,
    ):
        await subscriber.subscribe(["burst/#"])
        for message in numbered("burst/b-1", BURST):
            await publisher.publish(message)

        arrived = await receive(subscriber, BURST)

        assert payloads(arrived) == [str(i).encode() for i in range(BURST)]
        assert await receive_until_marker(subscriber, publisher, "burst/end") == []
