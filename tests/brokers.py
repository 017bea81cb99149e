"""Test brokers behind one interface: in-process amqtt or a private Mosquitto.

Plain helpers; `tests/conftest.py` turns them into fixtures.
"""

import os
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import aiomqtt
import pytest

from broker.acl import mosquitto_acl
from broker.amqtt_server import EmbeddedBroker
from broker.mosquitto import Mosquitto, find_mosquitto
from broker.passwords import hash_password, write_password_file
from bus.url import BrokerUrl

BrokerKind = Literal["amqtt", "mosquitto"]
BROKER_KINDS: tuple[BrokerKind, ...] = ("amqtt", "mosquitto")

TEST_USER = "murmur"
TEST_PASSWORD = "murmur-test-password"


def mqtt_client(
    url: BrokerUrl | str, client_id: str, *, clean_session: bool = True, **options: Any
) -> aiomqtt.Client:
    """An aiomqtt client for the broker at `url`: the tests' own, independent of our bus.

    Logged in as the URL's user, else as the client id (amqtt keeps no offline queue for a
    session without a user name); `options` go to `aiomqtt.Client`.
    """
    parsed = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
    return aiomqtt.Client(
        parsed.host,
        parsed.port,
        username=parsed.username or client_id,
        password=parsed.password,
        identifier=client_id,
        clean_session=clean_session,
        tls_context=parsed.ssl_context(),
        **{"timeout": 10, **options},
    )


def require_mosquitto() -> Path:
    """Return the Mosquitto binary, or skip the test (fail it on CI).

    Returns:
        Path to ``mosquitto``.
    """
    binary = find_mosquitto()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("mosquitto not found; CI requires it (apt-get install mosquitto)")
        pytest.skip(
            "mosquitto not installed: not on PATH nor at /usr/sbin/mosquitto "
            "(apt-get install mosquitto)"
        )
    return binary


@dataclass
class TestBroker:
    """A running test broker and the credentials of the shared test user.

    ``url`` carries the credentials (``mqtt://murmur:<pw>@127.0.0.1:<port>``), so it
    can be handed to anything that takes a broker URL.
    """

    __test__: ClassVar[bool] = False  # not a test class, despite the name

    kind: BrokerKind
    host: str
    port: int
    impl: EmbeddedBroker | Mosquitto = field(repr=False)
    username: str = TEST_USER
    password: str = field(default=TEST_PASSWORD, repr=False)

    @property
    def url(self) -> str:
        """Broker URL with the test user's credentials (percent-encoded)."""
        user, password = quote(self.username, safe=""), quote(self.password, safe="")
        return f"mqtt://{user}:{password}@{self.host}:{self.port}"

    @property
    def persistent(self) -> bool:
        """Whether sessions and queued messages survive `restart` (Mosquitto only)."""
        return self.kind == "mosquitto"

    def client(self, **kwargs: Any) -> aiomqtt.Client:
        """Build an aiomqtt client for this broker, logged in as the test user.

        Args:
            **kwargs: Passed to `aiomqtt.Client`; they override host, port, username
                and password.

        Returns:
            A client, not yet connected.
        """
        options: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
        }
        options.update(kwargs)
        return aiomqtt.Client(**options)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the broker, keeping its port.

        Args:
            sig: Signal for Mosquitto (SIGKILL simulates a crash); ignored by amqtt,
                which loses all state on any stop.
        """
        if isinstance(self.impl, Mosquitto):
            await self.impl.stop(sig)
        else:
            await self.impl.stop()

    async def start(self) -> None:
        """Start the broker again on the same port (Mosquitto: same persistence dir)."""
        await self.impl.start()

    async def restart(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop, then start on the same port.

        Args:
            sig: See `stop`.
        """
        await self.stop(sig)
        await self.start()


@asynccontextmanager
async def running_broker(
    kind: BrokerKind,
    workdir: Path,
    *,
    users: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
) -> AsyncIterator[TestBroker]:
    """Run a password-protected test broker on a free loopback port.

    Must be entered inside the test's event loop (amqtt needs a running loop).

    Args:
        kind: ``"amqtt"`` (in-process) or ``"mosquitto"`` (subprocess).
        workdir: Directory for the password file and, for Mosquitto, config,
            persistence and log.
        users: Extra username to plaintext password entries besides the test user.
        roles: Login -> role (`broker.acl`) to enforce topic rights, the test user being a
            monitor unless given a role; None leaves every topic open.

    Yields:
        The running broker; it is stopped (and Mosquitto reaped) on exit.
    """
    all_users = {TEST_USER: TEST_PASSWORD, **(users or {})}
    all_roles = None if roles is None else {TEST_USER: "monitor", **roles}
    impl: EmbeddedBroker | Mosquitto
    if kind == "mosquitto":
        require_mosquitto()
        acl = None if all_roles is None else mosquitto_acl(all_roles)
        impl = Mosquitto(workdir / "mosquitto", users=all_users, acl=acl)
    else:
        password_file = workdir / "amqtt-passwd"
        write_password_file(
            password_file, {user: hash_password(pw) for user, pw in all_users.items()}
        )
        impl = EmbeddedBroker(password_file=password_file, roles=all_roles)
    async with impl:
        yield TestBroker(kind=kind, host=impl.host, port=impl.port, impl=impl)
