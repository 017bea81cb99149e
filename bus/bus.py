"""The MQTT bus: at-least-once in, effects applied once, events out through an outbox.

This is the only module that talks to aiomqtt. Guarantees (see docs/bus.md):

* A message is acknowledged (PUBACK) only after its handler's transaction committed; that
  transaction also records the event id in the inbox and queues the events it caused in the
  outbox, so a crash at any point loses nothing and a redelivery changes nothing.
* Input that cannot be decoded, or whose handler keeps failing, is dead-lettered with the
  reason (locally and on `dlq/{component}`) and then acknowledged.
* The relay publishes the outbox in order at QoS 1 and forgets a row only once the broker
  acknowledged it. The connection is retried forever with capped, jittered backoff.
"""

import asyncio
import base64
import hashlib
import logging
import random
import select
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import aiomqtt
import sqlite_utils
from paho.mqtt.enums import MQTTErrorCode

from bus import logcontext
from bus.store import BusStore
from bus.url import BrokerUrl
from contracts import DEFAULT_ROOT, DecodeError, Envelope, Event, decode
from contracts.events import DeadLetter, Link
from contracts.topics import filter_matches, to_filter

log = logging.getLogger("murmur.bus")

Handler = Callable[[Envelope[Any], "Outbox"], None]
"""Applies one event: changes state and emits what it causes, inside one transaction."""

Presence = Callable[[Link, int], Event]
"""Builds the retained online/offline event of a session (also the last will)."""

DEAD_LETTER_PAYLOAD_LIMIT = 16 * 1024
_RELAY_BATCH = 64
_CONSUME_BATCH = 64  # messages applied in one transaction, at most
_READ_BURST = 256  # packets read from the socket per wake-up of the event loop, at most
# Messages received and not yet handled, at most (one paho read may add as many packets as it
# has messages in flight, up to 64 more): past it the socket is not read, and the broker holds
# the rest (backpressure).
_MAX_PENDING = 256
# The socket's receive buffer (the kernel doubles it); left alone, Linux grows it to MiBs and a
# burst waits there, past the window above, with the broker counting it as delivered.
_RECEIVE_BUFFER = 128 * 1024
# Acknowledgements (PUBACK, SUBACK) arrive in the same TCP stream as the messages sent to us,
# after those not read yet: under a burst they wait for the backlog. A timeout ends the
# connection, and amqtt drops what it has in flight to us then (Yakifo/amqtt#401).
_ACK_TIMEOUT_S = 60.0


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that an await swallowed.

    Python 3.11's `asyncio.wait_for`, which aiomqtt awaits inside `publish`, can swallow a
    cancellation that races with its result (CPython gh-86296, fixed in 3.12). A loop that
    awaits it calls this after each round so that it still stops when cancelled.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def read_all_available(client: aiomqtt.Client, *, max_pending: int = 0) -> Callable[[], None]:
    """Make `client` read every packet that has arrived each time its socket is readable.

    paho's `loop_read`, which aiomqtt calls when the socket is readable, reads one packet: a
    client then takes in one message per turn of the event loop, however busy that turn is.
    A component whose loop also runs timers, SQLite commits or a simulated fleet then falls
    behind its telemetry alone, and every event queues behind it in the socket buffer.
    Messages are read in the same order either way.

    With `max_pending`, the client stops reading its socket while that many received
    messages wait in its queue (aiomqtt's is unbounded): the kernel's socket buffer fills,
    TCP stops the broker's sending, and the broker keeps the rest of a burst instead of this
    process (docs/reliability.md, "Event storms"). Call the function returned after taking
    messages from the queue: reading resumes once at most half of `max_pending` wait.
    Without `max_pending` that function does nothing.
    """
    mqtt = client._client  # noqa: SLF001 - aiomqtt exposes no reading policy
    read_one = mqtt.loop_read
    sock = _Socket(mqtt)
    window = _ReceiveWindow(client, sock.fileno, max_pending)

    def read_available(max_packets: int = 1) -> MQTTErrorCode:
        if window.pause():
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        rc = read_one(max_packets)
        for _ in range(_READ_BURST):
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or window.full() or not sock.readable():
                break
            rc = read_one(max_packets)
        return rc

    mqtt.loop_read = read_available  # type: ignore[method-assign]
    return window.taken


