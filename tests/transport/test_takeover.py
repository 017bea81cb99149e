"""Session takeover: one client id, one connection; the newer one wins."""

import pytest

from bus.transport import Outgoing, Session
from tests.transport.amqtt_gaps import AMQTT_KEEPS_A_CLEAN_TWIN, AMQTT_TAKEOVER_SHARES_SESSION
from tests.transport.clients import payloads, receive, until_lost
from tests.transport.targets import Target, targets


async def test_a_second_connection_with_the_same_client_id_ends_the_first(target: Target) -> None:
    """Test that the older connection of a persistent session sees `messages()` raise."""
    transport = target.transport()
    session = Session("scheduler", persistent=True)
    async with transport.connect(session) as first, transport.connect(session):
        await until_lost(first)


@pytest.mark.parametrize("target", targets(amqtt=[AMQTT_KEEPS_A_CLEAN_TWIN]), indirect=True)
async def test_a_second_clean_connection_with_the_same_client_id_ends_the_first(
    target: Target,
) -> None:
    """Test that the older connection of a clean session sees `messages()` raise."""
    transport = target.transport()
    session = Session("cli")
    async with transport.connect(session) as first, transport.connect(session):
        await until_lost(first)


@pytest.mark.parametrize("target", targets(amqtt=[AMQTT_TAKEOVER_SHARES_SESSION]), indirect=True)
async def test_the_connection_that_took_a_session_over_gets_its_messages(target: Target) -> None:
    """Test that the newer connection of a persistent session goes on receiving."""
    transport = target.transport()
    session = Session("scheduler", persistent=True)
    async with (
        transport.connect(Session("publisher")) as publisher,
        transport.connect(session) as first,
    ):
        await first.subscribe(["jobs/#"])
        async with transport.connect(session) as second:
            await until_lost(first)
            await second.subscribe(["jobs/#"])

            await publisher.publish(Outgoing("jobs/j-1", b"for the second"))

            assert payloads(await receive(second)) == [b"for the second"]
