"""A cancelled publishing loop stops, even when a publish swallows the cancellation.

Python 3.11's `asyncio.wait_for`, inside aiomqtt's `publish`, loses a cancellation that races
with its result (CPython gh-86296): `murmur up --demand` then kept requesting after Ctrl-C.
The race cannot be timed from outside, so a publish that always swallows stands in for it;
the adapter calls `raise_if_cancelled` right after each of aiomqtt's publishes, as here.
"""

import asyncio
import contextlib

from bus.cancelling import raise_if_cancelled


async def test_a_publishing_loop_stops_when_cancelled_during_a_swallowing_publish() -> None:
    published = 0

    async def swallowing_publish() -> None:
        nonlocal published
        with contextlib.suppress(asyncio.CancelledError):  # the PUBACK won the race
            await asyncio.sleep(0.01)
        published += 1
        raise_if_cancelled()

    async def keep_publishing() -> None:
        for _ in range(1000):  # bounded: a loop that ignores the cancellation ends anyway
            await swallowing_publish()

    loop = asyncio.create_task(keep_publishing())
    await asyncio.sleep(0)  # it is now inside its first publish
    loop.cancel()
    async with asyncio.timeout(5):
        await asyncio.wait([loop])

    assert loop.cancelled()
    assert published == 1


async def test_an_uncancelled_task_carries_on() -> None:
    raise_if_cancelled()  # nothing to re-raise
