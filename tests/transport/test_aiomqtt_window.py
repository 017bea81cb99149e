"""The aiomqtt adapter's reading policy and receive window, on real sockets and real brokers.

What is observed is the adapter's own state (its inbox, paho's socket); nothing of aiomqtt or
paho is faked. A subscriber that is not taking messages must hold at most its window while the
rest waits in the kernel and the broker, and read again once half of the window is free; one
wake-up of the event loop reads every message that has arrived, up to the window; and all of it
works for a process with descriptors past 1024 (the adapter polls with poll(), not select()).
"""

import asyncio
import os
import resource
import select
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bus.aiomqtt_transport import _AiomqttConnection, _Inbox
from bus.transport import Connection, Outgoing, Session, open_transport
from tests.brokers import TestBroker
from tests.transport.clients import TIMEOUT_S, numbered, payloads, publish_all, receive

pytestmark = pytest.mark.e2e

WINDOW = 8
BURST = 30
EXPECTED = [str(i).encode() for i in range(BURST)]


def adapter(connection: Connection) -> _AiomqttConnection:
    assert isinstance(connection, _AiomqttConnection)
    return connection


def inbox(connection: Connection) -> _Inbox:
    return adapter(connection)._inbox


async def until_holding(connection: Connection, count: int) -> int:
    """Wait until the inbox holds at least `count`, woken by its own arrivals; what it holds.

    Only takes change the inbox from here, so what it holds when this returns is the most it
    held since the last take.
    """
    waiting = inbox(connection)
    async with asyncio.timeout(TIMEOUT_S):
        while len(waiting.items) < count:
            waiting.waiter = asyncio.get_running_loop().create_future()
            await waiting.waiter
    return len(waiting.items)


async def readable(connection: Connection) -> bool:
    """Whether bytes wait unread in the connection's socket (polled in a thread: it may wait)."""
    sock = adapter(connection)._client._client.socket()
    assert sock is not None
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(await asyncio.to_thread(poller.poll, int(TIMEOUT_S * 1000)))


async def a_few_turns_of_the_loop() -> None:
    """Enough for a reader the adapter had registered on a readable socket to run."""
    for _ in range(20):
        await asyncio.sleep(0)


async def published_and_held(publisher: Connection, canary: Connection, slow: Connection) -> None:
    """Publish the burst; return once the canary (no window) has it all and `slow` holds its
    window, the broker having sent `slow` what it sent the canary."""
    await publish_all(publisher, numbered("burst/b-1", BURST))
    assert payloads(await receive(canary, BURST)) == EXPECTED
    assert await until_holding(slow, WINDOW) == WINDOW


async def test_a_full_window_stops_reading_until_half_of_it_is_taken(broker: TestBroker) -> None:
    """Test that a subscriber holds its window, the rest waiting unread, and resumes at half.

    One paho read takes one packet per message the client has in flight plus one; this
    subscriber publishes nothing, so the bound is exactly the window.
    """
    async with (
        open_transport(broker.url, receive_window=WINDOW).connect(Session("slow")) as slow,
        open_transport(broker.url, receive_window=0).connect(Session("canary")) as canary,
        open_transport(broker.url).connect(Session("publisher")) as publisher,
    ):
        await slow.subscribe(["burst/#"])
        await canary.subscribe(["burst/#"])

        await published_and_held(publisher, canary, slow)
        assert await readable(slow)  # the rest waits in the socket, not in the inbox
        await a_few_turns_of_the_loop()
        assert len(inbox(slow).items) == WINDOW

        taken = list(slow.take_ready(3))  # 5 left: more than half of the window
        await a_few_turns_of_the_loop()
        assert len(inbox(slow).items) == WINDOW - 3
        assert await readable(slow)

        taken += slow.take_ready(1)  # 4 left: half; reading resumes, up to the window again
        assert await until_holding(slow, WINDOW) == WINDOW

        while len(taken) < BURST:  # the rest, a batch at a time, as the bus's consumer takes them
            assert await until_holding(slow, 1) <= WINDOW
            taken += slow.take_ready(64)
    assert payloads(taken) == EXPECTED


