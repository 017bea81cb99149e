"""Launch a private Mosquitto for tests and local experiments.

Each instance gets its own directory (config, password file, persistence, log) and
a loopback port, and never touches the system Mosquitto on 127.0.0.1:1883. One process's whole
life (config, TLS listener, readiness probe, stop and restart on the same port with its
persistence) is here, hence past 400 lines.
"""

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from broker.credentials import ACL, PASSWD
from broker.passwords import hash_password, write_password_file

__all__ = ["Mosquitto", "MosquittoError", "TlsListener", "find_mosquitto", "render_config"]

_HOST = "127.0.0.1"
_FALLBACK_PATH = Path("/usr/sbin/mosquitto")
_READY_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_POLL_INTERVAL_S = 0.02
_LOG_TAIL_LINES = 20
# A port we picked can be grabbed by someone else before Mosquitto binds it.
_AUTO_PORT_ATTEMPTS = 3


class MosquittoError(RuntimeError):
    """Mosquitto could not be started."""


@dataclass(frozen=True)
class TlsListener:
    """Makes the listener TLS-only: the broker's certificate, and whom client certificates need.

    Clients still log in with a user name and password; the certificate is a second check.
    """

    cert_file: Path
    """The broker's certificate (PEM), with any intermediates after it."""
    key_file: Path
    """Its private key (PEM, unencrypted: Mosquitto cannot ask for a passphrase)."""
    ca_file: Path | None = None
    """CA certificates (PEM) a client certificate must chain to."""
    require_client_cert: bool = False
    """Refuse a client without a certificate signed by `ca_file`."""

    def __post_init__(self) -> None:
        if self.require_client_cert and self.ca_file is None:
            msg = "require_client_cert needs a ca_file to check client certificates against"
            raise ValueError(msg)

    def config_lines(self) -> list[str]:
        """The ``mosquitto.conf`` lines that follow this listener's ``listener`` line."""
        return [
            f"certfile {self.cert_file}",
            f"keyfile {self.key_file}",
            *([f"cafile {self.ca_file}"] if self.ca_file is not None else []),
            f"require_certificate {'true' if self.require_client_cert else 'false'}",
            # The minimum version: TLS 1.0 and 1.1 are refused.
            "tls_version tlsv1.2",
        ]

    def paths(self) -> list[Path]:
        """The files this listener reads."""
        return [self.cert_file, self.key_file, *([self.ca_file] if self.ca_file else [])]


def find_mosquitto() -> Path | None:
    """Locate the ``mosquitto`` binary.

    Returns:
        The first ``mosquitto`` on PATH, else ``/usr/sbin/mosquitto`` (Debian puts it
        there, outside a normal user's PATH), else None.
    """
    found = shutil.which("mosquitto")
    if found is not None:
        return Path(found)
    if os.access(_FALLBACK_PATH, os.X_OK):
        return _FALLBACK_PATH
    return None


