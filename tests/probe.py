"""An independent MQTT client for tests: publishes raw bytes and records what it sees."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiomqtt

from contracts import DecodeError, Envelope, Event, decode
from tests.brokers import mqtt_client

E = TypeVar("E", bound=Event)
_ids = itertools.count()


def _probe_client(url: str, name: str) -> aiomqtt.Client:
    return mqtt_client(url, f"probe-{name}-{next(_ids)}")


@dataclass
class Probe:
    """Everything decodable seen on the probe's filters, and a way to wait for more."""

    seen: list[Envelope[Any]] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def of(
        self, event_cls: type[E], where: Callable[[E], bool] = lambda _: True, *, after: int = 0
    ) -> list[E]:
        """The data of the events of one class satisfying `where`, seen from `after` on."""
        return [
            e.data for e in self.seen[after:] if isinstance(e.data, event_cls) and where(e.data)
        ]

    def distinct(self) -> list[Envelope[Any]]:
        """Everything seen, each event once (by id): a publisher that reconnects sends copies."""
        first: dict[str, Envelope[Any]] = {}
        for envelope in self.seen:
            first.setdefault(envelope.id, envelope)
        return list(first.values())  # in the order first seen

    def mark(self) -> int:
        """A bookmark for `after=`: only what is seen from now on."""
        return len(self.seen)

    async def wait_for(
        self,
        event_cls: type[E],
        where: Callable[[E], bool] = lambda _: True,
        *,
        count: int = 1,
        timeout: float = 20,
        after: int = 0,
    ) -> list[E]:
        """Wait until `count` matching events were seen (from `after` on); return them."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: len(self.of(event_cls, where, after=after)) >= count
            )
        return self.of(event_cls, where, after=after)

    async def _record(self, topic: str, payload: bytes) -> None:
        self.raw.append((topic, payload))
        with suppress(DecodeError):
            self.seen.append(decode(topic, payload))
        async with self._changed:
            self._changed.notify_all()


@asynccontextmanager
async def probing(url: str, filters: Iterable[str]) -> AsyncIterator[Probe]:
    """Subscribe to `filters` (full topics, wildcards allowed) and record until exit."""
    probe = Probe()
    async with _probe_client(url, "sub") as client:
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)

        async def pump() -> None:
            async for message in client.messages:
                payload = message.payload
                raw = payload if isinstance(payload, bytes) else str(payload).encode()
                await probe._record(str(message.topic), raw)

        task = asyncio.create_task(pump())
        try:
            yield probe
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task


async def publish_raw(url: str, messages: Iterable[tuple[str, bytes]]) -> None:
    """Publish each (topic, payload) at QoS 1 and wait for the broker's acknowledgement."""
    async with _probe_client(url, "pub") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


async def publish_events(url: str, envelopes: Iterable[Envelope[Any]]) -> None:
    """Publish envelopes on their own topics."""
    await publish_raw(url, ((e.data.resolved_topic(), e.to_json()) for e in envelopes))
