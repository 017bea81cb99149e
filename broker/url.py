"""Broker addresses: `mqtt://user:password@host:port` (and `mqtts://` for TLS)."""

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerUrlError(ValueError):
    """Raised for a broker URL we cannot use; the message says which part is wrong."""


@dataclass(frozen=True)
class BrokerUrl:
    """Where a broker is and who we are to it."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

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

    def __str__(self) -> str:
        """The URL without the password, safe to log."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