async def test_one_wake_up_reads_every_message_that_arrived_up_to_the_window(
    broker: TestBroker,
) -> None:
    """Test that reading resumed fills the window in one turn of the loop, not one per turn."""
    async with (
        open_transport(broker.url, receive_window=WINDOW).connect(Session("slow")) as slow,
        open_transport(broker.url, receive_window=0).connect(Session("canary")) as canary,
        open_transport(broker.url).connect(Session("publisher")) as publisher,
    ):
        await slow.subscribe(["burst/#"])
        await canary.subscribe(["burst/#"])
        await published_and_held(publisher, canary, slow)
        assert await readable(slow)

        taken = list(slow.take_ready(WINDOW))

        # Woken by the first message the resumed reader put in: the rest came in the same turn.
        assert await until_holding(slow, 1) == WINDOW
        taken += slow.take_ready(WINDOW)
        while len(taken) < BURST:
            await until_holding(slow, 1)
            taken += slow.take_ready(64)
    assert payloads(taken) == EXPECTED


async def test_own_publishes_awaiting_acks_let_one_read_pass_the_window(
    broker: TestBroker,
) -> None:
    """Test the real bound: one paho read takes a packet per own publish in flight, plus one.

    paho's `loop_read` ignores its `max_packets` and reads as many packets as the client has
    messages in flight (at least one), so the window is checked only between such reads: with
    `k` own publishes awaiting their PUBACK (which wait behind the unread messages), the inbox
    may hold up to `window - 1 + k`.
    """
    in_flight = 6
    async with (
        open_transport(broker.url, receive_window=WINDOW).connect(Session("slow")) as slow,
        open_transport(broker.url, receive_window=0).connect(Session("canary")) as canary,
        open_transport(broker.url).connect(Session("publisher")) as publisher,
    ):
        await slow.subscribe(["burst/#"])
        await canary.subscribe(["burst/#"])
        await published_and_held(publisher, canary, slow)
        own = [
            asyncio.create_task(slow.publish(Outgoing("elsewhere", b"own")))
            for _ in range(in_flight)
        ]
        await a_few_turns_of_the_loop()  # each publish is in paho's hands, its PUBACK unread

        taken = list(slow.take_ready(WINDOW // 2))

        peak = await until_holding(slow, WINDOW)
        assert WINDOW < peak <= WINDOW - 1 + in_flight
        while len(taken) < BURST:
            taken += slow.take_ready(64)
            if len(taken) < BURST:
                await until_holding(slow, 1)
        async with asyncio.timeout(TIMEOUT_S):
            await asyncio.gather(*own)
    assert payloads(taken) == EXPECTED


async def test_without_a_window_everything_that_arrives_is_read(broker: TestBroker) -> None:
    """Test that `receive_window=0` bounds nothing: 300 messages arrive, none taken."""
    burst = 300
    async with (
        open_transport(broker.url, receive_window=0).connect(Session("instrument")) as instrument,
        open_transport(broker.url).connect(Session("publisher")) as publisher,
    ):
        await instrument.subscribe(["burst/#"])

        await publish_all(publisher, numbered("burst/b-1", burst))

        assert await until_holding(instrument, burst) == burst
        assert payloads(list(inbox(instrument).items)) == [str(i).encode() for i in range(burst)]


@contextmanager
def descriptors_past_1024() -> Iterator[None]:
    """1,100 more open descriptors (of /dev/null), so the next sockets get numbers past 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 1100 + 256
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    null = os.open(os.devnull, os.O_RDONLY)
    spare: list[int] = []
    try:
        spare.extend(os.dup(null) for _ in range(1100))
        yield
    finally:
        for fd in [*spare, null]:
            os.close(fd)
        if soft < needed:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_process_with_descriptors_past_1024_still_receives(broker: TestBroker) -> None:
    """Test that a socket numbered past select()'s 1024 connects, subscribes and receives."""
    with descriptors_past_1024():
        transport = open_transport(broker.url)
        async with (
            transport.connect(Session("subscriber")) as subscriber,
            transport.connect(Session("publisher")) as publisher,
        ):
            sock = adapter(subscriber)._client._client.socket()
            assert sock is not None
            assert sock.fileno() > 1024
            await subscriber.subscribe(["burst/#"])

            await publish_all(publisher, numbered("burst/b-1", BURST))

            assert payloads(await receive(subscriber, BURST)) == EXPECTED
