"""Plain helpers of the transport contract: waits on what arrives, bounded by `asyncio.timeout`."""

import asyncio
from collections.abc import Sequence

import pytest

from bus.errors import TransportError
from bus.transport import Connection, Incoming, Outgoing

# Generous: the suite must hold on a busy machine, and a wait that succeeds ends early.
TIMEOUT_S = 10.0
MARKER = b"marker"


async def receive(connection: Connection, count: int = 1) -> list[Incoming]:
    """The next `count` messages, in arrival order."""
    received: list[Incoming] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for message in connection.messages():
            received.append(message)
            if len(received) == count:
                break
    return received


async def receive_until_marker(
    subscriber: Connection, publisher: Connection, topic: str
) -> list[tuple[str, bytes]]:
    """Publish a marker on `topic` (which `subscriber` takes); what arrived before it.

    The marker follows, in the broker, everything the test did before: whatever was going to
    reach the subscriber by then arrives first, so `[]` means nothing did.
    """
    await publisher.publish(Outgoing(topic, MARKER))
    before: list[tuple[str, bytes]] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for message in subscriber.messages():
            if (message.topic, message.payload) == (topic, MARKER):
                return before
            before.append((message.topic, message.payload))
    raise AssertionError("unreachable: messages() ends only by raising")


async def until_lost(connection: Connection) -> TransportError:
    """Wait until the connection's `messages()` raises; the error it raised."""
    try:
        async with asyncio.timeout(TIMEOUT_S):
            async for message in connection.messages():
                pytest.fail(f"a message on a connection being lost: {message.topic}")
    except TransportError as lost:
        return lost
    pytest.fail("messages() ended without raising")


async def publish_all(connection: Connection, messages: Sequence[Outgoing]) -> None:
    """Publish one after the other, each acknowledged before the next."""
    for message in messages:
        await connection.publish(message)


async def settled(connection: Connection) -> None:
    """Return once the broker has handled everything `connection` sent before (PUBACKs too).

    A QoS 1 publish is acknowledged after the broker read all the connection sent before it.
    """
    await connection.publish(Outgoing("settle", b"", qos=1))


def numbered(topic: str, count: int, *, qos: int = 1) -> list[Outgoing]:
    """`count` messages on `topic`, payloads b"0", b"1", ..."""
    return [Outgoing(topic, str(i).encode(), qos=qos) for i in range(count)]


def payloads(messages: Sequence[Incoming]) -> list[bytes]:
    return [m.payload for m in messages]
