"""Shared fixtures: the test brokers every e2e test runs against."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.brokers import BROKER_KINDS, TestBroker, running_broker
from world.fleet import VehicleLink


@pytest.fixture(
    params=[
        pytest.param(kind, id=kind, marks=[pytest.mark.mosquitto] if kind == "mosquitto" else [])
        for kind in BROKER_KINDS
    ]
)
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestBroker]:
    """A fresh broker per test, once on amqtt and once on Mosquitto.

    Mosquitto is skipped when missing (a failure when ``CI=true``).
    """
    async with running_broker(request.param, tmp_path) as running:
        yield running


@pytest.fixture
async def mosquitto_broker(tmp_path: Path) -> AsyncIterator[TestBroker]:
    """A fresh Mosquitto per test, for behaviour amqtt lacks (persistence, $share, ...)."""
    async with running_broker("mosquitto", tmp_path) as running:
        yield running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses `mosquitto_broker` with ``mosquitto``, so ``-m`` can select it."""
    for item in items:
        if "mosquitto_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mosquitto)


@pytest.fixture(params=["sim", "mavlink"])
def flight_link(request: pytest.FixtureRequest) -> VehicleLink:
    """How each agent reaches its simulated vehicle: in process, or over MAVLink (UDP)."""
    link: VehicleLink = request.param
    return link
