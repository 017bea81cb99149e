"""The bus delivers at least once and applies once, on both brokers.

Consumers run as real processes where a crash matters (SIGKILL), in-process elsewhere.
"""

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bus.bus import Bus
from bus.store import open_database
from bus.transport import open_transport
from contracts import Envelope, Event
from contracts.events import (
    DeadLetter,
    DeliveryRequested,
    Link,
    PackageInfo,
    PackageReady,
    ServiceStatus,
)
from contracts.ids import Location, PackageSize
from tests.brokers import TestBroker
from tests.ledger import applied, ledger_bus
from tests.probe import Probe, probing, publish_events, publish_raw

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ROOT = "murmur/v1"


def delivery_request(delivery_id: str, *, tag: str | None = None) -> Envelope[Event]:
    """A delivery request envelope, as a client would publish it."""
    data = DeliveryRequested(
        delivery_id=delivery_id,
        owner_id="owner-1",
        pickup=Location(latitude=47.0, longitude=8.0),
        dropoff=Location(latitude=47.01, longitude=8.01),
        package=PackageInfo(
            package_id=f"p-{delivery_id}", size=PackageSize.SMALL, weight_kg=1.0, tag=tag
        ),
    )
    return Envelope[Event].new(data, source="/clients/test", correlationid=delivery_id)


def ready_for(delivery_id: str) -> Callable[[PackageReady], bool]:
    return lambda e: e.delivery_id == delivery_id


@asynccontextmanager
async def running(bus: Bus) -> AsyncIterator[Bus]:
    """Run a bus in this loop until the block ends; wait until it is connected."""
    task = asyncio.create_task(bus.run())
    try:
        async with asyncio.timeout(10):
            await bus.connected.wait()
        yield bus
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        bus.db.conn.close()


class LedgerProcess:
    """The ledger consumer as a separate OS process, so it can really be killed."""

    def __init__(self, url: str, db: Path) -> None:
        self.url, self.db = url, db
        self.proc: asyncio.subprocess.Process | None = None
        self.session = 0

    async def start(self, probe: Probe) -> None:
        """Start it and wait for the retained online status of its new session."""
        self.session += 1
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.ledger",
            "--broker",
            self.url,
            "--db",
            str(self.db),
            cwd=REPO,
        )
        session = self.session
        await probe.wait_for(
            ServiceStatus, lambda s: s.link == Link.ONLINE and s.session == session
        )

    async def exited(self) -> int:
        """Wait for the process to end by itself; its return code."""
        assert self.proc is not None
        async with asyncio.timeout(20):
            return await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await self.exited()


@pytest.fixture
def ledger_db(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@asynccontextmanager
async def ledger_process(
    broker: TestBroker, db: Path
) -> AsyncIterator[tuple[LedgerProcess, Probe]]:
    async with probing(broker.url, [f"{ROOT}/#"]) as probe:
        process = LedgerProcess(broker.url, db)
        try:
            yield process, probe
        finally:
            if process.proc is not None and process.proc.returncode is None:
                process.proc.kill()
                await process.proc.wait()


async def test_a_consumer_killed_before_commit_gets_the_event_again_and_applies_it_once(
    broker: TestBroker, ledger_db: Path, request: pytest.FixtureRequest
) -> None:
    """Test that SIGKILL between receipt and commit loses nothing: the broker redelivers."""
    if broker.kind == "amqtt":
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason="Yakifo/amqtt#401: amqtt drops unacknowledged in-flight messages "
                "when the session reconnects",
            )
        )
    async with ledger_process(broker, ledger_db) as (ledger, probe):
        await ledger.start(probe)
        await publish_events(
            broker.url, [delivery_request(delivery_id="d-crash", tag="crash-before-commit")]
        )
        assert await ledger.exited() == -signal.SIGKILL
        assert applied(ledger_db) == []

        await ledger.start(probe)
        await probe.wait_for(PackageReady, ready_for("d-crash"), timeout=10)
    assert [d for d, _ in applied(ledger_db)] == ["d-crash"]


