"""Asyncio byte links to a flight controller: UDP (in and out), TCP and a serial port.

Each link hands whatever bytes arrive to a `Receiver` and sends frames whole, never blocking:
a frame that cannot be sent now is dropped (MAVLink's own retries cover what matters). UDP
links are message-framed (`datagrams`): a MAVLink frame never spans two datagrams. The serial
port is opened without pyserial: raw 8N1 via termios on a non-blocking fd, read through
`loop.add_reader`, written with `os.write` (the rest of a partial write waits for
`add_writer`).
"""

import asyncio
import contextlib
import errno
import logging
import os
import socket
import termios
from collections.abc import Callable
from typing import Protocol, cast

from drone_agent.mavlink.connection import MavlinkConnection, SerialPort, TcpClient, UdpIn, UdpOut

log = logging.getLogger("murmur.agent.mavlink")

Receiver = Callable[[bytes], bool]
"""Takes received bytes; true if they held at least one valid frame."""

_READ_SIZE = 4096
_MAX_BACKLOG = 64 * 1024  # bytes queued for a slow stream before frames are dropped
_CONNECT_TIMEOUT_S = 5.0


class Link(Protocol):
    """An open connection to the flight controller."""

    @property
    def datagrams(self) -> bool:
        """Whether each received chunk is a whole datagram (frames never span two)."""
        ...

    def send(self, data: bytes) -> None:
        """Send one frame, or drop it if it cannot go now."""

    async def wait_closed(self) -> None:
        """Return once the connection failed or was closed (a UDP link only by `close`)."""

    def close(self) -> None:
        """Release the socket or device."""


async def open_link(connection: MavlinkConnection, receive: Receiver) -> Link:
    """Open `connection`, delivering received bytes to `receive`.

    Raises:
        OSError: the socket cannot be bound or connected, or the device cannot be opened.
    """
    match connection:
        case UdpIn(host, port):
            return await _UdpLink.open(receive, local=(host, port))
        case UdpOut(host, port):
            return await _UdpLink.open(receive, remote=(host, port))
        case TcpClient(host, port):
            return await _TcpLink.open(host, port, receive)
        case SerialPort(device, baud):
            return _SerialLink.open(device, baud, receive)


class _UdpLink(asyncio.DatagramProtocol):
    """udpout: a connected socket; udpin: answers whoever last sent a valid frame."""

    datagrams = True

    def __init__(self, receive: Receiver, *, answer_last_sender: bool) -> None:
        self._receive = receive
        self._answer_last = answer_last_sender
        self._transport: asyncio.DatagramTransport | None = None
        self._peer: tuple[str, int] | None = None
        self._closed = asyncio.Event()

    @classmethod
    async def open(
        cls,
        receive: Receiver,
        *,
        local: tuple[str, int] | None = None,
        remote: tuple[str, int] | None = None,
    ) -> "_UdpLink":
        link = cls(receive, answer_last_sender=remote is None)
        await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: link, local_addr=local, remote_addr=remote
        )
        return link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast("asyncio.DatagramTransport", transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if self._receive(data) and self._answer_last:
            self._peer = (str(addr[0]), int(addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable while the other side is not up yet: normal, keep going.
        log.debug("mavlink udp: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio's signature
        self._closed.set()

    def send(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if not self._answer_last:
            self._transport.sendto(data)
        elif self._peer is not None:
            self._transport.sendto(data, self._peer)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _TcpLink:
    datagrams = False

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, receive: Receiver
    ) -> None:
        self._writer = writer
        self._pump = asyncio.get_running_loop().create_task(self._read(reader, receive))

    @classmethod
    async def open(cls, host: str, port: int, receive: Receiver) -> "_TcpLink":
        async with asyncio.timeout(_CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, receive)

    @staticmethod
    async def _read(reader: asyncio.StreamReader, receive: Receiver) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(_READ_SIZE):
                receive(data)

    def send(self, data: bytes) -> None:
        transport = self._writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > _MAX_BACKLOG:
            return
        self._writer.write(data)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._pump)

    def close(self) -> None:
        self._pump.cancel()
        self._writer.close()


class _SerialLink:
    datagrams = False

    def __init__(self, fd: int, receive: Receiver) -> None:
        self._fd: int | None = fd
        self._receive = receive
        self._loop = asyncio.get_running_loop()
        self._backlog = bytearray()
        self._closed = asyncio.Event()
        self._loop.add_reader(fd, self._readable)

    @classmethod
    def open(cls, device: str, baud: int, receive: Receiver) -> "_SerialLink":
        speed = getattr(termios, f"B{baud}", None)
        if speed is None:
            raise OSError(errno.EINVAL, f"baud {baud} is not supported on this system", device)
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            _raw_mode(fd, speed)
        except (OSError, termios.error) as exc:
            os.close(fd)
            raise OSError(errno.ENOTTY, f"not a serial port: {exc}", device) from exc
        return cls(fd, receive)

    def _readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EIO: the device went away (USB unplugged, pty closed)
            self._fail(exc)
            return
        if not data:
            self._fail(None)
            return
        self._receive(data)

    def send(self, data: bytes) -> None:
        if self._fd is None:
            return
        if self._backlog:
            if len(self._backlog) + len(data) <= _MAX_BACKLOG:
                self._backlog += data
            return
        try:
            written = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError as exc:
            self._fail(exc)
            return
        if written < len(data):
            self._backlog += data[written:]
            self._loop.add_writer(self._fd, self._writable)

    def _writable(self) -> None:
        if self._fd is None:
            return
        try:
            written = os.write(self._fd, self._backlog)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(exc)
            return
        del self._backlog[:written]
        if not self._backlog:
            self._loop.remove_writer(self._fd)

    def _fail(self, exc: OSError | None) -> None:
        log.warning("mavlink serial: %s", exc or "end of file")
        self.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def close(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        os.close(fd)
        self._closed.set()


def _raw_mode(fd: int, speed: int) -> None:
    """8N1, no flow control, no line discipline: bytes in, bytes out (cfmakeraw)."""
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
        | termios.IXOFF
        | termios.IXANY
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB | getattr(termios, "CRTSCTS", 0))
    cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])
    termios.tcflush(fd, termios.TCIOFLUSH)
