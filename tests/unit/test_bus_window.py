"""The bus's receive window: the socket is not read while enough messages wait to be handled."""

import asyncio
import socket
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from paho.mqtt.enums import MQTTErrorCode

from bus.bus import read_all_available


class _Paho:
    """The part of paho's client the window uses: one byte is one message, queued as aiomqtt."""

    def __init__(self, sock: socket.socket, queue: asyncio.Queue[bytes]) -> None:
        self.sock = sock
        self.queue = queue
        self.reads = 0
        self.changed = asyncio.Event()

    def socket(self) -> socket.socket:
        return self.sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:  # noqa: ARG002
        try:
            byte = self.sock.recv(1)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        self.reads += 1
        self.queue.put_nowait(byte)  # aiomqtt's on_message
        self.changed.set()
        return MQTTErrorCode.MQTT_ERR_SUCCESS


async def until(paho: _Paho, done: Callable[[], bool]) -> None:
    async with asyncio.timeout(2):
        while not done():
            paho.changed.clear()
            await paho.changed.wait()


async def a_few_turns_of_the_loop() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def take(queue: asyncio.Queue[bytes], count: int) -> None:
    for _ in range(count):
        queue.get_nowait()


async def test_reading_stops_at_the_limit_and_resumes_once_half_is_taken() -> None:
    reader, writer = socket.socketpair()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    paho = _Paho(reader, queue)
    client: Any = SimpleNamespace(_client=paho, _queue=queue, _disconnected=loop.create_future())
    try:
        reader.setblocking(False)  # noqa: FBT003
        taken = read_all_available(client, max_pending=8)
        loop.add_reader(reader.fileno(), paho.loop_read)  # as aiomqtt registers its reader
        writer.sendall(b"x" * 30)

        await until(paho, lambda: queue.qsize() == 8)
        await a_few_turns_of_the_loop()
        assert paho.reads == 8  # the rest waits in the socket: the sender's problem now

        take(queue, 3)
        taken()  # 5 still wait: more than half of the limit
        await a_few_turns_of_the_loop()
        assert paho.reads == 8

        take(queue, 1)
        taken()
        await until(paho, lambda: queue.qsize() == 8)
        assert paho.reads == 12

        for _ in range(10):  # the rest, a batch at a time, as the bus's consumer takes them
            take(queue, queue.qsize())
            taken()
            if paho.reads == 30:
                break
            await until(paho, lambda: queue.qsize() > 0)
        assert paho.reads == 30
    finally:
        loop.remove_reader(reader.fileno())
        reader.close()
        writer.close()


async def test_without_a_limit_every_message_that_arrived_is_read() -> None:
    reader, writer = socket.socketpair()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    paho = _Paho(reader, queue)
    client: Any = SimpleNamespace(_client=paho, _queue=queue)
    try:
        reader.setblocking(False)  # noqa: FBT003
        taken = read_all_available(client)
        loop.add_reader(reader.fileno(), paho.loop_read)
        writer.sendall(b"x" * 300)

        await until(paho, lambda: queue.qsize() == 300)
        taken()  # does nothing
        assert paho.reads == 300
    finally:
        loop.remove_reader(reader.fileno())
        reader.close()
        writer.close()