async def test_a_duplicated_event_is_applied_once(broker: TestBroker, tmp_path: Path) -> None:
    """Test that the same CloudEvents id delivered twice changes state once."""
    twice = delivery_request("d-twice")
    async with (
        probing(broker.url, [f"{ROOT}/packages/+/ready"]) as probe,
        running(ledger_bus(broker.url, tmp_path / "l.db")),
    ):
        await publish_events(broker.url, [twice, twice, delivery_request("d-after")])
        await probe.wait_for(PackageReady, ready_for("d-after"))
    assert [d for d, _ in applied(tmp_path / "l.db")] == ["d-twice", "d-after"]
    assert len(probe.of(PackageReady, ready_for("d-twice"))) == 1


async def test_events_published_while_a_consumer_is_down_reach_it_when_it_returns(
    broker: TestBroker, ledger_db: Path
) -> None:
    """Test that a persistent session queues QoS 1 events for a stopped consumer."""
    async with ledger_process(broker, ledger_db) as (ledger, probe):
        await ledger.start(probe)
        await ledger.stop()
        await publish_events(broker.url, [delivery_request(f"d-{i}") for i in range(20)])
        await ledger.start(probe)
        await probe.wait_for(PackageReady, count=20)
    assert sorted(d for d, _ in applied(ledger_db)) == sorted(f"d-{i}" for i in range(20))


async def test_no_event_is_lost_across_a_mosquitto_restart(
    mosquitto_broker: TestBroker, tmp_path: Path
) -> None:
    """Test that both buses reconnect by themselves and every queued event arrives once."""
    producer = Bus(
        component="producer",
        transport=open_transport(mosquitto_broker.url),
        db=open_database(tmp_path / "p.db"),
        reconnect_max_s=0.5,
    )
    consumer = ledger_bus(mosquitto_broker.url, tmp_path / "l.db")
    async with running(producer), running(consumer):
        for i in range(10):
            producer.emit(delivery_request(f"before-{i}").data, correlationid=f"before-{i}")
        await mosquitto_broker.stop()
        for i in range(10):
            producer.emit(delivery_request(f"during-{i}").data, correlationid=f"during-{i}")
        await mosquitto_broker.start()
        async with probing(mosquitto_broker.url, [f"{ROOT}/packages/+/ready"]) as probe:
            producer.emit(delivery_request("sentinel").data, correlationid="sentinel")
            await probe.wait_for(PackageReady, ready_for("sentinel"))
        assert producer.store.outbox_size() == 0
    delivered = [d for d, _ in applied(tmp_path / "l.db")]
    expected = (
        {f"before-{i}" for i in range(10)} | {f"during-{i}" for i in range(10)} | {"sentinel"}
    )
    assert sorted(delivered) == sorted(expected)  # each exactly once


def malformed_inputs() -> Iterator[tuple[str, bytes, str]]:
    """(topic, payload, expected reason) of 1,000 varied bad inputs."""
    good = json.loads(delivery_request("d-shape").to_json())

    def variant(i: int, change: Callable[[dict[str, Any]], None]) -> bytes:
        event = json.loads(json.dumps(good))
        event["id"] = f"bad-{i}"
        change(event)
        return json.dumps(event).encode()

    def topic(i: int) -> str:
        return (
            f"{ROOT}/deliveries/d-shape/requested"
            if i % 7
            else f"{ROOT}/deliveries/x-{i}/requested"
        )

    kinds: list[tuple[str, Callable[[int], bytes]]] = [
        ("not_json", lambda i: b"\xff\xfe not json " + str(i).encode()),
        ("not_json", lambda i: b"{" * (i % 5 + 1)),
        ("not_cloudevent", lambda i: json.dumps([i, "list"]).encode()),
        ("not_cloudevent", lambda i: variant(i, lambda e: e.pop("source"))),
        ("not_cloudevent", lambda i: variant(i, lambda e: e.update(specversion="0.3"))),
        ("unknown_type", lambda i: variant(i, lambda e: e.update(type=f"murmur.nope.{i}.v1"))),
        ("invalid_field", lambda i: variant(i, lambda e: e["data"].pop("pickup"))),
        (
            "invalid_field",
            lambda i: variant(i, lambda e: e["data"]["pickup"].update(latitude=91 + i)),
        ),
        (
            "invalid_field",
            lambda i: variant(i, lambda e: e["data"]["package"].update(weight_kg=-i)),
        ),
        ("invalid_field", lambda i: variant(i, lambda e: e["data"]["package"].update(size="huge"))),
        ("invalid_field", lambda i: variant(i, lambda e: e["data"].update(owner_id=i))),
        ("invalid_field", lambda i: variant(i, lambda e: e["data"].update(owner_id="a/b#"))),
        ("topic_mismatch", lambda i: variant(i, lambda e: e.update(subject=f"other-{i}"))),
    ]
    for i in range(999):
        reason, make = kinds[i % len(kinds)]
        payload = make(i)
        # A wrong topic level makes any valid-looking event a topic mismatch.
        yield (
            topic(i) if reason != "topic_mismatch" else f"{ROOT}/deliveries/d-shape/requested",
            payload,
            reason,
        )
    yield f"{ROOT}/deliveries/d-big/requested", b"x" * (1024 * 1024), "too_large"


