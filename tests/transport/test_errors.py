"""Failures: every one is a `bus.errors.TransportError`, never a library's exception."""

import socket

import pytest

from bus.errors import TransportError
from bus.transport import Outgoing, Session, open_transport
from tests.transport.clients import until_lost
from tests.transport.targets import MqttTarget, Target


async def test_connecting_to_a_closed_port_raises_transport_error() -> None:
    """Test that a port nobody listens on is a TransportError naming the refusal."""
    with socket.socket() as bound:  # bound, never listening: refused, and nobody else gets it
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        transport = open_transport(f"mqtt://user:secret@127.0.0.1:{port}")

        with pytest.raises(TransportError, match="refused"):
            async with transport.connect(Session("nobody-there")):
                pytest.fail("connected to a closed port")


async def test_a_wrong_password_raises_transport_error(mqtt_target: MqttTarget) -> None:
    """Test that a broker refusing the login is a TransportError."""
    transport = open_transport(mqtt_target.url_via(mqtt_target.broker.port, password="wrong"))

    with pytest.raises(TransportError):
        async with transport.connect(Session("impostor")):
            pytest.fail("logged in with a wrong password")


async def test_publishing_on_a_lost_connection_raises_transport_error(target: Target) -> None:
    """Test that a publish after the connection was lost fails with TransportError."""
    session = Session("relay", persistent=True)
    link = await target.cuttable_transport(session.client_id)
    async with link.connect(session) as connection:
        target.cut(session.client_id)
        await until_lost(connection)

        with pytest.raises(TransportError):
            await connection.publish(Outgoing("jobs/j-1", b"too late"))
