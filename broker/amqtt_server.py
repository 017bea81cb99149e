"""The embedded MQTT broker (amqtt 0.12.1) for laptops and tests.

Only `murmur broker` and the test fixtures import this module; services and agents
talk to any broker through a URL. amqtt speaks MQTT 3.1.1 only and keeps all state
in memory: a restart loses sessions, subscriptions, queues and retained messages.
"""

import asyncio
import errno
import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.errors import BrokerError
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.acl import Grant, allowed, grants
from broker.passwords import hash_password, read_password_file, verify_password
from contracts.topics import DEFAULT_ROOT

__all__ = [
    "EmbeddedBroker",
    "InsecureBrokerError",
    "MurmurAuthPlugin",
    "MurmurTopicPlugin",
    "PortInUseError",
    "amqtt_config",
    "is_loopback",
    "serve",
]

_log = logging.getLogger(__name__)

# Compared against when the user is unknown, so a wrong username costs as much as a
# wrong password and does not reveal which usernames exist.
_DUMMY_HASH = hash_password("", salt=bytes(12))


class PortInUseError(RuntimeError):
    """The embedded broker's listen address is already taken."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"cannot start the embedded broker: {_hostport(host, port)} is already in use "
            "(choose another port with --port)"
        )


class InsecureBrokerError(RuntimeError):
    """A broker reachable from other machines, without passwords or without roles."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            f"the embedded broker on {host} would be reachable from other machines without "
            "passwords and topic rights; outside loopback it needs both"
        )


class MurmurAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """amqtt authentication: a username is mandatory, the password optional in dev mode.

    Sessions are never marked anonymous: amqtt deletes anonymous sessions about a
    second after they disconnect, together with their offline queues, so a
    persistent (``clean_session=False``) client would silently lose messages.

    With ``password_file`` set, the file is read once when the broker starts and
    every client must present a password matching its ``$7$``/``$6$`` hash. Without
    it (dev mode), any client that sends a username is accepted.
    """

    @dataclass
    class Config:
        """Plugin configuration (parsed by amqtt with strict dacite)."""

        password_file: str | None = None
        """Mosquitto-format password file; None accepts any username (dev mode)."""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        password_file = self.context.config.password_file
        self._users: dict[str, str] | None = (
            None if password_file is None else read_password_file(password_file)
        )

    async def authenticate(self, *, session: Session) -> bool:
        """Decide whether a connecting client may proceed.

        Args:
            session: The amqtt session built from the CONNECT packet.

        Returns:
            True to accept the client; False makes amqtt answer CONNACK "not authorized".
        """
        username: str | None = session.username
        if not username:
            return False
        if self._users is None:
            return True
        encoded = self._users.get(username)
        password: str = session.password or ""
        if encoded is None:
            verify_password(password, _DUMMY_HASH)
            return False
        return verify_password(password, encoded)


class MurmurTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """amqtt topic rights from `broker.acl`, the rules the Mosquitto ACL file is rendered from.

    A login without a role may do nothing. amqtt checks publishes, subscriptions and each
    delivery; its replay of retained messages on CONNECT bypasses every plugin (field notes),
    which is why nothing secret is ever retained.
    """

    @dataclass
    class Config:
        """Plugin configuration (parsed by amqtt with strict dacite)."""

        roles: dict[str, str]
        """Login -> role (`broker.acl.ROLES`)."""
        root: str = DEFAULT_ROOT

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        config = self.context.config
        self._grants: dict[str, tuple[Grant, ...]] = {
            login: grants(role, login, root=config.root) for login, role in config.roles.items()
        }

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        """Whether this login may publish to, subscribe to, or receive from `topic`."""
        granted = self._grants.get(session.username if session is not None else "") or ()
        if topic is None:
            return False
        return allowed(granted, "write" if action == Action.PUBLISH else "read", topic)