def render_config(
    *,
    port: int,
    workdir: Path,
    password_file: Path,
    acl_file: Path | None = None,
    tls: TlsListener | None = None,
) -> str:
    """Render a ``mosquitto.conf`` for a private, persistent, password-protected broker.

    Args:
        port: TCP port on 127.0.0.1.
        workdir: Directory for the persistence database and ``mosquitto.log``.
        password_file: Mosquitto password file (see `broker.passwords`).
        acl_file: Optional ACL file.
        tls: Makes the one listener TLS-only; None leaves it plain TCP.

    Returns:
        The config text.

    Raises:
        ValueError: A path contains whitespace, which mosquitto.conf cannot express.
    """
    paths = [
        workdir,
        password_file,
        *([acl_file] if acl_file is not None else []),
        *(tls.paths() if tls is not None else []),
    ]
    for path in paths:
        if any(c.isspace() for c in str(path)):
            msg = f"mosquitto.conf cannot hold paths with whitespace: {str(path)!r}"
            raise ValueError(msg)
    lines = [
        f"listener {port} {_HOST}",
        *(tls.config_lines() if tls is not None else []),
        "allow_anonymous false",
        f"password_file {password_file}",
        *([f"acl_file {acl_file}"] if acl_file is not None else []),
        "persistence true",
        # Mosquitto concatenates this with the file name: the trailing slash matters.
        f"persistence_location {workdir}/",
        # Bounds what a SIGKILL can lose to one second (the default is 30 minutes).
        "autosave_interval 1",
        # The default of 1000 silently drops messages for slow or offline clients.
        "max_queued_messages 100000",
        "persistent_client_expiration 1d",
        f"log_dest file {workdir}/mosquitto.log",
    ]
    if os.geteuid() == 0:
        # As root Mosquitto drops to user "mosquitto", which cannot read a 0700 tmp dir.
        lines.append("user root")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Mosquitto sets SO_REUSEADDR too, so a TIME_WAIT leftover does not count as taken.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((_HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def _probe_context() -> ssl.SSLContext:
    # The readiness probe checks that our own broker answers, not whom it claims to be.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Mosquitto:
    """A Mosquitto subprocess with its own config, users and persistence directory.

    `stop` and `start` keep the port and the persistence directory, so persistent
    sessions and their queued messages survive a restart (SIGTERM saves everything;
    SIGKILL loses at most the last second).

    Example:
        async with Mosquitto(tmp_path, users={"svc": "secret"}) as mosq:
            client = aiomqtt.Client("127.0.0.1", mosq.port, username="svc", ...)
    """

    def __init__(
        self,
        workdir: Path,
        *,
        users: Mapping[str, str],
        port: int | None = None,
        acl: str | None = None,
        tls: TlsListener | None = None,
        credentials: Path | None = None,
    ) -> None:
        """Configure the broker; nothing runs until `start`.

        Args:
            workdir: Directory for config, password file, persistence and log; created
                if missing.
            users: Username to plaintext password; hashed into the password file.
            port: TCP port on 127.0.0.1, or None to pick a free one at the first start.
            acl: Optional ACL file content (``user``/``topic``/``pattern`` lines).
            tls: Makes the listener TLS-only (`url` is then ``mqtts://``); None: plain TCP.
            credentials: A credentials directory (`broker.credentials`) whose password and
                ACL files Mosquitto reads in place, as in production; `users` and `acl` are
                then not written.
        """
        self._workdir = workdir
        self._users = dict(users)
        self._port = port
        self._acl = acl
        self._tls = tls
        self._credentials = None if credentials is None else credentials.resolve()
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def host(self) -> str:
        """The listen address (always 127.0.0.1)."""
        return _HOST

    @property
    def port(self) -> int:
        """The listen port.

        Raises:
            RuntimeError: The port is picked at the first start, which has not happened.
        """
        if self._port is None:
            msg = "the Mosquitto port is chosen when it first starts"
            raise RuntimeError(msg)
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:port`` (``mqtts://`` with TLS), without credentials."""
        return f"{'mqtts' if self._tls is not None else 'mqtt'}://{_HOST}:{self.port}"

    @property
    def tls(self) -> TlsListener | None:
        """The TLS settings of the listener; None when it is plain TCP."""
        return self._tls

    @property
    def workdir(self) -> Path:
        """The directory holding config, password file, persistence and log."""
        return self._workdir

    @property
    def log_file(self) -> Path:
        """Mosquitto's log file."""
        return self._workdir / "mosquitto.log"

    @property
    def running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start Mosquitto and wait until it accepts TCP connections.

        Raises:
            MosquittoError: The binary is missing, the port is taken, or Mosquitto
                exited or did not listen within 10 s (the message ends with the
                log tail).
            RuntimeError: Already running.
        """
        if self._process is not None:
            msg = "Mosquitto is already running"
            raise RuntimeError(msg)
        binary = find_mosquitto()
        if binary is None:
            msg = "mosquitto not found on PATH or at /usr/sbin/mosquitto"
            raise MosquittoError(msg)
        self._workdir.mkdir(parents=True, exist_ok=True)
        if self._port is not None:
            await self._launch(binary, self._port)
            return
        for attempt in range(1, _AUTO_PORT_ATTEMPTS + 1):
            port = _free_port()
            try:
                await self._launch(binary, port)
            except MosquittoError:
                if attempt == _AUTO_PORT_ATTEMPTS or _port_is_free(port):
                    raise
                continue
            self._port = port
            return

    async def _launch(self, binary: Path, port: int) -> None:
        # Without this check, a readiness probe could succeed against someone else's
        # broker (the system one on 1883, say) while ours exits with "address in use".
        if not _port_is_free(port):
            msg = f"cannot start Mosquitto: {_HOST}:{port} is already in use"
            raise MosquittoError(msg)
        conf = self._write_files(port)
        # Mosquitto reports config errors on stderr before its log file exists.
        stderr_path = self._workdir / "mosquitto.stderr"
        self._stderr = stderr_path.open("ab")
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(conf),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._stderr,
        )
        try:
            await self._wait_ready(port)
        except BaseException:
            await self.stop(signal.SIGKILL)
            raise

    def _write_files(self, port: int) -> Path:
        password_file = self._workdir / "passwd"
        acl_file = None
        if self._credentials is not None:
            password_file, acl_file = self._credentials / PASSWD, self._credentials / ACL
        else:
            write_password_file(
                password_file, {user: hash_password(pw) for user, pw in self._users.items()}
            )
        if self._acl is not None:
            acl_file = self._workdir / "acl"
            acl_file.write_text(self._acl, encoding="utf-8")
        conf = self._workdir / "mosquitto.conf"
        conf.write_text(
            render_config(
                port=port,
                workdir=self._workdir,
                password_file=password_file,
                acl_file=acl_file,
                tls=self._tls,
            ),
            encoding="utf-8",
        )
        return conf

    async def _wait_ready(self, port: int) -> None:
        process = self._process
        if process is None:  # pragma: no cover - _launch sets it
            msg = "Mosquitto process missing"
            raise RuntimeError(msg)
        try:
            async with asyncio.timeout(_READY_TIMEOUT_S):
                while True:
                    if process.returncode is not None:
                        msg = f"Mosquitto exited with code {process.returncode} during startup"
                        raise MosquittoError(self._with_logs(msg))
                    if await self._answers(port):
                        return
                    await asyncio.sleep(_POLL_INTERVAL_S)
        except TimeoutError:
            msg = f"Mosquitto did not listen on {_HOST}:{port} within {_READY_TIMEOUT_S:g} s"
            raise MosquittoError(self._with_logs(msg)) from None

    async def _answers(self, port: int) -> bool:
        """Whether the listener is up: it takes a TCP connection (and, with TLS, a handshake).

        A TLS listener logs a connection closed before its handshake as an OpenSSL error; one
        closed after it as a client that "closed its connection". When a client certificate is
        required the probe, having none, is refused: the refusal proves the listener is up too.
        """
        try:
            _, writer = await asyncio.open_connection(_HOST, port)
        except OSError:
            return False
        try:
            if self._tls is not None:
                with contextlib.suppress(OSError):  # ssl.SSLError is one
                    await writer.start_tls(_probe_context())
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return True

    def _with_logs(self, message: str) -> str:
        parts = [message]
        for path in (self._workdir / "mosquitto.stderr", self.log_file):
            tail = _tail(path)
            if tail:
                parts.append(f"--- {path} (tail) ---\n{tail}")
        return "\n".join(parts)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop Mosquitto and reap it. Does nothing if it is not running.

        Args:
            sig: The signal to send. SIGTERM lets Mosquitto save its persistence
                file; SIGKILL simulates a crash. Either way it is killed if it has
                not exited after 5 s.
        """
        process, self._process = self._process, None
        try:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                try:
                    async with asyncio.timeout(_STOP_TIMEOUT_S):
                        await process.wait()
                except TimeoutError:
                    process.kill()
                    await process.wait()
                except BaseException:
                    # Cancelled while waiting: never leave the broker running behind us.
                    process.kill()
                    raise
            elif process is not None:
                await process.wait()
        finally:
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    async def restart(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop with ``sig``, then start again on the same port and persistence dir.

        Args:
            sig: The signal for the stop (see `stop`).
        """
        await self.stop(sig)
        await self.start()

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
