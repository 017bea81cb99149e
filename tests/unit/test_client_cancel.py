"""A cancelled request loop stops, even when a publish swallows the cancellation.

Python 3.11's `asyncio.wait_for`, inside aiomqtt's `publish`, loses a cancellation that races
with its result (CPython gh-86296): `murmur up --demand` then kept requesting after Ctrl-C.
The race cannot be timed from outside, so a publish that always swallows stands in for it.
"""

import asyncio
import contextlib
from typing import Any

from contracts.events import DeliveryCancellationRequested
from murmur.client import Client


class SwallowingMqtt:
    """Publishes that finish normally even when their task is cancelled meanwhile."""

    def __init__(self) -> None:
        self.published = 0

    async def publish(self, *_: Any, **__: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # the PUBACK won the race
            await asyncio.sleep(0.01)
        self.published += 1


async def test_a_request_loop_stops_when_cancelled_during_a_publish() -> None:
    mqtt = SwallowingMqtt()
    client = Client(mqtt, "murmur/v1")  # type: ignore[arg-type]

    async def keep_requesting() -> None:
        for _ in range(1000):  # bounded: a loop that ignores the cancellation ends anyway
            await client.publish(DeliveryCancellationRequested(delivery_id="del-0123456789abcdef"))

    loop = asyncio.create_task(keep_requesting())
    await asyncio.sleep(0)  # it is now inside its first publish
    loop.cancel()
    async with asyncio.timeout(5):
        await asyncio.wait([loop])

    assert loop.cancelled()
    assert mqtt.published == 1
