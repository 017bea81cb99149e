"""Events out: queued in the handler's transaction, published after commit by the relay.

An `Outbox` writes rows into the component's own database, inside whatever transaction is open,
so an effect commits with the state change that caused it. The `Relay` publishes the rows in
order at their QoS and forgets a row only once the broker acknowledged it; a crash in between
republishes it, with the id it was given at commit time, and every consumer dedupes by that id.
"""

import asyncio
import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from bus.stats import BusStats
from bus.store import BusStore
from bus.transport import Connection, Outgoing
from contracts import Envelope, Event
from contracts.events import DeadLetter

log = logging.getLogger("murmur.bus")

DEAD_LETTER_PAYLOAD_LIMIT = 16 * 1024
_RELAY_BATCH = 64


@dataclass(frozen=True)
class Producer:
    """Who a component is on the bus, and where its outgoing rows go."""

    component: str
    source: str
    root: str
    store: BusStore
    stats: BusStats
    wake: asyncio.Event
    """Set once rows were queued and committed: the relay looks again."""


class Outbox:
    """Queues events in the current transaction; the relay publishes them after commit."""

    def __init__(self, producer: Producer, cause: Envelope[Any] | None) -> None:
        self._producer = producer
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
            source=self._producer.source,
            correlationid=correlationid,
            causationid=causationid,
            sequence=sequence,
        )
        self.add(envelope)
        return envelope

    def add(self, envelope: Envelope[Event]) -> None:
        """Queue an already built envelope (its id is fixed now, so republishing can't fork it)."""
        data = envelope.data
        self._producer.store.enqueue(
            data.resolved_topic(self._producer.root),
            envelope.to_json(),
            qos=data.qos,
            retain=data.retained,
            droppable=data.droppable,
            supersede=data.snapshot,
        )

    def refuse(self, event: Envelope[Any], *, reason: str, detail: str) -> None:
        """Dead-letter `event` instead of applying it: a handler's own rule refused it.

        In the handler's transaction, so the refusal commits (and is acknowledged) with it.
        """
        self.dead_letter(
            topic=event.data.resolved_topic(self._producer.root),
            payload=event.to_json(),
            reason=reason,
            detail=detail,
            event_id=event.id,
            event_type=event.type,
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
        """Record refused input with its reason, and queue it for `dlq/{component}`."""
        producer = self._producer
        kept = payload[:DEAD_LETTER_PAYLOAD_LIMIT]
        letter = DeadLetter(
            component=producer.component,
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
        producer.store.record_dead_letter(
            topic=topic, reason=reason, detail=detail, event_id=event_id, payload=payload
        )
        self.emit(letter)
        producer.stats.dead_letters += 1
        log.warning(
            "%s: dead-lettered input on %s: %s: %s", producer.component, topic, reason, detail
        )


class Relay:
    """Publishes the outbox over one connection, in order, until the connection ends."""

    def __init__(self, producer: Producer) -> None:
        self._producer = producer

    async def run(self, connection: Connection) -> None:
        """Publish pending rows a batch at a time; wait for more when there are none."""
        store, wake = self._producer.store, self._producer.wake
        while True:
            wake.clear()
            rows = store.pending(_RELAY_BATCH)
            if not rows:
                await wake.wait()
                continue
            # Concurrent publishes go on the wire in call order: the batch keeps the order.
            await asyncio.gather(
                *(connection.publish(Outgoing(r.topic, r.payload, r.qos, r.retain)) for r in rows)
            )
            store.mark_sent(rows[-1].seq)
            self._producer.stats.published += len(rows)
