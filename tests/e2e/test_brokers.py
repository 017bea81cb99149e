import asyncio
import socket
from pathlib import Path

import aiomqtt
import pytest
from amqtt.broker import Broker

from broker import amqtt_server
from broker.amqtt_server import EmbeddedBroker, PortInUseError, amqtt_config
from tests.brokers import TestBroker

pytestmark = pytest.mark.e2e

TIMEOUT_S = 10


async def receive(client: aiomqtt.Client, count: int) -> list[bytes]:
    """Collect `count` payloads, failing the test if they don't arrive in time."""
    payloads: list[bytes] = []
    async with asyncio.timeout(TIMEOUT_S):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            payloads.append(message.payload)
            if len(payloads) == count:
                break
    return payloads


async def park_persistent_subscriber(broker: TestBroker, identifier: str, topic: str) -> None:
    """Subscribe a persistent session at QoS 1, then disconnect it."""
    async with broker.client(identifier=identifier, clean_session=False) as client:
        await client.subscribe(topic, qos=1)


async def publish(broker: TestBroker, topic: str, payloads: list[bytes]) -> None:
    async with broker.client(identifier=f"pub-{topic.replace('/', '-')}") as client:
        for payload in payloads:
            await client.publish(topic, payload, qos=1)


async def test_persistent_session_gets_messages_published_while_offline(
    broker: TestBroker,
) -> None:
    await park_persistent_subscriber(broker, "sub-offline", "fleet/offline/#")
    sent = [b"one", b"two", b"\x00\xffbinary"]

    await publish(broker, "fleet/offline/x", sent)

    async with broker.client(identifier="sub-offline", clean_session=False) as client:
        assert await receive(client, len(sent)) == sent


async def test_test_user_url_carries_credentials(broker: TestBroker) -> None:
    assert broker.url == f"mqtt://murmur:{broker.password}@127.0.0.1:{broker.port}"
    async with broker.client(identifier="probe-url"):
        pass


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"username": "murmur", "password": "wrong"}, id="wrong-password"),
        pytest.param({"username": "murmur", "password": None}, id="no-password"),
        pytest.param({"username": "stranger", "password": "wrong"}, id="unknown-user"),
        pytest.param({"username": None, "password": None}, id="no-username"),
    ],
)
async def test_bad_credentials_refused(broker: TestBroker, credentials: dict[str, str]) -> None:
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        async with broker.client(identifier="probe-refused", **credentials):
            pass


async def test_mosquitto_restart_keeps_queued_messages(mosquitto_broker: TestBroker) -> None:
    await park_persistent_subscriber(mosquitto_broker, "sub-restart", "fleet/restart/#")
    sent = [b"before-restart", b"\x00binary"]
    await publish(mosquitto_broker, "fleet/restart/x", sent)

    await mosquitto_broker.restart()

    async with mosquitto_broker.client(identifier="sub-restart", clean_session=False) as client:
        assert await receive(client, len(sent)) == sent


async def test_embedded_broker_dev_mode_needs_only_a_username() -> None:
    async with EmbeddedBroker() as broker:
        async with aiomqtt.Client(broker.host, broker.port, username="anyone"):
            pass
        with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
            async with aiomqtt.Client(broker.host, broker.port):
                pass


async def test_embedded_broker_restart_keeps_port() -> None:
    broker = EmbeddedBroker()
    async with broker:
        port = broker.port
        assert broker.url == f"mqtt://127.0.0.1:{port}"
        await broker.stop()
        await broker.start()
        assert broker.port == port
        async with aiomqtt.Client(broker.host, port, username="anyone"):
            pass


async def test_embedded_broker_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(PortInUseError) as raised:
            await EmbeddedBroker(port=port).start()

    assert str(raised.value) == (
        f"cannot start the embedded broker: 127.0.0.1:{port} is already in use "
        "(choose another port with --port)"
    )


async def test_embedded_broker_translates_amqtt_bind_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Simulates losing the race between our probe and amqtt's own bind.
    monkeypatch.setattr(amqtt_server, "_check_port_free", lambda _host, _port: None)
    async with EmbeddedBroker() as running:
        with pytest.raises(PortInUseError, match="already in use"):
            await EmbeddedBroker(port=running.port).start()


async def test_amqtt_accepts_our_config(tmp_path: Path) -> None:
    password_file = tmp_path / "passwd"
    password_file.write_text("", encoding="utf-8")
    broker = Broker(amqtt_config("127.0.0.1", 0, password_file=password_file))
    assert list(broker.plugins_manager.plugins) == [
        broker.plugins_manager.get_plugin("MurmurAuthPlugin")
    ]
    assert broker.config.session_expiry_interval == 3600
