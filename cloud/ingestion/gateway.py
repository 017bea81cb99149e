"""The ingestion process's one MQTT connection: publish on behalf of HTTP calls, watch statuses.

A plain client with no database, like `murmur.client` (which `cloud` may not import): an event
is handed over once the broker acknowledged it (PUBACK), within a short bound, or the caller is
told the broker is unavailable. The connection is kept up for the life of the process and
re-opened with bounded, jittered backoff; while it is down, publishing fails at once.
"""

import asyncio
import logging
import random
import uuid
from typing import Any

import aiomqtt

from bus.url import BrokerUrl
from cloud.ingestion.statuses import StatusBoard
from contracts import DEFAULT_ROOT, DecodeError, Envelope, Event, decode
from contracts.events import DeliveryStatusChanged
from contracts.topics import filter_matches, to_filter

log = logging.getLogger(__name__)

SOURCE = "/cloud/ingestion"


class BrokerUnavailableError(RuntimeError):
    """The broker did not take an event: not connected, refused, or no PUBACK in time."""


class Gateway:
    """Publishes events for HTTP calls and keeps the status board current."""

    def __init__(
        self,
        url: BrokerUrl,
        *,
        root: str = DEFAULT_ROOT,
        publish_timeout_s: float = 3.0,
        reconnect_max_s: float = 2.0,
        keepalive_s: int = 15,
    ) -> None:
        self.url = url
        self.root = root
        self.board = StatusBoard()
        # Both kept, so a caller can wait for either edge without polling.
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self._status_filter = to_filter(DeliveryStatusChanged.topic, root=root)
        self._publish_timeout_s = publish_timeout_s
        self._reconnect_max_s = reconnect_max_s
        self._keepalive_s = keepalive_s
        self._client: aiomqtt.Client | None = None
        self._failures = 0

    async def publish(self, data: Event, *, event_id: str | None = None) -> Envelope[Event]:
        """Publish at the event's QoS; return once the broker acknowledged it.

        Raises:
            BrokerUnavailableError: not connected, or no acknowledgement within the bound.
        """
        client = self._client
        if client is None:
            raise BrokerUnavailableError("not connected to the broker")
        correlationid = getattr(data, "delivery_id", None)
        envelope = Envelope[Event].new(
            data, source=SOURCE, correlationid=correlationid, id=event_id
        )
        try:
            # paho keeps a QoS 1 publish pending across a silent link loss; never wait on it.
            async with asyncio.timeout(self._publish_timeout_s):
                await client.publish(
                    data.resolved_topic(self.root),
                    envelope.to_json(),
                    qos=data.qos,
                    retain=data.retained,
                )
        except TimeoutError as exc:
            msg = f"no acknowledgement from the broker within {self._publish_timeout_s:g} s"
            raise BrokerUnavailableError(msg) from exc
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailableError(f"the broker did not take the event: {exc}") from exc
        return envelope

    async def run(self) -> None:
        """Stay connected until cancelled; the board's streams end when this does."""
        try:
            while True:
                try:
                    await self._connection()
                except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
                    # Once per outage, not once per retry.
                    report = log.warning if self._failures == 0 else log.debug
                    report("ingestion: broker %s unreachable or lost: %s", self.url, exc)
                finally:
                    self._client = None
                    self.connected.clear()
                    self.disconnected.set()
                ceiling = min(self._reconnect_max_s, 0.05 * 2**self._failures)
                self._failures = min(self._failures + 1, 16)
                await asyncio.sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto
        finally:
            self.board.close()

    async def _connection(self) -> None:
        async with self._mqtt_client() as client:
            self._failures = 0
            # The retained status of every delivery arrives on this subscription: the board's
            # current state after every (re)connect, with no per-request round trip.
            await client.subscribe(self._status_filter, qos=1)
            self._client = client
            self.disconnected.clear()
            self.connected.set()
            log.info("ingestion: connected to %s", self.url)
            async for message in client.messages:
                payload = message.payload
                raw = payload if isinstance(payload, bytes) else str(payload or "").encode()
                self.receive(str(message.topic), raw)

    def receive(self, topic: str, payload: bytes) -> None:
        """Feed one message to the board; anything else is ignored."""
        if not filter_matches(self._status_filter, topic):
            return  # amqtt replays retained topics of other clients' filters
        try:
            envelope: Envelope[Any] = decode(topic, payload, root=self.root)
        except DecodeError as exc:
            # Not ours to dead-letter: the producer's consumers do that. An empty retained
            # payload (a cleared topic) also lands here.
            log.debug("ingestion: ignoring %s: %s", topic, exc)
            return
        if isinstance(envelope.data, DeliveryStatusChanged):
            self.board.update(envelope.data)

    def _mqtt_client(self) -> aiomqtt.Client:
        # Replicas must not share a client id (the broker would cut one off), and nothing is
        # owed to us while away: the retained statuses come back on subscribing.
        client_id = f"murmur-ingestion-{uuid.uuid4().hex[:12]}"
        client = self.url.client(client_id, clean_session=True, keepalive=self._keepalive_s)
        # Concurrent HTTP calls each wait on one PUBACK; that is the design, not a leak.
        client.pending_calls_threshold = 1000
        return client
