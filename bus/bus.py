"""The bus: one component's place in the choreography, at least once in, effects applied once.

A `Bus` runs one persistent session on a `Transport` (docs/bus.md): it subscribes for the
events its handlers take (`bus.consumer`), relays what they cause (`bus.outbox`), announces the
component's presence (a retained online status, the same topic as its last will saying
offline) and reconnects forever with capped, jittered backoff. Handlers and timers change state
through `transaction()`, whose outbox publishes after commit.
"""

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import sqlite_utils

from bus import logcontext
from bus.backoff import Backoff
from bus.cancelling import raise_if_cancelled
from bus.consumer import Consumer, Handler
from bus.errors import TransportError
from bus.outbox import Outbox, Producer, Relay
from bus.stats import BusStats
from bus.store import BusStore
from bus.transport import Connection, Outgoing, Session, Transport
from contracts import DEFAULT_ROOT, Envelope, Event
from contracts.events import Link

log = logging.getLogger("murmur.bus")

Presence = Callable[[Link, int], Event]
"""Builds the retained online/offline event of a session (also the last will)."""

_GOODBYE_S = 2.0


class Bus:
    """One component's connection to the choreography."""

    def __init__(
        self,
        *,
        component: str,
        transport: Transport,
        db: sqlite_utils.Database,
        root: str = DEFAULT_ROOT,
        client_id: str | None = None,
        source: str | None = None,
        presence: Presence | None = None,
        handler_attempts: int = 3,
        reconnect_max_s: float = 5.0,
    ) -> None:
        self.component = component
        self.transport = transport
        self.root = root
        self.client_id = client_id or f"murmur-{component}"
        self.source = source or f"/{component}"
        self.store = BusStore(db)
        self.stats = BusStats()
        self.session = 0
        self.connected = asyncio.Event()
        self._presence = presence
        self._producer = Producer(
            component=component,
            source=self.source,
            root=root,
            store=self.store,
            stats=self.stats,
            wake=asyncio.Event(),
        )
        self._consumer = Consumer(self._producer, handler_attempts=handler_attempts)
        self._relay = Relay(self._producer)
        self._backoff = Backoff(ceiling_s=reconnect_max_s)
        self._connection: Connection | None = None

    @property
    def db(self) -> sqlite_utils.Database:
        """The component's database, shared with its own store."""
        return self.store.db

    def route(self, event_cls: type[Event], handler: Handler, **params: str) -> None:
        """Handle `event_cls`; `params` narrow the subscription (e.g. drone_id="d-1")."""
        self._consumer.route(event_cls, handler, **params)

    @property
    def subscriptions(self) -> dict[type[Event], str]:
        """Each event type handled, and the topic filter (under the root) it is received on."""
        return self._consumer.subscriptions

    @contextmanager
    def transaction(self) -> Iterator[Outbox]:
        """A unit of work outside any handler (timers, commands); emits publish on commit."""
        with self.store.transaction():
            yield Outbox(self._producer, cause=None)
        self._producer.wake.set()

    async def receive(self, topic: str, payload: bytes) -> None:
        """Take one message as if it had just arrived: decode, dedupe, handle or dead-letter.

        The path every message takes after the transport (the fuzzer feeds it directly).
        """
        await self._consumer.receive(topic, payload)

    def emit(self, data: Event, *, correlationid: str | None = None) -> Envelope[Event]:
        """Queue one event in its own transaction."""
        with self.transaction() as out:
            return out.emit(data, correlationid=correlationid)

    async def publish_volatile(self, data: Event, *, sequence: int | None = None) -> bool:
        """Publish now at the event's QoS if connected, else drop it (telemetry).

        Returns whether it was handed to the broker connection.
        """
        connection = self._connection
        if connection is None:
            return False
        envelope = Envelope[Event].new(data, source=self.source, sequence=sequence)
        try:
            await connection.publish(
                Outgoing(data.resolved_topic(self.root), envelope.to_json(), data.qos)
            )
        except TransportError:
            return False
        return True

    async def run(self) -> None:
        """Connect, consume and relay until cancelled, reconnecting after every failure."""
        # Records of this task and the ones it starts name the component (murmur.logs).
        logcontext.COMPONENT.set(self.component)
        self.session = self.store.next_session()
        self.store.prune_inbox()
        while True:
            try:
                await self._connection_lifetime()
            except* TransportError as group:
                log.warning(
                    "%s: no connection to %s: %s",
                    self.client_id,
                    self.transport,
                    group.exceptions[0],
                )
            finally:
                self.connected.clear()
                self._connection = None
            # A TaskGroup reports its children's errors rather than the cancellation that
            # interrupted them: a cancelled bus must not take that for a lost connection.
            raise_if_cancelled()
            await self._backoff.wait()

    async def _connection_lifetime(self) -> None:
        async with self.transport.connect(self._session()) as connection:
            self._backoff.succeeded()
            self.stats.connections += 1
            try:
                async with asyncio.TaskGroup() as tasks:
                    # Consume before subscribing: amqtt sends a filter's retained messages
                    # before its SUBACK and drops them unless acknowledged within 5 s.
                    tasks.create_task(
                        self._consumer.consume(connection), name=f"{self.component}.consume"
                    )
                    await self._subscribe_and_announce(connection)
                    tasks.create_task(self._relay.run(connection), name=f"{self.component}.relay")
                    # Wait here, not in the TaskGroup's exit: Python 3.11's TaskGroup, when a
                    # child fails while its exit waits, cancels this task and never takes that
                    # cancellation back (`cancelling()` stays raised), and `raise_if_cancelled`
                    # would then stop a bus that only lost its connection.
                    await asyncio.Event().wait()
            except asyncio.CancelledError:
                await self._say_goodbye(connection)
                raise

    def _session(self) -> Session:
        will = None
        if self._presence is not None:
            will = self._presence_message(Link.OFFLINE)
        return Session(self.client_id, persistent=True, will=will)

    def _presence_message(self, link: Link) -> Outgoing:
        assert self._presence is not None  # noqa: S101 - only called with presence
        envelope = Envelope[Event].new(self._presence(link, self.session), source=self.source)
        data = envelope.data
        return Outgoing(data.resolved_topic(self.root), envelope.to_json(), 1, data.retained)

    async def _subscribe_and_announce(self, connection: Connection) -> None:
        await connection.subscribe(sorted(set(self.subscriptions.values())))
        if self._presence is not None:
            await connection.publish(self._presence_message(Link.ONLINE))
        self._connection = connection
        self.connected.set()
        log.info("%s: connected to %s (session %d)", self.client_id, self.transport, self.session)

    async def _say_goodbye(self, connection: Connection) -> None:
        """A clean disconnect fires no last will, so say offline ourselves."""
        if self._presence is None:
            return
        with suppress(TransportError, TimeoutError):
            async with asyncio.timeout(_GOODBYE_S):
                await connection.publish(self._presence_message(Link.OFFLINE))
