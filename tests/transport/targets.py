"""The targets of the transport contract: each a broker, transports to it, and a way to cut one.

`memory` is the in-process `MemoryBroker`; `amqtt` and `mosquitto` are the aiomqtt adapter on
the test brokers of `tests.brokers` (Mosquitto is skipped when missing, a failure on CI).
`conftest.py` makes them fixtures.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Literal, Protocol

import pytest

from broker.amqtt_server import EmbeddedBroker
from bus.memory_transport import MemoryBroker
from bus.transport import Transport, open_transport
from tests.brokers import TestBroker, running_broker
from tests.netproxy import LinkProxy
from tests.transport.clients import TIMEOUT_S

TargetKind = Literal["memory", "amqtt", "mosquitto"]
TARGET_KINDS: tuple[TargetKind, ...] = ("memory", "amqtt", "mosquitto")
_MARKS: dict[TargetKind, tuple[pytest.MarkDecorator, ...]] = {
    "memory": (),
    "amqtt": (pytest.mark.e2e,),
    "mosquitto": (pytest.mark.e2e, pytest.mark.mosquitto),
}


class Target(Protocol):
    """One broker under test, reached by as many clients as a test needs."""

    @property
    def kind(self) -> TargetKind:
        """Which target this is."""

    def transport(self) -> Transport:
        """A transport to the broker (one per client, or shared: each connect is a client)."""

    async def cuttable_transport(self, client_id: str) -> Transport:
        """A transport whose connections of `client_id` `cut` can end as a network failure."""

    def cut(self, client_id: str) -> None:
        """End `client_id`'s connection abruptly, as a dead link does; it may connect again."""

    async def until_gone(self, client_id: str) -> None:
        """Return once the broker has seen the end of `client_id`'s connection.

        For a test that connects again at once and means a resumed session, not a takeover.
        """


class MemoryTarget:
    """The in-process broker: `MemoryBroker.cut` ends a connection."""

    kind: TargetKind = "memory"

    def __init__(self) -> None:
        self.broker = MemoryBroker()

    def transport(self) -> Transport:
        return self.broker.transport()

    async def cuttable_transport(self, client_id: str) -> Transport:  # noqa: ARG002 - any will do
        return self.broker.transport()

    def cut(self, client_id: str) -> None:
        self.broker.cut(client_id)

    async def until_gone(self, client_id: str) -> None:
        assert not self.broker.connected(client_id)  # it sees every end as it happens


class MqttTarget:
    """The aiomqtt adapter on a real broker; a cuttable client goes through its own `LinkProxy`."""

    def __init__(self, broker: TestBroker, proxies: AsyncExitStack) -> None:
        self.broker = broker
        self.kind: TargetKind = broker.kind
        self._proxies = proxies
        self._links: dict[str, LinkProxy] = {}

    def transport(self) -> Transport:
        return open_transport(self.broker.url)

    async def cuttable_transport(self, client_id: str) -> Transport:
        proxy = await self._proxies.enter_async_context(
            LinkProxy(self.broker.host, self.broker.port)
        )
        self._links[client_id] = proxy
        return open_transport(self.url_via(proxy.port))

    def cut(self, client_id: str) -> None:
        link = self._links[client_id]
        link.cut()
        link.restore()  # the link is back: the client may connect again through it

    async def until_gone(self, client_id: str) -> None:
        """Mosquitto: at once (a new connection that finds the old one takes its session over
        properly). amqtt: until its in-process broker marked the session disconnected, since it
        takes a reconnection that overtakes the old end for a takeover, and a taken-over
        session goes deaf (`test_takeover.py`).
        """
        if not isinstance(self.broker.impl, EmbeddedBroker):
            return
        amqtt = self.broker.impl._broker
        session = amqtt._sessions.get(client_id, (None, None))[0] if amqtt else None
        if session is None or session.transitions.state == "disconnected":
            return
        gone = asyncio.Event()
        session.transitions.on_enter_disconnected(gone.set)
        async with asyncio.timeout(TIMEOUT_S):
            await gone.wait()

    def url_via(self, port: int, *, password: str | None = None) -> str:
        """The broker's URL on another port, or with another password."""
        broker = self.broker
        return f"mqtt://{broker.username}:{password or broker.password}@{broker.host}:{port}"


def targets(
    *kinds: TargetKind,
    amqtt: Sequence[pytest.MarkDecorator] = (),
    mosquitto: Sequence[pytest.MarkDecorator] = (),
) -> list[pytest.ParameterSet]:
    """Parameters for `target` (all kinds by default), with extra marks on amqtt or Mosquitto."""
    extra = {"amqtt": tuple(amqtt), "mosquitto": tuple(mosquitto)}
    return [
        pytest.param(kind, id=kind, marks=[*_MARKS[kind], *extra.get(kind, ())])
        for kind in kinds or TARGET_KINDS
    ]


@asynccontextmanager
async def running_target(kind: TargetKind, workdir: Path) -> AsyncIterator[Target]:
    """A fresh broker of `kind` for one test; every proxy and the broker end with the block."""
    if kind == "memory":
        yield MemoryTarget()
        return
    async with running_broker(kind, workdir) as broker, AsyncExitStack() as proxies:
        yield MqttTarget(broker, proxies)
