"""The ingestion process's one broker connection: publish on behalf of HTTP calls, watch statuses.

A `bus.client` connection with no database: an event is handed over once the broker
acknowledged it (PUBACK), within a short bound, or the caller is told the broker is
unavailable. The connection is kept up for the life of the process and re-opened with bounded,
jittered backoff; while it is down, publishing fails at once.
"""

import asyncio
import logging

from bus.backoff import Backoff
from bus.client import Client, stay_connected
from bus.errors import TransportError
from bus.transport import Transport
from cloud.ingestion.statuses import StatusBoard
from contracts import DEFAULT_ROOT, Envelope, Event
from contracts.events import DeliveryStatusChanged

log = logging.getLogger(__name__)

SOURCE = "/cloud/ingestion"


class BrokerUnavailableError(RuntimeError):
    """The broker did not take an event: not connected, refused, or no PUBACK in time."""


class Gateway:
    """Publishes events for HTTP calls and keeps the status board current."""

    def __init__(
        self,
        transport: Transport,
        *,
        root: str = DEFAULT_ROOT,
        publish_timeout_s: float = 3.0,
        reconnect_max_s: float = 2.0,
        keepalive_s: int = 15,
    ) -> None:
        self.transport = transport
        self.root = root
        self.board = StatusBoard()
        # Both kept, so a caller can wait for either edge without polling.
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self._publish_timeout_s = publish_timeout_s
        self._backoff = Backoff(ceiling_s=reconnect_max_s)
        self._keepalive_s = keepalive_s
        self._live: Client | None = None

    async def publish(self, data: Event, *, event_id: str | None = None) -> Envelope[Event]:
        """Publish at the event's QoS; return once the broker acknowledged it.

        Raises:
            BrokerUnavailableError: not connected, or no acknowledgement within the bound.
        """
        client = self._live
        if client is None:
            raise BrokerUnavailableError("not connected to the broker")
        try:
            # paho keeps a QoS 1 publish pending across a silent link loss; never wait on it.
            async with asyncio.timeout(self._publish_timeout_s):
                return await client.publish(
                    data, correlationid=getattr(data, "delivery_id", None), event_id=event_id
                )
        except TimeoutError as exc:
            msg = f"no acknowledgement from the broker within {self._publish_timeout_s:g} s"
            raise BrokerUnavailableError(msg) from exc
        except TransportError as exc:
            raise BrokerUnavailableError(f"the broker did not take the event: {exc}") from exc

    async def run(self) -> None:
        """Stay connected until cancelled; the board's streams end when this does."""
        try:
            await stay_connected(
                self.transport,
                self._serve,
                on_lost=self._lost,
                backoff=self._backoff,
                root=self.root,
                source=SOURCE,
                name="ingestion",
                keepalive_s=self._keepalive_s,
            )
        finally:
            self._down()
            self.board.close()

    async def _serve(self, client: Client) -> None:
        # The retained status of every delivery arrives on this subscription: the board's
        # current state after every (re)connect, with no per-request round trip.
        await client.subscribe(DeliveryStatusChanged)
        self._live = client
        self.disconnected.clear()
        self.connected.set()
        log.info("ingestion: connected to %s", self.transport)
        try:
            # Undecodable input is not ours to dead-letter: the producer's consumers do that.
            # An empty retained payload (a cleared topic) is skipped the same way.
            async for envelope in client.events():
                if isinstance(envelope.data, DeliveryStatusChanged):
                    self.board.update(envelope.data)
        finally:
            self._down()

    def _lost(self, exc: TransportError) -> None:
        # Once per outage, not once per retry.
        report = log.warning if self._backoff.failures == 0 else log.debug
        report("ingestion: broker %s unreachable or lost: %s", self.transport, exc)

    def _down(self) -> None:
        self._live = None
        self.connected.clear()
        self.disconnected.set()
