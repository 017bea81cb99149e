"""Fixtures of the transport contract: a fresh target per test (see `tests.transport.targets`).

A test takes `target` to run on memory, amqtt and Mosquitto, or parametrises it
(`indirect=True`) with `targets(...)` to run on some, or to mark one (a known upstream gap is
`xfail(strict=True)`, never a skip); `mqtt_target` is for what only a network has.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.transport.targets import MqttTarget, Target, running_target, targets


@pytest.fixture(params=targets())
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    """A fresh broker per test: memory, amqtt and Mosquitto."""
    async with running_target(request.param, tmp_path) as running:
        yield running


@pytest.fixture(params=targets("amqtt", "mosquitto"))
async def mqtt_target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MqttTarget]:
    """A fresh real broker per test, amqtt and Mosquitto, for what only a network has."""
    async with running_target(request.param, tmp_path) as running:
        assert isinstance(running, MqttTarget)
        yield running
