"""Messages that arrived together are applied in one transaction, with the same outcomes.

No broker: `Bus._apply_together` is what the consumer calls on the messages waiting in its
queue; it must stop before anything that needs the careful path (a dead letter, a handler
that raises), and whatever it applied must be exactly what one-by-one handling applies.
"""

import os
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from paho.mqtt.enums import MQTTErrorCode

from bus.bus import Bus, Outbox, read_all_available
from bus.store import BusStore, open_database
from contracts import Envelope, Event
from contracts.events import PackageReady
from contracts.ids import PackageSize

TOPIC = "murmur/v1/packages/p-{i}/ready"


def a_bus(tmp_path: Path, fail_on: set[str] | None = None) -> tuple[Bus, list[str]]:
    bus = Bus(component="t", url="mqtt://127.0.0.1:1", db=open_database(tmp_path / "t.db"))
    bus.db.execute("CREATE TABLE seen (package_id TEXT)")
    applied: list[str] = []

    def handler(event: Envelope[Any], _: Outbox) -> None:
        package_id = event.data.package_id
        bus.db.execute("INSERT INTO seen VALUES (?)", [package_id])
        if package_id in (fail_on or set()):
            msg = "boom"
            raise RuntimeError(msg)
        applied.append(package_id)

    bus.route(PackageReady, handler)
    return bus, applied


def a_message(i: int, *, event_id: str | None = None) -> tuple[str, bytes]:
    data = PackageReady(
        package_id=f"p-{i}", delivery_id=f"d-{i}", size=PackageSize.SMALL, weight_kg=1.0
    )
    envelope = Envelope[Event].new(data, source="/cloud/package", id=event_id)
    return TOPIC.format(i=i), envelope.to_json()


def rows(bus: Bus) -> list[str]:
    return [r[0] for r in bus.db.execute("SELECT package_id FROM seen ORDER BY rowid")]


def test_a_batch_is_applied_in_order_and_a_redelivery_within_it_once(tmp_path: Path) -> None:
    bus, applied = a_bus(tmp_path)
    first = a_message(1, event_id="e-1")
    batch = [first, a_message(2), first, a_message(3)]

    done, failure = bus._apply_together(batch)

    assert (done, failure) == (4, None)
    assert applied == rows(bus) == ["p-1", "p-2", "p-3"]
    assert (bus.stats.handled, bus.stats.duplicates) == (3, 1)
    assert not bus.db.conn.in_transaction  # committed


def test_a_batch_stops_before_a_failing_handler_and_keeps_nothing_of_it(tmp_path: Path) -> None:
    bus, applied = a_bus(tmp_path, fail_on={"p-2"})

    done, failure = bus._apply_together([a_message(1), a_message(2), a_message(3)])

    assert done == 1
    assert isinstance(failure, RuntimeError)
    assert applied == rows(bus) == ["p-1"]  # the failed handler's insert was rolled back
    # Its inbox row went with it: a redelivery will be handled, not taken for a duplicate.
    assert bus.db.execute("SELECT count(*) FROM bus_inbox").fetchone()[0] == 1


def test_a_batch_stops_before_input_that_is_dead_lettered(tmp_path: Path) -> None:
    bus, applied = a_bus(tmp_path)

    done, failure = bus._apply_together([a_message(1), (TOPIC.format(i=2), b"not json")])

    assert (done, failure) == (1, None)
    assert applied == ["p-1"]
    assert bus.stats.dead_letters == 0  # left to the one-by-one path, which records it


async def test_the_one_by_one_path_then_retries_and_dead_letters_as_before(
    tmp_path: Path,
) -> None:
    bus, _ = a_bus(tmp_path, fail_on={"p-2"})
    topic, payload = a_message(2)
    done, failure = bus._apply_together([a_message(1), (topic, payload)])
    assert failure is not None

    await bus._retry(topic, payload, failure)

    # Three attempts in all (one in the batch, two here), then a dead letter.
    assert (done, bus.stats.retries, bus.stats.dead_letters) == (1, 2, 1)


def test_forgetting_sent_rows_leaves_the_sync_setting_as_it_was(tmp_path: Path) -> None:
    store = BusStore(open_database(tmp_path / "s.db"))
    store.enqueue("t/1", b"x", qos=1, retain=False)

    store.mark_sent(store.pending(10)[-1].seq)

    assert store.outbox_size() == 0
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


class _Paho:
    """The part of paho's client that `read_all_available` uses: one byte is one packet."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reads = 0

    def socket(self) -> socket.socket:
        return self.sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:  # noqa: ARG002
        try:
            self.sock.recv(1)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_SUCCESS  # paho's answer when nothing is there
        self.reads += 1
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def test_one_wake_up_reads_every_packet_that_arrived_even_past_descriptor_1024() -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    spare = [os.dup(null) for _ in range(1100)]  # the reader's descriptor lands above 1024
    reader, writer = socket.socketpair()
    try:
        reader.setblocking(False)  # noqa: FBT003
        assert reader.fileno() > 1024
        paho = _Paho(reader)
        client: Any = SimpleNamespace(_client=paho)
        read_all_available(client)
        writer.sendall(b"x" * 10)

        paho.loop_read()  # what aiomqtt calls when the socket is readable

        assert paho.reads == 10
    finally:
        reader.close()
        writer.close()
        for fd in [*spare, null]:
            os.close(fd)
