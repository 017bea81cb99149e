"""The benchmarks' own client: raw messages, stamped when they were read, to a callback.

A benchmark's instrument must not be what lags: its connection has no receive window (it
reads whatever has arrived), and each message is timestamped by the transport when it was
read off the socket, not when the instrument got round to it. Messages are handed over raw
(topic, payload, arrival time): decoding them would cost more than what is measured.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from bus.client import Client, connect
from bus.transport import Outgoing, open_transport
from bus.url import BrokerUrl
from contracts import Event

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


async def publish_raw(client: Client, topic: str, payload: bytes) -> None:
    """Publish bytes built before they were timed, at QoS 1."""
    await client.connection.publish(Outgoing(topic, payload))


async def _feed(client: Client, see: See) -> None:
    async for message in client.connection.messages():
        see(message.topic, message.payload, message.received_at)
