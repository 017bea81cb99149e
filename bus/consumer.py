"""Events in: route, decode, claim, handle with bounded retries or dead-letter, then acknowledge.

A message is acknowledged only after its handler's transaction committed; that transaction
also claims the event id in the inbox and queues the events it caused in the outbox, so a crash
at any point loses nothing and a redelivery changes nothing (docs/bus.md). Input that cannot be
decoded, or whose handler keeps failing, is dead-lettered with the reason and then acknowledged.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bus import logcontext
from bus.outbox import Outbox, Producer
from bus.stats import BusStats
from bus.transport import Connection, Incoming
from contracts import DecodeError, Envelope, Event, decode
from contracts.topics import filter_matches, to_filter

log = logging.getLogger("murmur.bus")

Handler = Callable[[Envelope[Any], Outbox], None]
"""Applies one event: changes state and emits what it causes, inside one transaction."""

_BATCH = 64  # messages applied in one transaction, at most


@dataclass(frozen=True)
class _Route:
    event_cls: type[Event]
    handler: Handler
    topic_filter: str


class Consumer:
    """The handlers of one component, and the way each message reaches one."""

    def __init__(
        self, producer: Producer, *, handler_attempts: int = 3, retry_backoff_s: float = 0.05
    ) -> None:
        self._producer = producer
        self._attempts = handler_attempts
        self._backoff_s = retry_backoff_s
        self._routes: dict[type[Event], _Route] = {}

    def route(self, event_cls: type[Event], handler: Handler, **params: str) -> None:
        """Handle `event_cls`; `params` narrow the subscription (e.g. drone_id="d-1")."""
        if event_cls in self._routes:
            msg = f"{event_cls.__name__} already has a handler"
            raise ValueError(msg)
        topic_filter = to_filter(event_cls.topic, root=self._producer.root, **params)
        self._routes[event_cls] = _Route(event_cls, handler, topic_filter)

    @property
    def subscriptions(self) -> dict[type[Event], str]:
        """Each event type handled, and the topic filter (under the root) it is received on."""
        return {cls: route.topic_filter for cls, route in self._routes.items()}

    async def consume(self, connection: Connection) -> None:
        """Apply every message the connection receives, until it is lost."""
        async for message in connection.messages():
            # Under load many have arrived: what is already there goes in one transaction.
            await self.receive_all([message, *connection.take_ready(_BATCH - 1)])

    async def receive_all(self, messages: Sequence[Incoming]) -> None:
        """Apply what has arrived, acknowledging each message only after its commit.

        A prefix of them is applied in one transaction (`apply_together`: one commit, one disk
        sync, for all). The rest, from the first one that needs more care (a dead letter, a
        handler that raised), go one by one.
        """
        received = [(m.topic, m.payload) for m in messages]
        done, failure = self.apply_together(received) if len(received) > 1 else (0, None)
        for message in messages[:done]:
            await message.ack()
        for i, message in enumerate(messages[done:]):
            topic, payload = received[done + i]
            if i == 0 and failure is not None:
                # The handler failed once in the shared transaction: that was its first attempt.
                await self._retry(topic, payload, failure)
            else:
                await self.receive(topic, payload)
            await message.ack()

    def apply_together(self, received: list[tuple[str, bytes]]) -> tuple[int, Exception | None]:
        """Apply a prefix of `received` in one transaction, each handler in its own savepoint.

        Stops before the first message that cannot be decoded (a dead letter) or whose handler
        raises (its savepoint is rolled back; the caller retries it). Returns how many were
        applied and committed, and the handler's exception if one stopped the batch.
        """
        applied, failure = 0, None
        counts = BusStats()
        try:
            with self._producer.store.transaction():
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
            log.warning("%s: a batch of %d failed to commit", self._name, len(received))
            return 0, None
        self._producer.stats.add(counts)
        if counts.handled:
            self._producer.wake.set()
        return applied, failure

    async def receive(self, topic: str, payload: bytes) -> None:
        """Decode, dedupe, handle with bounded retries, or dead-letter one message."""
        await self._receive(topic, payload, first_attempt=1)

    @property
    def _name(self) -> str:
        return self._producer.component

    async def _retry(self, topic: str, payload: bytes, failure: Exception) -> None:
        """A message whose first attempt failed: back off, then attempt it again."""
        if self._attempts > 1:
            self._producer.stats.retries += 1
            log.warning("%s: handling failed (%s), retrying", self._name, failure)
            await asyncio.sleep(self._backoff_s * 2)
        await self._receive(topic, payload, first_attempt=2, failure=failure)

    async def _receive(
        self, topic: str, payload: bytes, *, first_attempt: int, failure: Exception | None = None
    ) -> None:
        try:
            routed = self._routed(topic, payload, self._producer.stats)
        except DecodeError as exc:
            self._dead_letter(
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
        envelope = decode(topic, payload, root=self._producer.root)
        route = self._routes.get(type(envelope.data))
        if route is None:
            counts.ignored += 1  # another type on a shared topic, e.g. cmd/reply
            return None
        return route, envelope

    def _apply(self, route: _Route, envelope: Envelope[Any], counts: BusStats) -> None:
        """Claim and handle one event in a transaction (a savepoint inside a batch's)."""
        store = self._producer.store
        with logcontext.delivery(envelope.correlationid), store.transaction():
            # QoS 0 is never redelivered, so it needs no inbox row (and no fsync).
            volatile = envelope.data.qos == 0
            if not volatile and not store.claim(envelope.source, envelope.id):
                counts.duplicates += 1
                return
            route.handler(envelope, Outbox(self._producer, cause=envelope))
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
        for attempt in range(first_attempt, self._attempts + 1):
            try:
                self._apply(route, envelope, self._producer.stats)
            except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then parked
                failure = exc
                if attempt == self._attempts:
                    break
                self._producer.stats.retries += 1
                log.warning("%s: %s failed (%s), retrying", self._name, envelope.type, exc)
                await asyncio.sleep(self._backoff_s * 2**attempt)
            else:
                self._producer.wake.set()
                return
        self._dead_letter(
            topic=topic,
            payload=payload,
            reason="handler_failed",
            detail=f"{type(failure).__name__}: {failure} (after {self._attempts} attempts)",
            event_id=envelope.id,
            event_type=envelope.type,
        )

    def _dead_letter(self, **letter: Any) -> None:  # noqa: ANN401 - Outbox.dead_letter's keywords
        with self._producer.store.transaction():
            Outbox(self._producer, cause=None).dead_letter(**letter)
        self._producer.wake.set()
