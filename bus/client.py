"""A connection that only publishes and listens: clean session, no database, no outbox.

For everything that is not a component of the choreography but talks to it: the CLI's
`request`, `cancel` and `trace`, the HTTP ingestion gateway, the monitor, `murmur up`'s
watcher, the benchmarks and the tests' probe. A publish is done once the broker acknowledged
it (PUBACK); the listening side yields what arrives on the client's own filters, decoded (amqtt
also replays retained messages of other clients' filters, which are dropped here).
`stay_connected` keeps a client up for the life of a process, reconnecting with backoff.
"""

import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bus.backoff import Backoff
from bus.cancelling import raise_if_cancelled
from bus.errors import TransportError
from bus.transport import Connection, Outgoing, Session, Transport
from contracts import DEFAULT_ROOT, DecodeError, Envelope, Event, decode
from contracts.topics import filter_matches, to_filter

SOURCE = "/clients/cli"
_ids = itertools.count()


@dataclass(frozen=True)
class Received:
    """One message on the client's filters: its event, or why it is not one."""

    topic: str
    envelope: Envelope[Any] | None
    error: DecodeError | None
    retained: bool
    received_at: float
    payload: bytes


class Client:
    """One connected client; `connect()` opens it."""

    def __init__(self, connection: Connection, *, root: str, source: str) -> None:
        self.connection = connection
        """The transport connection, for raw bytes (the probe, the fuzzer, the benchmarks)."""
        self.root = root
        self.source = source
        self._filters: list[str] = []

    async def publish(
        self, data: Event, *, correlationid: str | None = None, event_id: str | None = None
    ) -> Envelope[Event]:
        """Publish one event at its QoS; returns once the broker acknowledged it.

        Raises:
            TransportError: the connection was lost or the broker did not acknowledge it.
        """
        envelope = Envelope[Event].new(
            data, source=self.source, correlationid=correlationid, id=event_id
        )
        await self.connection.publish(
            Outgoing(data.resolved_topic(self.root), envelope.to_json(), data.qos, data.retained)
        )
        return envelope

    async def subscribe(self, *what: type[Event] | str, **params: str) -> None:
        """Subscribe, in one request, to event types (narrowed by `params`) or raw filters.

        An event type stands for its topic under the root (`DeliveryStatusChanged,
        delivery_id="d-1"`: that delivery's status); a string is an MQTT filter as it is.
        """
        filters = [
            item if isinstance(item, str) else to_filter(item.topic, root=self.root, **params)
            for item in what
        ]
        new = [f for f in dict.fromkeys(filters) if f not in self._filters]
        self._filters.extend(new)
        await self.connection.subscribe(new)

    async def received(self) -> AsyncIterator[Received]:
        """Every message on the client's filters, decoded or with its decode error.

        Raises:
            TransportError: when the connection is lost.
        """
        async for message in self.connection.messages():
            topic = message.topic
            if not any(filter_matches(f, topic) for f in self._filters):
                continue  # amqtt replays retained topics of other clients' filters
            envelope, error = None, None
            try:
                envelope = decode(topic, message.payload, root=self.root)
            except DecodeError as exc:
                error = exc
            yield Received(
                topic, envelope, error, message.retained, message.received_at, message.payload
            )

    async def events(self) -> AsyncIterator[Envelope[Any]]:
        """Every decodable event on the client's filters; undecodable input is skipped.

        Raises:
            TransportError: when the connection is lost.
        """
        async for received in self.received():
            if received.envelope is not None:
                yield received.envelope


@asynccontextmanager
async def connect(
    transport: Transport,
    *,
    root: str = DEFAULT_ROOT,
    source: str = SOURCE,
    name: str = "client",
    keepalive_s: int = 30,
) -> AsyncIterator[Client]:
    """A client for the duration of the block, with a client id of its own.

    Clients never share an id (the broker would cut one off), and nothing is owed to them
    while away: a clean session.

    Raises:
        TransportError: the broker cannot be reached or refused the connection.
    """
    client_id = f"murmur-{name}-{uuid.uuid4().hex[:8]}-{next(_ids)}"
    async with transport.connect(Session(client_id, keepalive_s=keepalive_s)) as connection:
        yield Client(connection, root=root, source=source)


async def stay_connected(
    transport: Transport,
    serve: Callable[[Client], Awaitable[None]],
    *,
    on_lost: Callable[[TransportError], None],
    backoff: Backoff,
    root: str = DEFAULT_ROOT,
    source: str = SOURCE,
    name: str = "client",
    keepalive_s: int = 30,
) -> None:
    """Connect and `serve` the client, again after every loss, until cancelled.

    `on_lost` hears each failure to connect and each lost connection; `backoff` paces the
    attempts and restarts from its shortest wait after each successful connection.
    """
    while True:
        try:
            async with connect(
                transport, root=root, source=source, name=name, keepalive_s=keepalive_s
            ) as client:
                backoff.succeeded()
                await serve(client)
        except TransportError as exc:
            # A disconnect that fails as the block is cancelled (the broker has gone) replaces
            # the cancellation with its error: that is a stop, not a loss to reconnect from.
            raise_if_cancelled()
            on_lost(exc)
        await backoff.wait()
