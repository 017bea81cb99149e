"""The port under the bus: what any broker connection must do for it, and nothing more.

MQTT's words, since MQTT is what drones speak: a connection is made for a `Session` (a client
id, persistent or clean, an optional last will), subscribes to topic filters at QoS 1,
publishes `Outgoing` messages and yields `Incoming` ones. Each adapter keeps its library to
itself (`bus.aiomqtt_transport` is the only module that imports aiomqtt or paho) and raises
only `bus.errors.TransportError`. `bus.memory_transport` is a small broker in the process, for
tests of everything above this port. `tests/transport/` holds the contract every adapter
passes, against every broker it claims.

Acknowledgement: a persistent session's QoS 1 message is acknowledged to the broker only when
its `ack()` is called (the bus calls it after its commit), in the order the messages arrived;
the broker redelivers what was not acknowledged when the session connects again. A clean
session's messages are acknowledged on receipt: nothing would redeliver them anyway.

Flow control lives inside the adapter: a connection stops reading from the broker while a
bounded number of received messages wait to be taken, so a burst waits in the broker.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from bus.url import BrokerUrl


@dataclass(frozen=True)
class Outgoing:
    """A message to publish."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True)
class Session:
    """Who connects, and what the broker keeps for it while it is away.

    Attributes:
        client_id: stable across restarts for a persistent session; unique per connection.
        persistent: the broker keeps the subscriptions and queues QoS 1 messages while the
            client is away, and redelivers what it did not acknowledge (MQTT
            `clean_session=False`).
        will: published by the broker if the connection ends without a clean disconnect.
        keepalive_s: how long the broker waits for a silent client before it drops it.
    """

    client_id: str
    persistent: bool = False
    will: Outgoing | None = None
    keepalive_s: int = 30


class Incoming(Protocol):
    """A message received on one of the connection's subscriptions."""

    @property
    def topic(self) -> str:
        """The topic it was published to."""

    @property
    def payload(self) -> bytes:
        """Its bytes, as published."""

    @property
    def qos(self) -> int:
        """The QoS it was delivered at (0 or 1)."""

    @property
    def retained(self) -> bool:
        """Whether it is a retained message replayed on subscribing."""

    @property
    def received_at(self) -> float:
        """`time.monotonic()` when the transport read it off the network."""

    async def ack(self) -> None:
        """Tell the broker it is done with (persistent sessions; a no-op otherwise)."""


class Connection(Protocol):
    """One open connection; it ends when its `Transport.connect` block does."""

    async def subscribe(self, filters: Sequence[str]) -> None:
        """Subscribe to `filters` at QoS 1, in one request; returns once the broker granted it.

        No filters: nothing to do.

        Raises:
            TransportError: the broker refused or the connection was lost.
        """

    async def publish(self, message: Outgoing) -> None:
        """Publish; at QoS 1 returns once the broker acknowledged it.

        Concurrent calls go on the wire in call order.

        Raises:
            TransportError: the connection was lost or no acknowledgement came in time.
        """

    def messages(self) -> AsyncIterator[Incoming]:
        """Received messages in arrival order, until the connection is lost.

        Raises:
            TransportError: when the connection is lost.
        """

    def take_ready(self, limit: int) -> Sequence[Incoming]:
        """Up to `limit` messages already received, without waiting (for batches)."""


class Transport(Protocol):
    """A way to reach one broker; `connect` may be called again after a connection ends."""

    def connect(self, session: Session) -> AbstractAsyncContextManager[Connection]:
        """A connection for the duration of the block; a clean exit disconnects cleanly.

        Raises:
            TransportError: the broker cannot be reached or refused the session.
        """


def open_transport(
    url: BrokerUrl | str,
    *,
    receive_window: int = 256,
    max_inflight: int = 64,
    ack_timeout_s: float = 60.0,
) -> Transport:
    """The transport for a broker URL (`mqtt://`, `mqtts://`).

    Args:
        url: where the broker is, and who we are to it.
        receive_window: received messages that may wait to be taken before the connection
            stops reading (0: no bound, for instruments that must never lag).
        max_inflight: QoS 1 publishes awaiting their acknowledgement at once.
        ack_timeout_s: how long a publish or subscribe waits for its acknowledgement, which
            comes after every message the broker sent before it (a storm's backlog).
    """
    from bus.aiomqtt_transport import AiomqttTransport  # noqa: PLC0415 - the adapter imports us

    parsed = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
    return AiomqttTransport(
        parsed,
        receive_window=receive_window,
        max_inflight=max_inflight,
        ack_timeout_s=ack_timeout_s,
    )
