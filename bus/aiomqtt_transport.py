"""The transport port on aiomqtt 2.5 and paho-mqtt 2: the only module that imports either.

aiomqtt gives the connection, SUBSCRIBE and PUBLISH with their acknowledgements; four things
the bus needs it does not offer, so this adapter reaches into its private parts. Each is pinned
by `aiomqtt>=2.5,<3` in pyproject.toml and held up by `tests/transport/`:

* manual PUBACK after commit: paho's `manual_ack_set` and `ack(mid, qos)`, through
  `client._client`;
* received messages kept by us, stamped with their arrival time, instead of aiomqtt's queue:
  `_on_message` overridden;
* a reading policy: paho's `loop_read`, which aiomqtt calls when the socket is readable, reads
  one packet, so a busy loop takes in one message per turn and falls behind its telemetry
  alone. It is replaced to read every packet that has arrived, up to the receive window;
* the receive window: past `receive_window` received messages not yet taken, the socket's
  reader is removed from the event loop (a readable socket left registered would wake the
  loop again and again), the kernel's buffer fills and TCP stops the broker, which keeps the
  rest of a burst (docs/reliability.md, "Event storms"). `client._disconnected` is where a
  reader's failure goes, as aiomqtt's own reader does.

Every `aiomqtt.MqttError` (and the `OSError`s aiomqtt wraps in it) leaves as `TransportError`.
"""

import asyncio
import logging
import select
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from bus.cancelling import raise_if_cancelled
from bus.errors import TransportError
from bus.transport import Connection, Outgoing, Session
from bus.url import BrokerUrl

log = logging.getLogger("murmur.bus")

_READ_BURST = 256  # packets read from the socket per wake-up of the event loop, at most
# The socket's receive buffer (the kernel doubles it); left alone, Linux grows it to MiBs and a
# burst waits there, past the window, with the broker counting it as delivered.
_RECEIVE_BUFFER = 128 * 1024
_CONNECT_TIMEOUT_S = 10.0
# aiomqtt warns past this many publishes awaiting their PUBACK; callers bound their own
# concurrency (the relay sends a batch of 64, a benchmark a whole burst), so only a leak warns.
_PENDING_CALLS_WARNING = 100_000


@dataclass(slots=True, eq=False)
class _Message:
    """One received message (an `Incoming`)."""

    topic: str
    payload: bytes
    qos: int
    retained: bool
    received_at: float
    mid: int
    client: paho.Client
    manual: bool

    async def ack(self) -> None:
        """PUBACK, on the connection that received it (on another it would ack another's)."""
        if self.manual and self.qos > 0:
            self.client.ack(self.mid, self.qos)


