"""Topic rights from `broker.acl`, enforced by both brokers: Mosquitto's rendered ACL file and the
amqtt topic plugin.

A refused publish is dropped silently and a refused subscription receives nothing, so each test
sends the forbidden message and then an allowed one on the same connection: brokers keep one
connection's order, so once the allowed one has arrived, the forbidden one never will.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from tests.brokers import BROKER_KINDS, TestBroker, running_broker

pytestmark = pytest.mark.e2e

ROOT = "murmur/v1"
ROLES = {
    "d-1": "drone",
    "d-2": "drone",
    "scheduler": "scheduler",
    "delivery": "delivery",
    "shop": "client",
    "ops": "operator",
}
PASSWORDS = {login: f"pw-{login}" for login in ROLES}


@pytest.fixture(params=BROKER_KINDS)
async def guarded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestBroker]:
    """A broker enforcing the rights of two drones, the scheduler and a client."""
    async with running_broker(request.param, tmp_path, users=PASSWORDS, roles=ROLES) as running:
        yield running


def login(broker: TestBroker, user: str) -> aiomqtt.Client:
    return broker.client(username=user, password=PASSWORDS[user], identifier=f"acl-{user}")


async def seen_before(
    broker: TestBroker, reader: aiomqtt.Client, writer: str, forbidden: str, allowed: str
) -> list[str]:
    """What `reader` (subscribed already) receives of `writer`'s forbidden then allowed publish."""
    received: list[str] = []
    async with login(broker, writer) as client:
        await client.publish(forbidden, b"forbidden", qos=1)
        await client.publish(allowed, b"allowed", qos=1)
    async with asyncio.timeout(10):
        async for message in reader.messages:
            received.append(str(message.topic))
            if str(message.topic) == allowed:
                return received
    return received  # pragma: no cover - the loop returns or times out


async def test_a_drone_cannot_publish_as_another_drone(guarded: TestBroker) -> None:
    async with guarded.client(identifier="acl-observer") as observer:
        await observer.subscribe(f"{ROOT}/drones/+/status", qos=1)
        seen = await seen_before(
            guarded, observer, "d-1", f"{ROOT}/drones/d-2/status", f"{ROOT}/drones/d-1/status"
        )
    assert seen == [f"{ROOT}/drones/d-1/status"]


async def test_a_drone_cannot_publish_a_services_events(guarded: TestBroker) -> None:
    async with guarded.client(identifier="acl-observer") as observer:
        await observer.subscribe(f"{ROOT}/#", qos=1)
        seen = await seen_before(
            guarded,
            observer,
            "d-1",
            f"{ROOT}/drones/d-2/jobs/j-1/offer",
            f"{ROOT}/drones/d-1/events",
        )
    assert seen == [f"{ROOT}/drones/d-1/events"]


async def test_a_drone_cannot_read_another_drones_jobs_or_commands(guarded: TestBroker) -> None:
    async with login(guarded, "d-1") as drone:
        for topic_filter in (
            f"{ROOT}/drones/d-2/jobs/+/offer",
            f"{ROOT}/drones/d-2/cmd/+",
            f"{ROOT}/drones/+/jobs/+/offer",
            f"{ROOT}/#",
        ):
            await drone.subscribe(topic_filter, qos=1)  # refused: nothing will come of it
        await drone.subscribe(f"{ROOT}/drones/d-1/jobs/+/offer", qos=1)
        async with login(guarded, "ops") as ops:
            await ops.publish(f"{ROOT}/drones/d-2/cmd/hold", b"x", qos=1)
        async with login(guarded, "scheduler") as scheduler:
            await scheduler.publish(f"{ROOT}/drones/d-2/jobs/j-2/offer", b"x", qos=1)
            await scheduler.publish(f"{ROOT}/drones/d-1/jobs/j-1/offer", b"x", qos=1)
        async with asyncio.timeout(10):
            first = await anext(aiter(drone.messages))
    assert str(first.topic) == f"{ROOT}/drones/d-1/jobs/j-1/offer"


async def test_a_client_requests_and_reads_statuses_but_cannot_speak_for_a_drone(
    guarded: TestBroker,
) -> None:
    async with guarded.client(identifier="acl-observer") as observer:
        await observer.subscribe(f"{ROOT}/#", qos=1)
        seen = await seen_before(
            guarded,
            observer,
            "shop",
            f"{ROOT}/drones/d-1/status",
            f"{ROOT}/deliveries/del-1/requested",
        )
    assert seen == [f"{ROOT}/deliveries/del-1/requested"]
    async with login(guarded, "shop") as shop:
        await shop.subscribe(f"{ROOT}/deliveries/+/status", qos=1)
        async with login(guarded, "delivery") as delivery:
            await delivery.publish(f"{ROOT}/deliveries/del-1/status", b"x", qos=1)
        async with asyncio.timeout(10):
            status = await anext(aiter(shop.messages))
    assert str(status.topic) == f"{ROOT}/deliveries/del-1/status"
