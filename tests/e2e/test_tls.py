"""TLS on every connection: a Mosquitto TLS-only listener, certificates made in the test."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

import aiomqtt
import pytest
import trustme

from broker.mosquitto import Mosquitto, TlsListener
from bus.client import connect
from bus.transport import open_transport
from bus.url import BrokerUrl
from cloud.services import build_service
from contracts.events import DeliveryRequested
from flight_model.clock import ScaledClock
from tests.brokers import TEST_PASSWORD, TEST_USER, mqtt_client, require_mosquitto
from tests.builders import a_delivery_request
from tests.e2e.test_cli import murmur
from tests.e2e.test_cli_cloud import DROPOFF, PICKUP, finished, stages_of

pytestmark = [pytest.mark.e2e, pytest.mark.mosquitto]

TIMEOUT_S = 20
# aiomqtt sees a connection the broker drops before CONNACK only as a missing CONNACK: such a
# refusal surfaces as "Operation timed out" once the client's timeout has passed.
REFUSED_WITHIN_S = 3


@dataclass(frozen=True)
class Certificates:
    """PEM files made for one test: a CA that signs the broker's and a client's certificate,
    and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    """A client certificate signed by the other CA."""
    stranger_key: Path
    other_ca: Path


def make_certificates(directory: Path, *, server_names: tuple[str, ...]) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert(*server_names)
    client = ca.issue_cert("client@murmur.test", common_name="client")
    stranger = other_ca.issue_cert("stranger@murmur.test", common_name="stranger")

    def write(name: str, pem: bytes) -> Path:
        path = directory / name
        path.write_bytes(pem)
        return path

    return Certificates(
        ca=write("ca.pem", ca.cert_pem.bytes()),
        server_cert=write("server.pem", server.cert_chain_pems[0].bytes()),
        server_key=write("server-key.pem", server.private_key_pem.bytes()),
        client_cert=write("client.pem", client.cert_chain_pems[0].bytes()),
        client_key=write("client-key.pem", client.private_key_pem.bytes()),
        stranger_cert=write("stranger.pem", stranger.cert_chain_pems[0].bytes()),
        stranger_key=write("stranger-key.pem", stranger.private_key_pem.bytes()),
        other_ca=write("other-ca.pem", other_ca.cert_pem.bytes()),
    )


@dataclass(frozen=True)
class TlsBroker:
    mosquitto: Mosquitto
    certs: Certificates

    @property
    def url(self) -> BrokerUrl:
        """The test user on the TLS port, trusting the test CA; no client certificate."""
        url = BrokerUrl.parse(self.mosquitto.url)
        return replace(url, username=TEST_USER, password=TEST_PASSWORD, ca_file=self.certs.ca)

    @property
    def url_text(self) -> str:
        return f"mqtts://{TEST_USER}:{TEST_PASSWORD}@{self.mosquitto.host}:{self.mosquitto.port}"

    def log(self) -> str:
        return self.mosquitto.log_file.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def tls_broker(
    tmp_path: Path,
    *,
    require_client_cert: bool = False,
    server_names: tuple[str, ...] = ("127.0.0.1", "localhost"),
) -> AsyncIterator[TlsBroker]:
    """A private Mosquitto whose only listener is TLS, on a free loopback port."""
    require_mosquitto()
    certs = make_certificates(tmp_path / "pki", server_names=server_names)
    tls = TlsListener(
        cert_file=certs.server_cert,
        key_file=certs.server_key,
        ca_file=certs.ca,
        require_client_cert=require_client_cert,
    )
    mosquitto = Mosquitto(tmp_path / "mosquitto", users={TEST_USER: TEST_PASSWORD}, tls=tls)
    async with mosquitto:
        yield TlsBroker(mosquitto, certs)


@asynccontextmanager
async def running_services(
    url: BrokerUrl, tmp_path: Path, names: tuple[str, ...]
) -> AsyncIterator[None]:
    """Cloud services in this loop, each connected before the block starts."""
    clock = ScaledClock()
    tasks: list[asyncio.Task[None]] = []
    try:
        for name in names:
            service = build_service(
                name, transport=open_transport(url), db_path=tmp_path / f"{name}.db", clock=clock
            )
            tasks.append(asyncio.create_task(service.run(), name=name))
            async with asyncio.timeout(TIMEOUT_S):
                await service.bus.connected.wait()
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task


async def round_trip(url: BrokerUrl) -> DeliveryRequested:
    """Publish a delivery request and read it back through the broker, on one connection."""
    request = a_delivery_request()
    async with connect(open_transport(url)) as client, asyncio.timeout(TIMEOUT_S):
        await client.subscribe(DeliveryRequested)
        await client.publish(request, correlationid=request.delivery_id)
        async for envelope in client.events():
            assert isinstance(envelope.data, DeliveryRequested)
            return envelope.data
    pytest.fail("the connection ended before the request came back")


async def refused(url: BrokerUrl) -> aiomqtt.MqttError:
    """The error of a connection attempt that must not succeed."""
    with pytest.raises(aiomqtt.MqttError) as caught:
        async with mqtt_client(url, "tls-refused", timeout=REFUSED_WITHIN_S):
            pass
    return caught.value