def _hostport(host: str, port: int) -> str:
    """Join host and port, bracketing IPv6 literals as URLs and amqtt expect."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`): reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def amqtt_config(
    host: str, port: int, *, password_file: Path | None, roles: dict[str, str] | None = None
) -> dict[str, Any]:
    """Build the amqtt broker configuration.

    One TCP listener, our auth plugin as the only plugin (no ``$SYS`` topics, no
    packet or event loggers) and disconnected persistent sessions expiring after an
    hour, since amqtt's offline queues are otherwise unbounded and kept forever.
    Keys use underscores: amqtt parses the config with strict dacite, which rejects
    the hyphenated spellings in its docs.

    Args:
        host: Address to bind; keep it loopback unless clients are remote.
        port: TCP port; 0 lets the OS pick one.
        password_file: Mosquitto-format password file, or None for dev mode.
        roles: Login -> role (`broker.acl`): topic rights are enforced; None allows any topic.

    Returns:
        A dict accepted by ``amqtt.broker.Broker``.
    """
    plugins: dict[str, Any] = {
        _dotted(MurmurAuthPlugin): {
            "password_file": None if password_file is None else str(password_file)
        },
    }
    if roles is not None:
        plugins[_dotted(MurmurTopicPlugin)] = {"roles": dict(roles)}
    return {
        "listeners": {"default": {"type": "tcp", "bind": _hostport(host, port)}},
        "session_expiry_interval": 3600,
        "plugins": plugins,
    }


def _dotted(plugin: type) -> str:
    return f"{plugin.__module__}.{plugin.__qualname__}"


def _check_port_free(host: str, port: int) -> None:
    """Fail early, and without amqtt's logged traceback, when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Same option amqtt's listener uses, so TIME_WAIT leftovers don't count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(host, port) from exc
            raise


def _caused_by_addr_in_use(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            return True
        cause = cause.__cause__
    return False


class EmbeddedBroker:
    """An in-process amqtt broker on one TCP listener.

    Build and start it inside a running event loop (amqtt's constructor needs one).
    Each `start` builds a fresh amqtt broker on the same port: nothing survives a
    `stop`.

    Example:
        async with EmbeddedBroker(password_file=path) as broker:
            client = aiomqtt.Client(broker.host, broker.port, username="svc", ...)
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        password_file: Path | None = None,
        roles: dict[str, str] | None = None,
    ) -> None:
        """Configure the broker; nothing listens until `start`.

        Args:
            host: Address to bind; loopback by default.
            port: TCP port, or None (or 0) to let the OS pick a free one at the first
                start (kept for later restarts).
            password_file: Mosquitto-format password file; None accepts any client
                that sends a username (dev mode, loopback only).
            roles: Login -> role, to enforce topic rights (`broker.acl`); None: any topic
                (loopback only).
        """
        self._host = host
        self._port = port or None
        self._password_file = password_file
        self._roles = roles
        self._broker: Broker | None = None

    @property
    def host(self) -> str:
        """The listen address."""
        return self._host

    @property
    def port(self) -> int:
        """The listen port.

        Raises:
            RuntimeError: The port was left to the OS and the broker never started.
        """
        if self._port is None:
            msg = "the embedded broker's port is chosen when it first starts"
            raise RuntimeError(msg)
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://host:port``, without credentials."""
        return f"mqtt://{_hostport(self._host, self.port)}"

    @property
    def running(self) -> bool:
        """Whether the broker is currently listening."""
        return self._broker is not None

    async def start(self) -> None:
        """Start listening.

        Raises:
            InsecureBrokerError: The address is not loopback, and the password file or the
                roles are missing.
            PortInUseError: The address is already taken.
            RuntimeError: The broker is already running.
            amqtt.errors.BrokerError: amqtt failed to start for another reason.
        """
        if self._broker is not None:
            msg = "the embedded broker is already running"
            raise RuntimeError(msg)
        if not is_loopback(self._host) and (self._password_file is None or self._roles is None):
            raise InsecureBrokerError(self._host)
        if self._port is not None:
            _check_port_free(self._host, self._port)
        config = amqtt_config(
            self._host, self._port or 0, password_file=self._password_file, roles=self._roles
        )
        broker = Broker(config)
        try:
            await broker.start()
        except BrokerError as exc:
            # Only reached if another process grabbed the port after our probe.
            if self._port is not None and _caused_by_addr_in_use(exc):
                raise PortInUseError(self._host, self._port) from exc
            raise
        if self._port is None:
            self._port = _bound_port(broker)
        self._broker = broker
        _log.info("embedded broker listening on %s", self.url)

    async def stop(self) -> None:
        """Stop listening and drop all state. Does nothing if not running."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _bound_port(broker: Broker) -> int:
    """Read the port the OS chose for a listener bound to port 0."""
    # amqtt has no public accessor for its listening sockets.
    server = broker._servers["default"].instance  # noqa: SLF001
    port: int = server.sockets[0].getsockname()[1]
    return port


async def serve(
    *, host: str, port: int, password_file: Path | None, roles: dict[str, str] | None = None
) -> None:
    """Run the embedded broker until cancelled (``murmur broker``).

    Args:
        host: Address to bind.
        port: TCP port.
        password_file: Mosquitto-format password file, or None for dev mode.
        roles: Login -> role, enforced (`broker.acl`); None: any topic (dev mode).

    Raises:
        InsecureBrokerError: Dev mode on an address other than loopback.
        PortInUseError: The address is already taken.
    """
    async with EmbeddedBroker(host=host, port=port, password_file=password_file, roles=roles):
        await asyncio.Event().wait()