class _Inbox:
    """Messages received and not yet taken, with the window that bounds them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: deque[_Message] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.on_taken: Callable[[], None] = lambda: None

    def put(self, message: _Message) -> None:
        self.items.append(message)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def full(self) -> bool:
        return self.limit > 0 and len(self.items) >= self.limit

    def take(self, limit: int) -> list[_Message]:
        taken = [self.items.popleft() for _ in range(min(limit, len(self.items)))]
        if taken:
            self.on_taken()
        return taken


class _Client(aiomqtt.Client):
    """aiomqtt's client, with its received messages kept in our inbox."""

    def __init__(self, *args: Any, inbox: _Inbox, manual_ack: bool, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.inbox = inbox
        self.manual_ack = manual_ack
        if manual_ack:
            self._client.manual_ack_set(True)  # noqa: FBT003 - paho's signature

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:  # noqa: ANN401, ARG002
        payload = message.payload
        self.inbox.put(
            _Message(
                message.topic,
                payload if isinstance(payload, bytes) else bytes(payload or b""),
                message.qos,
                bool(message.retain),
                time.monotonic(),
                message.mid,
                client,
                self.manual_ack,
            )
        )


class _Socket:
    """Whether a paho client's socket, whichever it is now, has bytes waiting."""

    def __init__(self, mqtt: paho.Client) -> None:
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

    def tls_pending(self) -> bool:
        sock = self._mqtt.socket()
        return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


class _Reader:
    """paho's `loop_read`, made to read all that has arrived and to pause at the window."""

    def __init__(self, client: _Client) -> None:
        self._client = client
        self._mqtt = client._client  # noqa: SLF001 - aiomqtt exposes no reading policy
        self._read_one = self._mqtt.loop_read
        self._socket = _Socket(self._mqtt)
        self._paused = -1  # the descriptor whose reader was removed
        self._mqtt.loop_read = self.read_available  # type: ignore[method-assign]
        client.inbox.on_taken = self.taken

    def read_available(self, max_packets: int = 1) -> MQTTErrorCode:
        if self._pause():
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        rc = self._read_one(max_packets)
        for _ in range(_READ_BURST):
            if (
                rc != MQTTErrorCode.MQTT_ERR_SUCCESS
                or self._client.inbox.full()
                or not self._socket.readable()
            ):
                break
            rc = self._read_one(max_packets)
        return rc

    def _pause(self) -> bool:
        """Stop reading if the inbox is full; whether reading is paused."""
        if self._paused >= 0:
            return True
        if not self._client.inbox.full() or self._socket.tls_pending():
            # TLS: aiomqtt reads again while decrypted bytes are pending, so a read that
            # does nothing would spin; those bytes (one TLS record at most) are read.
            return False
        fd = self._socket.fileno()
        if fd < 0:
            return False
        asyncio.get_running_loop().remove_reader(fd)
        self._paused = fd
        return True

    def taken(self) -> None:
        """Messages left the inbox: read again once at most half of the window wait."""
        inbox = self._client.inbox
        if self._paused < 0 or len(inbox.items) > inbox.limit // 2:
            return
        fd, self._paused = self._paused, -1
        if fd == self._socket.fileno():  # the same connection: a closed one has no reader
            asyncio.get_running_loop().add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        # What aiomqtt's own reader does: read, and a read that raises ends the connection.
        try:
            while True:
                self._mqtt.loop_read()
                if self._paused >= 0 or not self._socket.tls_pending():
                    break
        except Exception as exc:  # noqa: BLE001 - handed to aiomqtt, which ends the connection
            disconnected = self._client._disconnected  # noqa: SLF001
            if not disconnected.done():
                disconnected.set_exception(exc)


class _AiomqttConnection:
    """One open connection (a `Connection`)."""

    def __init__(self, client: _Client, ack_timeout_s: float) -> None:
        self._client = client
        self._inbox = client.inbox
        self._ack_timeout_s = ack_timeout_s

    async def subscribe(self, filters: Sequence[str]) -> None:
        if not filters:
            return  # MQTT has no empty SUBSCRIBE
        try:
            await self._client.subscribe([(f, 1) for f in filters], timeout=self._ack_timeout_s)
        except aiomqtt.MqttError as exc:
            raise TransportError(f"subscribe: {exc}") from exc
        raise_if_cancelled()

    async def publish(self, message: Outgoing) -> None:
        try:
            await self._client.publish(
                message.topic,
                message.payload,
                qos=message.qos,
                retain=message.retain,
                timeout=self._ack_timeout_s,
            )
        except aiomqtt.MqttError as exc:
            raise TransportError(f"publish: {exc}") from exc
        raise_if_cancelled()

    async def messages(self) -> AsyncIterator[_Message]:
        while True:
            self._raise_if_lost()
            if self._inbox.items:
                yield self._inbox.take(1)[0]
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._inbox.waiter = waiter
            disconnected = self._client._disconnected  # noqa: SLF001 - its end, as aiomqtt's own
            await asyncio.wait((waiter, disconnected), return_when=asyncio.FIRST_COMPLETED)

    def take_ready(self, limit: int) -> list[_Message]:
        return self._inbox.take(limit)

    def _raise_if_lost(self) -> None:
        disconnected = self._client._disconnected  # noqa: SLF001
        if disconnected.done():
            cause = disconnected.exception()
            raise TransportError(f"connection lost: {cause or 'disconnected'}") from cause


class AiomqttTransport:
    """A `Transport` to one MQTT broker."""

    def __init__(
        self,
        url: BrokerUrl,
        *,
        receive_window: int = 256,
        max_inflight: int = 64,
        ack_timeout_s: float = 60.0,
    ) -> None:
        self.url = url
        self._window = receive_window
        self._max_inflight = max_inflight
        # Acknowledgements (PUBACK, SUBACK) arrive in the same TCP stream as the messages sent
        # to us, after those not read yet: under a burst they wait for the backlog. A timeout
        # ends the connection, and amqtt drops what it has in flight to us then (#401).
        self._ack_timeout_s = ack_timeout_s

    def __str__(self) -> str:
        return str(self.url)

    @asynccontextmanager
    async def connect(self, session: Session) -> AsyncIterator[Connection]:
        """A connection for the duration of the block (a new aiomqtt client each time)."""
        try:
            client = self._client(session)
        except OSError as exc:  # a TLS file that cannot be read or does not load
            raise TransportError(f"TLS: {exc}") from exc
        _Reader(client)
        try:
            async with client:
                yield _AiomqttConnection(client, self._ack_timeout_s)
        except aiomqtt.MqttError as exc:  # from connecting or disconnecting: ours translate
            raise TransportError(str(exc)) from exc

    def _client(self, session: Session) -> _Client:
        url = self.url
        will = session.will
        options: dict[str, Any] = {}
        if self._window > 0:
            options["socket_options"] = ((socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER),)
        client = _Client(
            url.host,
            url.port,
            # The client id stands in for a missing user name: amqtt keeps no offline queue
            # for a session without one (field notes §1), and lets in any client that sends one.
            username=url.username or session.client_id,
            password=url.password,
            identifier=session.client_id,
            clean_session=not session.persistent,
            keepalive=session.keepalive_s,
            will=None
            if will is None
            else aiomqtt.Will(will.topic, will.payload, qos=will.qos, retain=will.retain),
            tls_context=url.ssl_context(),
            timeout=_CONNECT_TIMEOUT_S,
            max_inflight_messages=self._max_inflight,
            inbox=_Inbox(self._window),
            manual_ack=session.persistent,
            **options,
        )
        client.pending_calls_threshold = _PENDING_CALLS_WARNING
        return client