async def test_malformed_inputs_are_dead_lettered_and_valid_ones_between_them_processed(
    broker: TestBroker, tmp_path: Path
) -> None:
    """Test that 1,000 bad inputs give 1,000 DLQ records and 100 good ones are all applied."""
    bad = list(malformed_inputs())
    good = [delivery_request(f"ok-{i}") for i in range(100)]
    stream: list[tuple[str, bytes]] = []
    for i, (topic, payload, _) in enumerate(bad):
        stream.append((topic, payload))
        if i % 10 == 0:
            envelope = good[i // 10]
            stream.append((envelope.data.resolved_topic(), envelope.to_json()))
    consumer = ledger_bus(broker.url, tmp_path / "l.db")
    async with (
        probing(broker.url, [f"{ROOT}/dlq/ledger", f"{ROOT}/packages/+/ready"]) as probe,
        running(consumer),
    ):
        await publish_raw(broker.url, stream)
        letters = await probe.wait_for(DeadLetter, count=len(bad), timeout=60)
        await probe.wait_for(PackageReady, count=len(good), timeout=60)
    assert consumer.stats.dead_letters == len(bad)
    expected: dict[str, int] = {}
    for _, _, reason in bad:
        expected[reason] = expected.get(reason, 0) + 1
    got: dict[str, int] = {}
    for letter in letters:
        got[letter.reason] = got.get(letter.reason, 0) + 1
    assert got == expected
    assert all(letter.detail for letter in letters)
    big = next(letter for letter in letters if letter.reason == "too_large")
    assert big.truncated
    assert big.payload_size == 1024 * 1024
    assert sorted(d for d, _ in applied(tmp_path / "l.db")) == sorted(f"ok-{i}" for i in range(100))


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_bounded_retries(
    broker: TestBroker, tmp_path: Path
) -> None:
    """Test that a failing handler is retried, then parked with its reason; the bus goes on."""
    consumer = ledger_bus(broker.url, tmp_path / "l.db")
    async with (
        probing(broker.url, [f"{ROOT}/dlq/ledger", f"{ROOT}/packages/+/ready"]) as probe,
        running(consumer),
    ):
        await publish_events(
            broker.url, [delivery_request("d-fails", tag="fail-always"), delivery_request("d-next")]
        )
        [letter] = await probe.wait_for(DeadLetter)
        await probe.wait_for(PackageReady, ready_for("d-next"))
    assert letter.reason == "handler_failed"
    assert "RuntimeError: this handler always fails" in letter.detail
    assert consumer.stats.retries == 2
    assert [d for d, _ in applied(tmp_path / "l.db")] == ["d-next"]


async def test_a_crash_between_commit_and_publish_publishes_the_event_after_restart_once(
    broker: TestBroker, ledger_db: Path
) -> None:
    """Test that the outbox keeps a committed effect through SIGKILL and sends it once."""
    async with ledger_process(broker, ledger_db) as (ledger, probe):
        await ledger.start(probe)
        await publish_events(broker.url, [delivery_request("d-outbox", tag="crash-after-commit")])
        assert await ledger.exited() == -signal.SIGKILL
        assert probe.of(PackageReady, ready_for("d-outbox")) == []
        assert [d for d, _ in applied(ledger_db)] == ["d-outbox"]

        await ledger.start(probe)
        await publish_events(broker.url, [delivery_request("d-sentinel")])
        # The relay publishes in outbox order: once the sentinel is out, so is everything before.
        await probe.wait_for(PackageReady, ready_for("d-sentinel"))
    assert len(probe.of(PackageReady, ready_for("d-outbox"))) == 1
    assert [d for d, _ in applied(ledger_db)] == ["d-outbox", "d-sentinel"]
