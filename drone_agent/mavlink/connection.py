"""Connection strings of the MAVLink link (docs/mavlink.md), parsed into typed values.

`mavutil` opens any unknown string containing `:` as UDP (field notes §8), so a MAVSDK-style
`serial:///dev/ttyACM0:57600` silently becomes a socket. Here every string is one of four
forms or a `ValueError` that names what is wrong with it.
"""

import re
from dataclasses import dataclass

DEFAULT_BAUD = 921_600
STANDARD_BAUDS = frozenset(
    {
        9_600,
        19_200,
        38_400,
        57_600,
        115_200,
        230_400,
        460_800,
        500_000,
        576_000,
        921_600,
        1_000_000,
        1_500_000,
        2_000_000,
        3_000_000,
        4_000_000,
    }
)
FORMS = "udpin:HOST:PORT, udpout:HOST:PORT, tcp:HOST:PORT or serial:DEVICE[:BAUD]"

_HOST = re.compile(r"[A-Za-z0-9._-]+")
_IPV6 = re.compile(r"[0-9A-Fa-f:.%A-Za-z]+")
_MAX_PORT = 65_535


@dataclass(frozen=True, slots=True)
class UdpIn:
    """Listen on HOST:PORT and answer whoever sent the last frame (PX4 SITL pushes here)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"udpin:{_join(self.host, self.port)}"


@dataclass(frozen=True, slots=True)
class UdpOut:
    """Send to HOST:PORT (the simulator's endpoints) and hear its answers."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"udpout:{_join(self.host, self.port)}"


@dataclass(frozen=True, slots=True)
class TcpClient:
    """Connect to HOST:PORT (ArduPilot SITL); reconnect when the connection drops."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"tcp:{_join(self.host, self.port)}"


@dataclass(frozen=True, slots=True)
class SerialPort:
    """A serial device in raw 8N1 mode at `baud`."""

    device: str
    baud: int = DEFAULT_BAUD

    def __str__(self) -> str:
        return f"serial:{self.device}:{self.baud}"


MavlinkConnection = UdpIn | UdpOut | TcpClient | SerialPort


def parse_connection(text: str) -> MavlinkConnection:
    """`udpin:HOST:PORT`, `udpout:HOST:PORT`, `tcp:HOST:PORT` or `serial:DEVICE[:BAUD]`.

    Raises:
        ValueError: the string is none of them; the message names what is wrong.
    """
    if not text or text != text.strip():
        raise ValueError(f"{text!r}: empty or padded with whitespace; expected {FORMS}")
    kind, sep, rest = text.partition(":")
    if not sep:
        raise ValueError(f"{text!r}: no kind before ':'; expected {FORMS}")
    if rest.startswith("//"):
        raise ValueError(
            f"{text!r}: a URL (MAVSDK style) is not a connection string here; expected {FORMS}, "
            "e.g. serial:/dev/ttyACM0:57600 or udpin:0.0.0.0:14540"
        )
    if kind == "serial":
        return _serial(text, rest)
    forms: dict[str, type[UdpIn | UdpOut | TcpClient]] = {
        "udpin": UdpIn,
        "udpout": UdpOut,
        "tcp": TcpClient,
    }
    if kind not in forms:
        raise ValueError(f"{text!r}: unknown kind {kind!r}; expected {FORMS}")
    host, port = _host_port(text, kind, rest)
    return forms[kind](host, port)


def _host_port(text: str, kind: str, rest: str) -> tuple[str, int]:
    usage = f"expected {kind}:HOST:PORT"
    if rest.startswith("["):  # [IPv6]:PORT
        close = rest.find("]")
        if close < 0:
            raise ValueError(f"{text!r}: unclosed '[' in the host; {usage}")
        host, after = rest[1:close], rest[close + 1 :]
        if not host or not _IPV6.fullmatch(host):
            raise ValueError(f"{text!r}: invalid IPv6 host {host!r}; {usage}")
        if not after.startswith(":"):
            raise ValueError(f"{text!r}: missing port after the host; {usage}")
        port_text = after[1:]
    else:
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            raise ValueError(f"{text!r}: missing port; {usage}")
        if not host:
            hint = " (0.0.0.0 listens on every interface)" if kind == "udpin" else ""
            raise ValueError(f"{text!r}: missing host{hint}; {usage}")
        if ":" in host:
            raise ValueError(f"{text!r}: an IPv6 host goes in brackets, [{host}]; {usage}")
        if not _HOST.fullmatch(host):
            raise ValueError(f"{text!r}: invalid host {host!r}; {usage}")
    return host, _port(text, port_text, usage)


def _port(text: str, port_text: str, usage: str) -> int:
    if not port_text:
        raise ValueError(f"{text!r}: missing port; {usage}")
    if not port_text.isdigit():
        raise ValueError(f"{text!r}: port {port_text!r} is not a number; {usage}")
    port = int(port_text)
    if not 1 <= port <= _MAX_PORT:
        raise ValueError(f"{text!r}: port {port} is outside 1..{_MAX_PORT}; {usage}")
    return port


def _serial(text: str, rest: str) -> SerialPort:
    """DEVICE[:BAUD]; a tail after the last ':' is a baud unless it looks like part of a path.

    Device names under /dev/serial/by-path contain ':' ("...-usb-0:1.3:1.0-port0"); such a
    tail has '.', '-' or '/' in it, a baud never does.
    """
    usage = "expected serial:DEVICE[:BAUD], e.g. serial:/dev/serial0:921600"
    device, baud = rest, DEFAULT_BAUD
    head, sep, tail = rest.rpartition(":")
    if sep and not any(c in tail for c in "./-"):
        device = head
        if not tail:
            raise ValueError(f"{text!r}: empty baud after ':'; {usage}")
        if not tail.isdigit():
            raise ValueError(f"{text!r}: baud {tail!r} is not a number; {usage}")
        baud = int(tail)
        if baud not in STANDARD_BAUDS:
            rates = ", ".join(str(b) for b in sorted(STANDARD_BAUDS))
            raise ValueError(f"{text!r}: baud {baud} is not a standard rate ({rates})")
    if not device:
        raise ValueError(f"{text!r}: missing device; {usage}")
    if not device.startswith("/"):
        raise ValueError(f"{text!r}: device {device!r} is not an absolute path; {usage}")
    if any(c.isspace() for c in device):
        raise ValueError(f"{text!r}: device {device!r} contains whitespace; {usage}")
    return SerialPort(device, baud)


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
