"""Broker addresses: `mqtt://user:password@host:port` (and `mqtts://` for TLS)."""

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bus.errors import BusError

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerUrlError(BusError, ValueError):
    """Raised for a broker URL we cannot use; the message says which part is wrong."""


@dataclass(frozen=True)
class BrokerUrl:
    """Where a broker is and who we are to it."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    """CA bundle (PEM) the broker's certificate must chain to; None: the system's."""
    cert_file: Path | None = None
    """Client certificate (PEM), for brokers that authenticate clients by certificate."""
    key_file: Path | None = None
    """Private key of `cert_file`; None when the key is inside `cert_file`."""

    @classmethod
    def parse(cls, url: str) -> "BrokerUrl":
        """Parse `mqtt[s]://[user[:password]@]host[:port]`."""
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS:
            msg = f"broker URL {_redact(url)!r}: scheme must be mqtt:// or mqtts://"
            raise BrokerUrlError(msg)
        if not parts.hostname:
            raise BrokerUrlError(f"broker URL {_redact(url)!r}: missing host")
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError as exc:
            raise BrokerUrlError(f"broker URL {_redact(url)!r}: {exc}") from exc
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "mqtts",
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for an `mqtts://` URL (None for `mqtt://`).

        Raises:
            OSError: A TLS file cannot be read.
            ssl.SSLError: A TLS file is not a valid PEM certificate or key.
        """
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def __str__(self) -> str:
        """The URL without the password, safe to log."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
