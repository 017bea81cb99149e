"""Fixtures of the service tests: a memory broker, and a peer on it that ends with the test."""

from collections.abc import AsyncIterator

import pytest

from bus.memory_transport import MemoryBroker
from tests.service.harness import Peer, a_peer


@pytest.fixture
def broker() -> MemoryBroker:
    """A broker in the test's process, fresh for each test."""
    return MemoryBroker()


@pytest.fixture
async def peer(broker: MemoryBroker) -> AsyncIterator[Peer]:
    """A client on `broker`, playing every producer the component under test listens to."""
    async with a_peer(broker) as connected:
        yield connected