async def test_a_delivery_request_gets_its_status_from_the_services_over_tls(
    tmp_path: Path,
) -> None:
    """Test that the Package and Delivery services and `murmur request` speak only TLS."""
    async with (
        tls_broker(tmp_path) as broker,
        running_services(broker.url, tmp_path, ("package", "delivery")),
    ):
        request = await murmur(
            "request", "--broker", broker.url_text, "--ca-file", str(broker.certs.ca),
            "--pickup", PICKUP, "--dropoff", DROPOFF, "--weight", "1.0", "--tag", "hazmat",
            "--follow", "--json", "--timeout", str(TIMEOUT_S),
        )  # fmt: skip
        out, err = await finished(request, timeout=TIMEOUT_S + 10)

    assert request.returncode == 1, err  # 1: the delivery ended, and not delivered
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert len({line["delivery_id"] for line in lines}) == 1
    assert stages_of(lines)[-1] == "Rejected"
    assert "tag_refused" in lines[-1]["reason"]
    log = broker.log()
    assert "New client connected" in log
    # Every connection was TLS, the readiness probe's included: no handshake went wrong.
    assert "SSL routines" not in log


async def test_a_plain_connection_to_the_tls_port_is_refused(tmp_path: Path) -> None:
    async with tls_broker(tmp_path) as broker:
        # What a plain MQTT client sends first; a plain listener would answer with a CONNACK.
        reader, writer = await asyncio.open_connection(broker.mosquitto.host, broker.url.port)
        writer.write(connect_packet("plain", TEST_USER, TEST_PASSWORD))
        await writer.drain()
        async with asyncio.timeout(TIMEOUT_S):
            try:
                answer = await reader.read(4)
            except ConnectionResetError:
                answer = b""
        writer.close()
        assert answer == b"", "the TLS port answered a plain CONNECT"

        await refused(replace(broker.url, tls=False, ca_file=None))
        await broker.mosquitto.stop()  # flushes the log
    assert "wrong version number" in broker.log()
    assert "New client connected" not in broker.log()


def connect_packet(client_id: str, username: str, password: str) -> bytes:
    """An MQTT 3.1.1 CONNECT: clean session, keep-alive 60 s, user name and password."""

    def field(text: str) -> bytes:
        data = text.encode()
        return len(data).to_bytes(2, "big") + data

    body = field("MQTT") + bytes([4, 0b1100_0010]) + (60).to_bytes(2, "big")
    body += field(client_id) + field(username) + field(password)
    return bytes([0x10, len(body)]) + body


async def test_a_client_trusting_another_ca_is_refused_with_a_verification_error(
    tmp_path: Path,
) -> None:
    async with tls_broker(tmp_path) as broker:
        error = await refused(replace(broker.url, ca_file=broker.certs.other_ca))
        assert "CERTIFICATE_VERIFY_FAILED" in str(error)
        # The system's CAs do not know the test CA either.
        error = await refused(replace(broker.url, ca_file=None))
        assert "CERTIFICATE_VERIFY_FAILED" in str(error)
        # The broker's own CA still gets in.
        assert (await round_trip(broker.url)).delivery_id == a_delivery_request().delivery_id


async def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    """Test that a certificate from the trusted CA but for another host does not pass."""
    async with tls_broker(tmp_path, server_names=("broker.murmur.test",)) as broker:
        error = await refused(broker.url)
    assert "CERTIFICATE_VERIFY_FAILED" in str(error)
    assert "IP address mismatch" in str(error)


async def test_when_client_certificates_are_required_only_one_signed_by_the_ca_gets_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with tls_broker(tmp_path, require_client_cert=True) as broker:
        certs = broker.certs
        with caplog.at_level(logging.ERROR):
            await refused(broker.url)
        # TLS 1.3: the client's handshake ends before the broker checks its certificate, so
        # the refusal comes as an alert on the first read, which paho logs.
        assert "CERTIFICATE_REQUIRED" in caplog.text

        caplog.clear()
        with caplog.at_level(logging.ERROR):
            await refused(
                replace(broker.url, cert_file=certs.stranger_cert, key_file=certs.stranger_key)
            )
        assert "UNKNOWN_CA" in caplog.text

        signed = replace(broker.url, cert_file=certs.client_cert, key_file=certs.client_key)
        assert (await round_trip(signed)).delivery_id == a_delivery_request().delivery_id
        await broker.mosquitto.stop()  # flushes the log
    assert broker.log().count("New client connected") == 1


async def test_murmur_request_says_the_ca_file_does_not_vouch_for_the_broker(
    tmp_path: Path,
) -> None:
    async with tls_broker(tmp_path) as broker:
        request = await murmur(
            "request", "--broker", broker.url_text, "--ca-file", str(broker.certs.other_ca),
            "--pickup", PICKUP, "--dropoff", DROPOFF, "--weight", "1.0",
        )  # fmt: skip
        _, err = await finished(request, timeout=TIMEOUT_S)
    assert request.returncode == 1
    [line] = err.strip().splitlines()
    assert line.startswith("murmur request: broker unreachable or refused: "), line
    assert "certificate verify failed" in line