class _Socket:
    """Whether a paho client's socket, whichever it is now, has bytes waiting."""

    def __init__(self, mqtt: Any) -> None:  # noqa: ANN401 - paho's client
        self._mqtt = mqtt
        # poll, not select: a process with hundreds of connections has descriptors past 1024.
        self._poller = select.poll()
        self._polled = -1

    def fileno(self) -> int:
        sock = self._mqtt.socket()
        return sock.fileno() if sock is not None else -1

    def readable(self) -> bool:
        fd = self.fileno()
        if fd < 0:
            return False
        if fd != self._polled:
            if self._polled >= 0:
                self._poller.unregister(self._polled)
            self._poller.register(fd, select.POLLIN)
            self._polled = fd
        return bool(self._poller.poll(0))


class _ReceiveWindow:
    """Pauses a client's reading while `limit` received messages wait in its queue (0: never).

    Pausing removes the socket's reader from the event loop (a readable socket left
    registered would wake the loop again and again); `taken` registers a reader again.
    """

    def __init__(self, client: aiomqtt.Client, fileno: Callable[[], int], limit: int) -> None:
        self._client = client
        self._fileno = fileno
        self._limit = limit
        self._paused = -1  # the descriptor whose reader was removed

    def full(self) -> bool:
        return self._limit > 0 and self._client._queue.qsize() >= self._limit  # noqa: SLF001

    def pause(self) -> bool:
        """Stop reading if the queue is full; whether reading is paused."""
        if self._paused >= 0:
            return True
        if not self.full() or _tls_pending(self._client):
            # TLS: aiomqtt reads again while decrypted bytes are pending, so a read that
            # does nothing would spin; those bytes (one TLS record at most) are read.
            return False
        fd = self._fileno()
        if fd < 0:
            return False
        asyncio.get_running_loop().remove_reader(fd)
        self._paused = fd
        return True

    def taken(self) -> None:
        """Messages left the queue: read again once at most half of the limit wait."""
        if self._paused < 0 or self._client._queue.qsize() > self._limit // 2:  # noqa: SLF001
            return
        fd, self._paused = self._paused, -1
        if fd == self._fileno():  # the same connection: a closed one has no reader to restore
            asyncio.get_running_loop().add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        # What aiomqtt's own reader does: read, and a read that raises ends the connection.
        mqtt = self._client._client  # noqa: SLF001
        try:
            while True:
                mqtt.loop_read()
                if self._paused >= 0 or not _tls_pending(self._client):
                    break
        except Exception as exc:  # noqa: BLE001 - handed to aiomqtt, which ends the connection
            disconnected = self._client._disconnected  # noqa: SLF001
            if not disconnected.done():
                disconnected.set_exception(exc)


def _tls_pending(client: aiomqtt.Client) -> bool:
    sock = client._client.socket()  # noqa: SLF001
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def _raw(payload: Any) -> bytes:  # noqa: ANN401 - aiomqtt's payload type
    return payload if isinstance(payload, bytes) else str(payload or "").encode()


@dataclass
class BusStats:
    """Counters for logs, the console and tests."""

    handled: int = 0
    volatile: int = 0  # of `handled`, QoS 0 events (telemetry): no inbox row, no commit to wait
    duplicates: int = 0
    dead_letters: int = 0
    retries: int = 0
    ignored: int = 0
    published: int = 0
    connections: int = 0


@dataclass(frozen=True)
class _Route:
    event_cls: type[Event]
    handler: Handler
    topic_filter: str


