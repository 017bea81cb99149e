"""The client side of the contract: request a delivery, cancel it, follow its status.

A plain MQTT client with no database: a request is done once the broker acknowledged it
(PUBACK), and the client picks the delivery id, so retrying a request cannot double it.
"""

import itertools
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt

from bus.bus import raise_if_cancelled
from bus.url import BrokerUrl
from contracts import DEFAULT_ROOT, DecodeError, Envelope, Event, decode
from contracts.events import (
    DeliveryCancellationRequested,
    DeliveryRequested,
    DeliveryStatusChanged,
    DeliveryTraced,
    DeliveryTraceRequested,
)
from contracts.topics import filter_matches, join

SOURCE = "/clients/cli"
_ids = itertools.count()


class Client:
    """One connected client; `connect()` opens it."""

    def __init__(self, mqtt: aiomqtt.Client, root: str) -> None:
        self._mqtt = mqtt
        self.root = root
        self._filters: list[str] = []

    async def publish(self, data: Event, *, correlationid: str | None = None) -> Envelope[Event]:
        """Publish one event at QoS 1; returns once the broker acknowledged it."""
        envelope = Envelope[Event].new(data, source=SOURCE, correlationid=correlationid)
        await self._mqtt.publish(
            data.resolved_topic(self.root), envelope.to_json(), qos=data.qos, retain=data.retained
        )
        # A loop of requests (`murmur up --demand`) must stop when cancelled, even if this
        # publish swallowed the cancellation.
        raise_if_cancelled()
        return envelope

    async def request(self, request: DeliveryRequested) -> Envelope[Event]:
        """Ask for a delivery."""
        return await self.publish(request, correlationid=request.delivery_id)

    async def cancel(self, delivery_id: str, reason: str | None = None) -> Envelope[Event]:
        """Ask to cancel a delivery (granted until pickup)."""
        data = DeliveryCancellationRequested(delivery_id=delivery_id, reason=reason)
        return await self.publish(data, correlationid=delivery_id)

    async def trace(self, delivery_id: str) -> DeliveryTraced:
        """The Delivery service's journal of one delivery (waits for its answer)."""
        await self.subscribe(f"deliveries/{delivery_id}/trace")
        request_id = f"tr-{uuid.uuid4().hex[:16]}"
        await self.publish(DeliveryTraceRequested(delivery_id=delivery_id, request_id=request_id))
        async for envelope in self.events():
            data = envelope.data
            if isinstance(data, DeliveryTraced) and data.request_id == request_id:
                return data
        msg = "the connection ended before the trace arrived"
        raise aiomqtt.MqttError(msg)

    async def watch_status(self, delivery_ids: Iterable[str] = ("+",)) -> None:
        """Subscribe to the retained status of these deliveries (all by default)."""
        for delivery_id in delivery_ids:
            await self.subscribe(f"deliveries/{delivery_id}/status")

    async def subscribe(self, relative_filter: str) -> None:
        """Subscribe to any topic filter under the root."""
        topic_filter = join(self.root, relative_filter)
        self._filters.append(topic_filter)
        await self._mqtt.subscribe(topic_filter, qos=1)

    async def events(self) -> AsyncIterator[Envelope[Any]]:
        """Every decodable event on the subscriptions; undecodable input is skipped."""
        async for message in self._mqtt.messages:
            if not any(filter_matches(f, str(message.topic)) for f in self._filters):
                continue  # amqtt replays retained topics of other clients' filters
            payload = message.payload
            raw = payload if isinstance(payload, bytes) else str(payload or "").encode()
            try:
                yield decode(str(message.topic), raw, root=self.root)
            except DecodeError:
                continue

    async def statuses(self) -> AsyncIterator[DeliveryStatusChanged]:
        """Status changes on the subscriptions, as they arrive."""
        async for envelope in self.events():
            if isinstance(envelope.data, DeliveryStatusChanged):
                yield envelope.data


@asynccontextmanager
async def connect(url: BrokerUrl | str, *, root: str = DEFAULT_ROOT) -> AsyncIterator[Client]:
    """A client connection for the duration of the block."""
    parsed = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
    client_id = f"murmur-client-{uuid.uuid4().hex[:8]}-{next(_ids)}"
    async with parsed.client(client_id, clean_session=True) as mqtt:
        yield Client(mqtt, root)
