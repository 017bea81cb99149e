"""A cancelled loop stops, even when a publish or a disconnect swallows the cancellation.

Python 3.11's `asyncio.wait_for`, inside aiomqtt's `publish`, loses a cancellation that races
with its result (CPython gh-86296): `murmur up --demand` then kept requesting after Ctrl-C.
The race cannot be timed from outside, so a publish that always swallows stands in for it;
the adapter calls `raise_if_cancelled` right after each of aiomqtt's publishes, as here.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bus.backoff import Backoff
from bus.cancelling import raise_if_cancelled
from bus.client import Client, stay_connected
from bus.errors import TransportError
from bus.memory_transport import MemoryBroker
from bus.transport import Connection, Session, Transport


async def test_a_publishing_loop_stops_when_cancelled_during_a_swallowing_publish() -> None:
    published = 0

    async def swallowing_publish() -> None:
        nonlocal published
        with contextlib.suppress(asyncio.CancelledError):  # the PUBACK won the race
            await asyncio.sleep(0.01)
        published += 1
        raise_if_cancelled()

    async def keep_publishing() -> None:
        for _ in range(1000):  # bounded: a loop that ignores the cancellation ends anyway
            await swallowing_publish()

    loop = asyncio.create_task(keep_publishing())
    await asyncio.sleep(0)  # it is now inside its first publish
    loop.cancel()
    async with asyncio.timeout(5):
        await asyncio.wait([loop])

    assert loop.cancelled()
    assert published == 1


async def test_an_uncancelled_task_carries_on() -> None:
    raise_if_cancelled()  # nothing to re-raise


class _DisconnectFails:
    """A transport whose disconnect fails, as aiomqtt's does when the broker has gone away.

    The error raised while leaving the connection replaces the cancellation that left it.
    """

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self.connections = 0

    @contextlib.asynccontextmanager
    async def connect(self, session: Session) -> AsyncIterator[Connection]:
        async with self._inner.connect(session) as connection:
            self.connections += 1
            try:
                yield connection
            finally:
                raise TransportError("disconnect: the broker went away")


async def test_a_client_that_stays_connected_stops_when_cancelled_as_its_disconnect_fails() -> None:
    # The live console hung a test for 180 s this way: cancelled while the broker restarted,
    # it took the failed disconnect for a lost connection and reconnected for ever.
    transport = _DisconnectFails(MemoryBroker().transport())
    serving = asyncio.Event()

    async def serve(_: Client) -> None:
        serving.set()
        await asyncio.Event().wait()

    def lost(exc: TransportError) -> None:
        raise AssertionError(f"reconnecting after a cancel: {exc}")  # ends the loop, bounded

    task = asyncio.create_task(
        stay_connected(transport, serve, on_lost=lost, backoff=Backoff(base_s=0.001))
    )
    async with asyncio.timeout(5):
        await serving.wait()
    task.cancel()
    async with asyncio.timeout(5):
        await asyncio.wait([task])

    assert task.cancelled()
    assert transport.connections == 1