class Outbox:
    """Queues events in the current transaction; the relay publishes them after commit."""

    def __init__(self, bus: "Bus", cause: Envelope[Any] | None) -> None:
        self._bus = bus
        self._cause = cause

    def emit(
        self,
        data: Event,
        *,
        correlationid: str | None = None,
        causationid: str | None = None,
        sequence: int | None = None,
    ) -> Envelope[Event]:
        """Wrap `data` and queue it.

        Inside a handler it is caused by the event handled and shares its correlation id,
        unless other ids are given.
        """
        if self._cause is not None:
            # Explicit ids win: a drone's state change may cause an offer of some delivery.
            correlationid = correlationid or self._cause.correlationid
            causationid = causationid or self._cause.id
        envelope = Envelope[Event].new(
            data,
            source=self._bus.source,
            correlationid=correlationid,
            causationid=causationid,
            sequence=sequence,
        )
        self.add(envelope)
        return envelope

    def refuse(self, event: Envelope[Any], *, reason: str, detail: str) -> None:
        """Dead-letter `event` instead of applying it: a handler's own rule refused it.

        In the handler's transaction, so the refusal commits (and is acknowledged) with it.
        """
        self._bus.dead_letter(
            topic=event.data.resolved_topic(self._bus.root),
            payload=event.to_json(),
            reason=reason,
            detail=detail,
            event_id=event.id,
            event_type=event.type,
        )

    def add(self, envelope: Envelope[Event]) -> None:
        """Queue an already built envelope (its id is fixed now, so republishing can't fork it)."""
        data = envelope.data
        self._bus.store.enqueue(
            data.resolved_topic(self._bus.root),
            envelope.to_json(),
            qos=data.qos,
            retain=data.retained,
            droppable=data.droppable,
            supersede=data.snapshot,
        )


@dataclass
class _Settings:
    handler_attempts: int = 3
    retry_backoff_s: float = 0.05
    keepalive_s: int = 30
    reconnect_max_s: float = 5.0
    max_inflight: int = 64
    max_pending: int = _MAX_PENDING


