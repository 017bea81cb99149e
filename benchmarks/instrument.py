"""The benchmarks' own client: raw messages, stamped when they were read, to a callback.

A benchmark's instrument must not be what lags: its connection has no receive window (it
reads whatever has arrived), and each message is timestamped by the transport when it was
read off the socket, not when the instrument got round to it. Messages are handed over raw
(topic, payload, arrival time): decoding them would cost more than what is measured. What the
client sends, delivery requests, is encoded before anything is timed and published as bytes.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from bus.client import Client, connect
from bus.transport import Outgoing, open_transport
from bus.url import BrokerUrl
from contracts import DEFAULT_ROOT, Envelope, Event
from contracts.events import DeliveryRequested
from contracts.topics import to_filter

See = Callable[[str, bytes, float], None]
"""Takes (topic, payload, `time.monotonic()` when read) of each message."""


@contextlib.asynccontextmanager
async def instrument(
    url: BrokerUrl,
    name: str,
    see: See,
    *subscriptions: type[Event] | str,
    ack_timeout_s: float = 60.0,
) -> AsyncIterator[Client]:
    """A client for the block, feeding `see` every message on `subscriptions`.

    `ack_timeout_s` bounds the wait for each PUBACK (a storm's come after its whole backlog).
    """
    transport = open_transport(
        url, receive_window=0, max_inflight=1000, ack_timeout_s=ack_timeout_s
    )
    async with connect(transport, name=f"bench-{name}") as client:
        feed = asyncio.create_task(_feed(client, see), name=f"bench-{name}.feed")
        try:
            if subscriptions:
                await client.subscribe(*subscriptions)
            yield client
        finally:
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed


def request_bytes(request: DeliveryRequested, *, source: str) -> bytes:
    """A request in its envelope, as the wire carries it (correlated by its delivery id)."""
    envelope = Envelope[Event].new(request, source=source, correlationid=request.delivery_id)
    return envelope.to_json()


async def publish_request(client: Client, delivery_id: str, payload: bytes) -> None:
    """Publish a request's bytes, built before they were timed, on its topic at QoS 1."""
    topic = to_filter(DeliveryRequested.topic, root=DEFAULT_ROOT, delivery_id=delivery_id)
    await client.connection.publish(Outgoing(topic, payload))


async def _feed(client: Client, see: See) -> None:
    async for message in client.connection.messages():
        see(message.topic, message.payload, message.received_at)
