"""Messages that arrived together are applied in one transaction, with the same outcomes.

No broker: `Consumer.apply_together` is what the consumer calls on the messages waiting for it;
it must stop before anything that needs the careful path (a dead letter, a handler that
raises), and whatever it applied must be exactly what one-by-one handling applies.
"""

import asyncio
from pathlib import Path
from typing import Any

from bus.consumer import Consumer
from bus.outbox import Outbox, Producer
from bus.stats import BusStats
from bus.store import BusStore, open_database
from contracts import DEFAULT_ROOT, Envelope, Event
from contracts.events import PackageReady
from contracts.ids import PackageSize

TOPIC = "murmur/v1/packages/p-{i}/ready"


class _Component:
    """A consumer on its own database, and what its handler applied."""

    def __init__(self, tmp_path: Path, fail_on: set[str]) -> None:
        self.store = BusStore(open_database(tmp_path / "t.db"))
        self.db = self.store.db
        self.stats = BusStats()
        producer = Producer(
            component="t",
            source="/t",
            root=DEFAULT_ROOT,
            store=self.store,
            stats=self.stats,
            wake=asyncio.Event(),
        )
        self.consumer = Consumer(producer)
        self.db.execute("CREATE TABLE seen (package_id TEXT)")
        self.applied: list[str] = []
        self.consumer.route(PackageReady, self.handler)
        self._fail_on = fail_on

    def handler(self, event: Envelope[Any], _: Outbox) -> None:
        package_id = event.data.package_id
        self.db.execute("INSERT INTO seen VALUES (?)", [package_id])
        if package_id in self._fail_on:
            msg = "boom"
            raise RuntimeError(msg)
        self.applied.append(package_id)


def a_bus(tmp_path: Path, fail_on: set[str] | None = None) -> tuple[_Component, list[str]]:
    component = _Component(tmp_path, fail_on or set())
    return component, component.applied


def a_message(i: int, *, event_id: str | None = None) -> tuple[str, bytes]:
    data = PackageReady(
        package_id=f"p-{i}", delivery_id=f"d-{i}", size=PackageSize.SMALL, weight_kg=1.0
    )
    envelope = Envelope[Event].new(data, source="/cloud/package", id=event_id)
    return TOPIC.format(i=i), envelope.to_json()


def rows(bus: _Component) -> list[str]:
    return [r[0] for r in bus.db.execute("SELECT package_id FROM seen ORDER BY rowid")]


def test_a_batch_is_applied_in_order_and_a_redelivery_within_it_once(tmp_path: Path) -> None:
    bus, applied = a_bus(tmp_path)
    first = a_message(1, event_id="e-1")
    batch = [first, a_message(2), first, a_message(3)]

    done, failure = bus.consumer.apply_together(batch)

    assert (done, failure) == (4, None)
    assert applied == rows(bus) == ["p-1", "p-2", "p-3"]
    assert (bus.stats.handled, bus.stats.duplicates) == (3, 1)
    assert not bus.db.conn.in_transaction  # committed


def test_a_batch_stops_before_a_failing_handler_and_keeps_nothing_of_it(tmp_path: Path) -> None:
    bus, applied = a_bus(tmp_path, fail_on={"p-2"})

    done, failure = bus.consumer.apply_together([a_message(1), a_message(2), a_message(3)])

    assert done == 1
    assert isinstance(failure, RuntimeError)
    assert applied == rows(bus) == ["p-1"]  # the failed handler's insert was rolled back
    # Its inbox row went with it: a redelivery will be handled, not taken for a duplicate.
    assert bus.db.execute("SELECT count(*) FROM bus_inbox").fetchone()[0] == 1


def test_a_batch_stops_before_input_that_is_dead_lettered(tmp_path: Path) -> None:
    bus, applied = a_bus(tmp_path)

    done, failure = bus.consumer.apply_together([a_message(1), (TOPIC.format(i=2), b"not json")])

    assert (done, failure) == (1, None)
    assert applied == ["p-1"]
    assert bus.stats.dead_letters == 0  # left to the one-by-one path, which records it


async def test_the_one_by_one_path_then_retries_and_dead_letters_as_before(
    tmp_path: Path,
) -> None:
    bus, _ = a_bus(tmp_path, fail_on={"p-2"})
    topic, payload = a_message(2)
    done, failure = bus.consumer.apply_together([a_message(1), (topic, payload)])
    assert failure is not None

    await bus.consumer._retry(topic, payload, failure)

    # Three attempts in all (one in the batch, two here), then a dead letter.
    assert (done, bus.stats.retries, bus.stats.dead_letters) == (1, 2, 1)


def test_forgetting_sent_rows_leaves_the_sync_setting_as_it_was(tmp_path: Path) -> None:
    store = BusStore(open_database(tmp_path / "s.db"))
    store.enqueue("t/1", b"x", qos=1, retain=False)

    store.mark_sent(store.pending(10)[-1].seq)

    assert store.outbox_size() == 0
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