class Bus:
    """One component's connection to the choreography."""

    def __init__(
        self,
        *,
        component: str,
        url: BrokerUrl | str,
        db: sqlite_utils.Database,
        root: str = DEFAULT_ROOT,
        client_id: str | None = None,
        source: str | None = None,
        presence: Presence | None = None,
        subscription_prefix: str = "",
        handler_attempts: int = 3,
        reconnect_max_s: float = 5.0,
    ) -> None:
        self.component = component
        self.url = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
        self.root = root
        self.client_id = client_id or f"murmur-{component}"
        self.source = source or f"/{component}"
        self.store = BusStore(db)
        self.stats = BusStats()
        self.session = 0
        self.connected = asyncio.Event()
        self._presence = presence
        self._prefix = subscription_prefix
        self._settings = _Settings(
            handler_attempts=handler_attempts, reconnect_max_s=reconnect_max_s
        )
        self._routes: dict[type[Event], _Route] = {}
        self._wake = asyncio.Event()
        self._failures = 0
        self._client_now: aiomqtt.Client | None = None

    @property
    def db(self) -> sqlite_utils.Database:
        """The component's database, shared with its own store."""
        return self.store.db

    def route(self, event_cls: type[Event], handler: Handler, **params: str) -> None:
        """Handle `event_cls`; `params` narrow the subscription (e.g. drone_id="d-1")."""
        if event_cls in self._routes:
            msg = f"{event_cls.__name__} already has a handler"
            raise ValueError(msg)
        topic_filter = to_filter(event_cls.topic, root=self.root, **params)
        self._routes[event_cls] = _Route(event_cls, handler, topic_filter)

    @property
    def subscriptions(self) -> dict[type[Event], str]:
        """Each event type handled, and the topic filter (under the root) it is received on."""
        return {cls: route.topic_filter for cls, route in self._routes.items()}

    @contextmanager
    def transaction(self) -> Iterator[Outbox]:
        """A unit of work outside any handler (timers, commands); emits publish on commit."""
        with self.store.transaction():
            yield Outbox(self, cause=None)
        self._wake.set()

    def emit(self, data: Event, *, correlationid: str | None = None) -> Envelope[Event]:
        """Queue one event in its own transaction."""
        with self.transaction() as out:
            return out.emit(data, correlationid=correlationid)

    async def publish_volatile(self, data: Event, *, sequence: int | None = None) -> bool:
        """Publish now at the event's QoS if connected, else drop it (telemetry).

        Returns whether it was handed to the broker connection.
        """
        client = self._client_now
        if client is None or not self.connected.is_set():
            return False
        envelope = Envelope[Event].new(data, source=self.source, sequence=sequence)
        try:
            await client.publish(
                data.resolved_topic(self.root), envelope.to_json(), qos=data.qos, retain=False
            )
        except aiomqtt.MqttError:
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
                await self._connection()
            except* (aiomqtt.MqttError, TimeoutError, OSError) as group:
                log.warning("%s: connection lost: %s", self.client_id, group.exceptions[0])
            finally:
                self.connected.clear()
                self._client_now = None
            # A TaskGroup reports its children's errors rather than the cancellation that
            # interrupted them: a cancelled bus must not take that for a lost connection.
            raise_if_cancelled()
            ceiling = min(self._settings.reconnect_max_s, 0.05 * 2**self._failures)
            self._failures = min(self._failures + 1, 16)
            await asyncio.sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto

    async def _connection(self) -> None:
        client, taken = self._client()
        async with client:
            self._failures = 0
            self.stats.connections += 1
            try:
                async with asyncio.TaskGroup() as tasks:
                    # Consume before subscribing: amqtt sends a filter's retained messages
                    # before its SUBACK and drops them unless acknowledged within 5 s.
                    tasks.create_task(
                        self._consume(client, taken), name=f"{self.component}.consume"
                    )
                    await self._subscribe_and_announce(client)
                    tasks.create_task(self._relay(client), name=f"{self.component}.relay")
                    # Wait here, not in the TaskGroup's exit: Python 3.11's TaskGroup, when a
                    # child fails while its exit waits, cancels this task and never takes that
                    # cancellation back (`cancelling()` stays raised), and `raise_if_cancelled`
                    # would then stop a bus that only lost its connection.
                    await asyncio.Event().wait()
            except asyncio.CancelledError:
                await self._say_goodbye(client)
                raise

    async def _subscribe_and_announce(self, client: aiomqtt.Client) -> None:
        for topic_filter in sorted({r.topic_filter for r in self._routes.values()}):
            await client.subscribe(self._prefix + topic_filter, qos=1, timeout=_ACK_TIMEOUT_S)
        if self._presence is not None:
            online = Envelope[Event].new(
                self._presence(Link.ONLINE, self.session), source=self.source
            )
            await self._publish_now(client, online)
        self._client_now = client
        self.connected.set()
        log.info("%s: connected to %s (session %d)", self.client_id, self.url, self.session)

    def _client(self) -> tuple[aiomqtt.Client, Callable[[], None]]:
        """A new client, and what its consumer calls after taking messages (backpressure)."""
        will = None
        if self._presence is not None:
            offline = Envelope[Event].new(
                self._presence(Link.OFFLINE, self.session), source=self.source
            )
            will = aiomqtt.Will(
                offline.data.resolved_topic(self.root), offline.to_json(), qos=1, retain=True
            )
        client = self.url.client(
            self.client_id,
            clean_session=False,
            keepalive=self._settings.keepalive_s,
            will=will,
            max_inflight_messages=self._settings.max_inflight,
            socket_options=((socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER),),
        )
        # The relay keeps a batch in flight on purpose; only warn beyond that.
        client.pending_calls_threshold = _RELAY_BATCH + self._settings.max_inflight
        # aiomqtt acknowledges on receipt; we acknowledge after commit instead.
        client._client.manual_ack_set(True)  # noqa: SLF001, FBT003
        taken = read_all_available(client, max_pending=self._settings.max_pending)
        return client, taken

    async def _consume(self, client: aiomqtt.Client, taken: Callable[[], None]) -> None:
        # aiomqtt offers no non-blocking read: what has already arrived is taken from its queue.
        queue = client._queue  # noqa: SLF001
        async for message in client.messages:
            batch = [message]
            while len(batch) < _CONSUME_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            taken()  # the socket is read again while this batch is applied
            await self._receive_all(client, batch)
            raise_if_cancelled()

    async def _receive_all(self, client: aiomqtt.Client, messages: list[aiomqtt.Message]) -> None:
        """Apply what has arrived, acknowledging each message only after its commit.

        Under load many messages are waiting: a prefix of them is applied in one transaction
        (`_apply_together`: one commit, one disk sync, for all). The rest, from the first one
        that needs more care (a dead letter, a handler that raised), go one by one.
        """
        received = [(str(m.topic), _raw(m.payload)) for m in messages]
        done, failure = self._apply_together(received) if len(received) > 1 else (0, None)
        for message in messages[:done]:
            if message.qos > 0:
                client._client.ack(message.mid, message.qos)  # noqa: SLF001
        for i, message in enumerate(messages[done:]):
            topic, payload = received[done + i]
            if i == 0 and failure is not None:
                # The handler failed once in the shared transaction: that was its first attempt.
                await self._retry(topic, payload, failure)
            else:
                await self.receive(topic, payload)
            if message.qos > 0:
                client._client.ack(message.mid, message.qos)  # noqa: SLF001
            raise_if_cancelled()

    def _apply_together(self, received: list[tuple[str, bytes]]) -> tuple[int, Exception | None]:
        """Apply a prefix of `received` in one transaction, each handler in its own savepoint.

        Stops before the first message that cannot be decoded (a dead letter) or whose handler
        raises (its savepoint is rolled back; the caller retries it). Returns how many were
        applied and committed, and the handler's exception if one stopped the batch.
        """
        applied, failure = 0, None
        counts = BusStats()
        try:
            with self.store.transaction():
                for topic, payload in received:
                    try:
                        routed = self._routed(topic, payload, counts)
                    except DecodeError:
                        break
                    if routed is not None:
                        route, envelope = routed
                        try:
                            self._apply(route, envelope, counts)
                        except Exception as exc:  # noqa: BLE001 - retried by the caller
                            failure = exc
                            break
                    applied += 1
        except Exception:  # noqa: BLE001 - the commit itself failed: nothing was applied
            log.warning("%s: a batch of %d failed to commit", self.client_id, len(received))
            return 0, None
        for name in ("handled", "volatile", "duplicates", "ignored"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(counts, name))
        if counts.handled:
            self._wake.set()
        return applied, failure

    async def receive(self, topic: str, payload: bytes) -> None:
        """Decode, dedupe, handle with bounded retries, or dead-letter one message."""
        await self._receive(topic, payload, first_attempt=1)

    async def _retry(self, topic: str, payload: bytes, failure: Exception) -> None:
        """A message whose first attempt failed: back off, then attempt it again."""
        if self._settings.handler_attempts > 1:
            self.stats.retries += 1
            log.warning("%s: handling failed (%s), retrying", self.client_id, failure)
            await asyncio.sleep(self._settings.retry_backoff_s * 2)
        await self._receive(topic, payload, first_attempt=2, failure=failure)

    async def _receive(
        self, topic: str, payload: bytes, *, first_attempt: int, failure: Exception | None = None
    ) -> None:
        try:
            routed = self._routed(topic, payload, self.stats)
        except DecodeError as exc:
            self.dead_letter(
                topic=topic,
                payload=payload,
                reason=exc.kind.value,
                detail=exc.detail,
                event_id=exc.event_id,
                event_type=exc.event_type,
            )
            return
        if routed is None:
            return
        route, envelope = routed
        # The correlation id is the delivery id: records logged while handling carry it.
        with logcontext.delivery(envelope.correlationid):
            await self._handle(
                route, envelope, topic, payload, first_attempt=first_attempt, failure=failure
            )

    def _routed(
        self, topic: str, payload: bytes, counts: BusStats
    ) -> tuple[_Route, Envelope[Any]] | None:
        """The route and the decoded event of one message, or None if it is not for us.

        Raises:
            DecodeError: the payload is not a valid event for its topic.
        """
        if not any(filter_matches(r.topic_filter, topic) for r in self._routes.values()):
            # amqtt replays retained messages of filters we never subscribed to.
            counts.ignored += 1
            return None
        envelope = decode(topic, payload, root=self.root)
        route = self._routes.get(type(envelope.data))
        if route is None:
            counts.ignored += 1  # another type on a shared topic, e.g. cmd/reply
            return None
        return route, envelope

    def _apply(self, route: _Route, envelope: Envelope[Any], counts: BusStats) -> None:
        """Claim and handle one event in a transaction (a savepoint inside a batch's)."""
        with logcontext.delivery(envelope.correlationid), self.store.transaction():
            # QoS 0 is never redelivered, so it needs no inbox row (and no fsync).
            volatile = envelope.data.qos == 0
            if not volatile and not self.store.claim(envelope.source, envelope.id):
                counts.duplicates += 1
                return
            route.handler(envelope, Outbox(self, cause=envelope))
            counts.handled += 1
            counts.volatile += volatile

    async def _handle(
        self,
        route: _Route,
        envelope: Envelope[Any],
        topic: str,
        payload: bytes,
        *,
        first_attempt: int = 1,
        failure: Exception | None = None,
    ) -> None:
        """Apply one decoded event with bounded retries, or dead-letter it."""
        attempts = self._settings.handler_attempts
        for attempt in range(first_attempt, attempts + 1):
            try:
                self._apply(route, envelope, self.stats)
            except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then parked
                failure = exc
                if attempt == attempts:
                    break
                self.stats.retries += 1
                log.warning("%s: %s failed (%s), retrying", self.client_id, envelope.type, exc)
                await asyncio.sleep(self._settings.retry_backoff_s * 2**attempt)
            else:
                self._wake.set()
                return
        self.dead_letter(
            topic=topic,
            payload=payload,
            reason="handler_failed",
            detail=f"{type(failure).__name__}: {failure} (after {attempts} attempts)",
            event_id=envelope.id,
            event_type=envelope.type,
        )

    def dead_letter(
        self,
        *,
        topic: str,
        payload: bytes,
        reason: str,
        detail: str,
        event_id: str | None = None,
        event_type: str | None = None,
    ) -> None:
        """Record refused input with its reason, and publish it on `dlq/{component}`."""
        kept = payload[:DEAD_LETTER_PAYLOAD_LIMIT]
        letter = DeadLetter(
            component=self.component,
            reason=reason[:64],
            detail=detail[:2000],
            topic_name=topic[:65535],
            payload_b64=base64.b64encode(kept).decode(),
            payload_size=len(payload),
            payload_sha256=hashlib.sha256(payload).hexdigest(),
            truncated=len(kept) < len(payload),
            event_id=event_id[:128] if event_id else None,
            event_type=event_type[:128] if event_type else None,
        )
        with self.transaction() as out:
            self.store.record_dead_letter(
                topic=topic, reason=reason, detail=detail, event_id=event_id, payload=payload
            )
            out.emit(letter)
        self.stats.dead_letters += 1
        log.warning("%s: dead-lettered input on %s: %s: %s", self.client_id, topic, reason, detail)

    async def _relay(self, client: aiomqtt.Client) -> None:
        while True:
            self._wake.clear()
            rows = self.store.pending(_RELAY_BATCH)
            if not rows:
                await self._wake.wait()
                continue
            # paho sends in call order, so a batch keeps the outbox order on the wire.
            await asyncio.gather(
                *(
                    client.publish(
                        r.topic, r.payload, qos=r.qos, retain=r.retain, timeout=_ACK_TIMEOUT_S
                    )
                    for r in rows
                )
            )
            self.store.mark_sent(rows[-1].seq)
            self.stats.published += len(rows)
            raise_if_cancelled()

    async def _publish_now(self, client: aiomqtt.Client, envelope: Envelope[Event]) -> None:
        data = envelope.data
        await client.publish(
            data.resolved_topic(self.root),
            envelope.to_json(),
            qos=1,
            retain=data.retained,
            timeout=_ACK_TIMEOUT_S,
        )
        raise_if_cancelled()  # aiomqtt's publish may have swallowed a cancellation (see above)

    async def _say_goodbye(self, client: aiomqtt.Client) -> None:
        """A clean disconnect fires no last will, so say offline ourselves."""
        if self._presence is None:
            return
        offline = Envelope[Event].new(
            self._presence(Link.OFFLINE, self.session), source=self.source
        )
        with suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(2):
                await self._publish_now(client, offline)
