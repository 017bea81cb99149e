"""A broker in this process, behind the transport port: for tests of everything above it.

Not a fake of any library: a small MQTT broker with the semantics the bus relies on, so service
tests drive real handlers through a real bus in milliseconds (FastStream's `TestBroker` is the
model). It matches `+` and `#` filters, keeps retained messages (an empty payload clears one)
and replays them on subscribing (again too), queues QoS 1 messages for a persistent session
while it is away, redelivers what a persistent session did not acknowledge when it connects
again, takes a session over from an older connection with the same client id, and publishes a
connection's will when it is cut (`MemoryBroker.cut`) rather than closed. Where MQTT leaves a
choice, Mosquitto is the reference (`tests/transport/` runs the same suite on both): QoS 0
messages are not queued for an absent session, and a takeover publishes the older connection's
will unless the persistent session carries on.

Deliberate differences from Mosquitto: there is no socket, so no flow control (a message is in
the receiver's queue the moment it is published); a `$share/<group>/` filter matches as its
plain filter, so every member gets every message, where Mosquitto gives each to one member
(tests of shared work run on Mosquitto); topics are not validated.
"""

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bus.errors import TransportError
from bus.transport import Connection, Outgoing, Session
from contracts.topics import filter_matches


@dataclass(eq=False)
class _Delivery:
    """One message as one connection received it (an `Incoming`)."""

    topic: str
    payload: bytes
    qos: int
    retained: bool
    received_at: float
    _connection: "_MemoryConnection"

    async def ack(self) -> None:
        """Done with it: a persistent session no longer owes it."""
        self._connection.acked(self)


@dataclass(eq=False)
class _SessionState:
    session: Session
    filters: list[str] = field(default_factory=list)
    queued: deque[Outgoing] = field(default_factory=deque)  # published while away
    unacked: list[_Delivery] = field(default_factory=list)  # delivered, not acknowledged
    connection: "_MemoryConnection | None" = None

    def matches(self, topic: str) -> bool:
        return any(filter_matches(f, topic) for f in self.filters)


class MemoryBroker:
    """The broker; each `transport()` reaches it as one more client would."""

    def __init__(self) -> None:
        self._sessions: dict[str, _SessionState] = {}
        self.retained: dict[str, Outgoing] = {}
        """The retained message of each topic."""

    def transport(self) -> "MemoryTransport":
        """A transport to this broker."""
        return MemoryTransport(self)

    def connected(self, client_id: str) -> bool:
        """Whether a connection of this client id is open."""
        state = self._sessions.get(client_id)
        return state is not None and state.connection is not None

    def cut(self, client_id: str) -> None:
        """End a client's connection as a network failure would: its will is published."""
        state = self._sessions.get(client_id)
        if state is not None and state.connection is not None:
            state.connection.lose(TransportError(f"{client_id}: connection cut"))

    def publish(self, message: Outgoing) -> None:
        """Route one message to every matching session, and keep it if retained."""
        if message.retain:
            if message.payload:
                self.retained[message.topic] = message
            else:
                self.retained.pop(message.topic, None)
        for state in list(self._sessions.values()):
            if not state.matches(message.topic):
                continue
            if state.connection is not None:
                state.connection.deliver(message.topic, message.payload, message.qos)
            elif message.qos > 0:
                state.queued.append(message)

    def _open(self, session: Session, connection: "_MemoryConnection") -> _SessionState:
        state = self._sessions.get(session.client_id)
        if state is not None and state.connection is not None:
            # As Mosquitto: the will goes out unless the session carries on (both persistent).
            carried_on = session.persistent and state.session.persistent
            state.connection.lose(
                TransportError(f"{session.client_id}: session taken over"), will=not carried_on
            )
        if state is None or not session.persistent or not state.session.persistent:
            state = _SessionState(session)
            self._sessions[session.client_id] = state
        state.session = session
        state.connection = connection
        return state

    def _resume(self, state: _SessionState, connection: "_MemoryConnection") -> None:
        """Deliver what a session is owed, then what was queued while away (MQTT 4.4)."""
        unacked, state.unacked = state.unacked, []
        for delivery in unacked:
            connection.deliver(
                delivery.topic, delivery.payload, delivery.qos, retained=delivery.retained
            )
        while state.queued:
            message = state.queued.popleft()
            connection.deliver(message.topic, message.payload, message.qos)

    def _close(self, state: _SessionState, connection: "_MemoryConnection", *, will: bool) -> None:
        if state.connection is not connection:
            return  # taken over: the session is another connection's now
        state.connection = None
        if not state.session.persistent:
            del self._sessions[state.session.client_id]
        if will and state.session.will is not None:
            self.publish(state.session.will)


class _MemoryConnection:
    """One client's connection (a `Connection`)."""

    def __init__(self, broker: MemoryBroker, session: Session) -> None:
        self._broker = broker
        self._inbox: deque[_Delivery] = deque()
        self._arrived = asyncio.Event()
        self._lost: TransportError | None = None
        self._state = broker._open(session, self)  # noqa: SLF001 - the broker's own helper
        broker._resume(self._state, self)  # noqa: SLF001 - once `_state` is set: `deliver` reads it

    def deliver(self, topic: str, payload: bytes, qos: int, *, retained: bool = False) -> None:
        delivery = _Delivery(topic, payload, min(qos, 1), retained, time.monotonic(), self)
        if delivery.qos > 0 and self._state.session.persistent:
            self._state.unacked.append(delivery)
        self._inbox.append(delivery)
        self._arrived.set()

    def acked(self, delivery: _Delivery) -> None:
        if self._lost is None and delivery in self._state.unacked:
            self._state.unacked.remove(delivery)

    def lose(self, error: TransportError, *, will: bool = True) -> None:
        if self._lost is None:
            self._lost = error
            self._arrived.set()
            self._broker._close(self._state, self, will=will)  # noqa: SLF001

    def close(self) -> None:
        if self._lost is None:
            self._lost = TransportError("connection closed")
            self._broker._close(self._state, self, will=False)  # noqa: SLF001

    def _check(self) -> None:
        if self._lost is not None:
            raise self._lost

    async def subscribe(self, filters: Sequence[str]) -> None:
        self._check()
        self._state.filters.extend(f for f in filters if f not in self._state.filters)
        # Every filter of the request, new or not: subscribing again replays (MQTT-3.8.4-3).
        for topic, message in list(self._broker.retained.items()):
            if any(filter_matches(f, topic) for f in filters):
                self.deliver(topic, message.payload, message.qos, retained=True)
        await asyncio.sleep(0)

    async def publish(self, message: Outgoing) -> None:
        self._check()
        self._broker.publish(message)
        await asyncio.sleep(0)  # a publishing loop lets the receivers run, as a socket would

    async def messages(self) -> AsyncIterator[_Delivery]:
        while True:
            self._check()
            if self._inbox:
                yield self._inbox.popleft()
                continue
            self._arrived.clear()
            await self._arrived.wait()

    def take_ready(self, limit: int) -> list[_Delivery]:
        if self._lost is not None:
            return []
        return [self._inbox.popleft() for _ in range(min(limit, len(self._inbox)))]


class MemoryTransport:
    """A `Transport` to a `MemoryBroker`."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker

    def __str__(self) -> str:
        return "memory://"

    @asynccontextmanager
    async def connect(self, session: Session) -> AsyncIterator[Connection]:
        """A connection to the broker for the duration of the block."""
        connection = _MemoryConnection(self.broker, session)
        try:
            yield connection
        finally:
            connection.close()
