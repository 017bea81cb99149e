"""The raw baseline: what paho-mqtt alone gets from a broker, to hold our own figures against.

Usage: python -m benchmarks.raw --broker mqtt://user:pw@127.0.0.1:PORT [--quick] [--json FILE]
(or through the harness, which starts a broker for the run: python -m benchmarks.harness).

Two paho clients in this process and nothing of ours on the path (no aiomqtt, no bus, no
SQLite, no pydantic per message): one publisher, one subscriber, QoS 1 both ways, each with
paho's network loop in its own thread (`loop_start`), as aiomqtt runs it under our bus.

* Throughput: N messages published back to back; paho keeps at most `WINDOW` of them
  unacknowledged on the wire and queues the rest in memory. Timed from just before the first
  `publish` call to the arrival of the last distinct message at the subscriber.
* Round trip: then `rtt_samples` messages one at a time, each published only once the previous
  one arrived; latency = arrival - the `perf_counter` stamp in the payload (one process, one
  clock). Publish -> broker -> subscriber, with nothing else in flight.

Every payload has the size of a real encoded event (`event_payload_bytes`): an 8-byte sequence
number and an 8-byte send time, padded with filler, so the broker moves what our bus moves.
"""

import argparse
import contextlib
import json
import statistics
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from benchmarks.stats import percentile
from bus.url import BrokerUrl
from contracts import Envelope
from contracts.events import DeliveryStatusChanged
from contracts.ids import Location
from contracts.requests import new_delivery_id
from contracts.states import DeliveryStage

__all__ = ["FULL", "QUICK", "WINDOW", "Counts", "event_payload_bytes", "measure"]

# The same in-flight window as our bus (`max_inflight` = 64 in broker/bus.py, which relays its
# outbox in batches of 64), so the choreography's ratio to this rate compares like with like.
# It is also about the best window for paho here: 20,000 messages to a private Mosquitto on the
# development machine gave 9,055 msg/s with paho's default of 20, 11,486 with 64, 10,930 with
# 256 and 7,908 with 1,024 (one run each); amqtt stayed at 2,500-2,900 msg/s whatever the window.
WINDOW = 64
QOS = 1


@dataclass(frozen=True)
class Counts:
    """How many messages one run sends."""

    messages: int
    """Throughput phase: published back to back."""
    rtt_samples: int
    """Round-trip phase: published one at a time."""


QUICK = Counts(messages=2_000, rtt_samples=200)
FULL = Counts(messages=50_000, rtt_samples=2_000)

_HEADER = struct.Struct("!Qd")  # sequence number, perf_counter at publish
_CONNECT_TIMEOUT_S = 10.0
_RTT_TIMEOUT_S = 5.0
# Bounds a hung throughput phase without bounding a slow broker: >= 100 msg/s always passes.
_MIN_RATE_MSG_S = 100


def event_payload_bytes() -> int:
    """The size of one real encoded event, as the Delivery service publishes it.

    A `DeliveryStatusChanged` mid-flight (drone, job, ETA and last known position set) in its
    envelope: the QoS 1 event the choreography publishes most, and one of the larger ones.
    """
    delivery_id = new_delivery_id()
    status = DeliveryStatusChanged(
        delivery_id=delivery_id,
        stage=DeliveryStage.HEADED_TO_DROPOFF,
        version=4,
        drone_id="d-0042",
        job_id=f"job-{uuid.uuid4().hex[:16]}",
        eta=datetime.now(UTC) + timedelta(minutes=7),
        last_known_location=Location(latitude=47.376887, longitude=8.541694, altitude_m=60.0),
    )
    envelope = Envelope[DeliveryStatusChanged].new(
        status,
        source="/cloud/delivery",
        correlationid=delivery_id,
        causationid=str(uuid.uuid4()),
    )
    return len(envelope.to_json())


class _Counter:
    """Counts what a network thread sees; the measuring thread waits for a count to be reached."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self._target = 0
        self._reached = threading.Event()

    def expect(self, target: int) -> threading.Event:
        """An event set once the count reaches `target` (already set if it has)."""
        with self.lock:
            self._target = target
            self._reached = threading.Event()
            if self.count >= target:
                self._reached.set()
            return self._reached

    def _counted(self) -> None:
        # Called with the lock held, after `count` went up.
        if self.count >= self._target:
            self._reached.set()


class _Sink(_Counter):
    """The subscriber's side: distinct messages, duplicates, arrival times, round trips."""

    def __init__(self, expected: int, rtt_from: int) -> None:
        super().__init__()
        # One flag per sequence number: QoS 1 allows duplicates, and they must not count twice.
        self.seen = bytearray(expected)
        self.rtt_from = rtt_from
        self.duplicates = 0
        self.last_arrival = 0.0
        self.rtts: list[float] = []

    def on_message(self, client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        arrived = time.perf_counter()
        # Acked by hand, as our bus acks after its commit, and before the measuring thread is
        # told of the message: so the PUBACK is queued ahead of that thread's DISCONNECT.
        client.ack(msg.mid, msg.qos)
        seq, sent = _HEADER.unpack_from(msg.payload)
        with self.lock:
            if seq >= len(self.seen) or self.seen[seq]:
                self.duplicates += 1
                return
            self.seen[seq] = 1
            self.count += 1
            self.last_arrival = arrived
            if seq >= self.rtt_from:
                self.rtts.append(arrived - sent)
            self._counted()


class _Acks(_Counter):
    """The publisher's side: PUBACKs received."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = 0
        self.last = 0.0

    def on_publish(
        self,
        _mqtt: mqtt.Client,
        _userdata: object,
        _mid: int,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        with self.lock:
            self.count += 1
            self.failed += reason_code.is_failure
            self.last = time.perf_counter()
            self._counted()


def _connect(url: BrokerUrl, client_id: str) -> mqtt.Client:
    """A connected paho client with its network loop running in its own thread."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=mqtt.MQTTv311,  # amqtt speaks only 3.1.1; our bus uses it everywhere
    )
    # As BrokerUrl.client does: amqtt refuses a connection without a username.
    client.username_pw_set(url.username or client_id, url.password)
    context = url.ssl_context()
    if context is not None:
        client.tls_set_context(context)
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)  # unbounded: the whole run may wait behind the window
    connected = threading.Event()
    outcome: list[ReasonCode] = []

    def on_connect(
        _mqtt: mqtt.Client,
        _userdata: object,
        _flags: object,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        outcome.append(reason_code)
        connected.set()

    client.on_connect = on_connect
    client.connect(url.host, url.port, keepalive=60)
    client.loop_start()
    if not connected.wait(_CONNECT_TIMEOUT_S) or outcome[0].is_failure:
        client.loop_stop()
        reason = outcome[0] if outcome else f"no CONNACK within {_CONNECT_TIMEOUT_S:g} s"
        msg = f"{client_id}: cannot connect to {url}: {reason}"
        raise ConnectionError(msg)
    return client


@contextlib.contextmanager
def _connected(url: BrokerUrl, client_id: str) -> Iterator[mqtt.Client]:
    client = _connect(url, client_id)
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def _subscribe(client: mqtt.Client, topic: str) -> None:
    granted: list[ReasonCode] = []
    subscribed = threading.Event()

    def on_subscribe(
        _mqtt: mqtt.Client,
        _userdata: object,
        _mid: int,
        reason_codes: list[ReasonCode],
        _properties: object,
    ) -> None:
        granted.extend(reason_codes)
        subscribed.set()

    client.on_subscribe = on_subscribe
    client.subscribe(topic, qos=QOS)
    if not subscribed.wait(_CONNECT_TIMEOUT_S) or any(code.is_failure for code in granted):
        msg = f"subscription to {topic} refused or unanswered: {granted}"
        raise ConnectionError(msg)


def measure(
    url: BrokerUrl,
    *,
    quick: bool,
    messages: int | None = None,
    rtt_samples: int | None = None,
) -> dict[str, Any]:
    """Run both phases against the broker at `url`; blocking (call it in a thread from asyncio).

    Args:
        url: The broker; its credentials, if any, are used by both clients.
        quick: `QUICK` counts (a few seconds) instead of `FULL`.
        messages: Overrides the throughput phase's count (tests use a handful).
        rtt_samples: Overrides the round-trip phase's count.

    Returns:
        JSON-able figures: `messages`, `received` (distinct), `duplicates`, `payload_bytes`,
        `throughput_msg_s`, `seconds` (first publish to last arrival), `publish_acked_s` (first
        publish to last PUBACK), `rtt_ms` {`p50`, `p99`, `max`, `samples`}, and the method
        (`client`, `qos`, `in_flight_window`, `payload_event`, `topic_bytes`).

    Raises:
        ConnectionError: A client could not connect or subscribe.
        TimeoutError: Messages stopped arriving (a QoS 1 loss, or a stuck broker).
    """
    counts = QUICK if quick else FULL
    n = counts.messages if messages is None else messages
    m = counts.rtt_samples if rtt_samples is None else rtt_samples
    if n < 1 or m < 1:
        msg = f"messages and rtt_samples must be at least 1, got {n} and {m}"
        raise ValueError(msg)
    run = uuid.uuid4().hex[:8]
    # As long as the real status topic (murmur/v1/deliveries/del-<16 hex>/status), under a root
    # of our own, so nothing else on a shared broker hears it.
    topic = f"bench/{run[:3]}/deliveries/{new_delivery_id()}/status"
    payload_bytes = event_payload_bytes()
    filler = b"x" * (payload_bytes - _HEADER.size)
    sink = _Sink(expected=n + m, rtt_from=n)
    acks = _Acks()

    with contextlib.ExitStack() as connections:
        subscriber = connections.enter_context(_connected(url, f"bench-raw-{run}-sub"))
        subscriber.on_message = sink.on_message
        subscriber.manual_ack_set(on=True)
        _subscribe(subscriber, topic)
        # Entered last, left first: the publisher goes before the subscriber.
        publisher = connections.enter_context(_connected(url, f"bench-raw-{run}-pub"))
        publisher.on_publish = acks.on_publish
        phases = _Phases(publisher, topic, filler, sink, acks)
        throughput = phases.throughput(n)
        rtts = sorted(phases.round_trips(first=n, count=m))
    return {
        "client": f"paho-mqtt {version('paho-mqtt')}",
        "qos": QOS,
        "in_flight_window": WINDOW,
        "payload_event": "DeliveryStatusChanged",
        "payload_bytes": payload_bytes,
        "topic_bytes": len(topic),
        **throughput,
        "duplicates": sink.duplicates,
        "rtt_ms": {
            "p50": round(1000 * statistics.median(rtts), 3),
            "p99": round(1000 * (percentile(rtts, 0.99) or 0.0), 3),
            "max": round(1000 * rtts[-1], 3),
            "samples": len(rtts),
        },
    }


@dataclass(frozen=True)
class _Phases:
    """The two phases, on one connected publisher and one subscribed sink."""

    publisher: mqtt.Client
    topic: str
    filler: bytes
    sink: _Sink
    acks: _Acks

    def throughput(self, n: int) -> dict[str, Any]:
        """Publish sequence numbers 0..n-1 back to back; time until the last one arrives."""
        arrived_all = self.sink.expect(n)
        acked_all = self.acks.expect(n)
        # Built before the clock starts: we time paho and the broker, not struct. The send-time
        # stamp stays 0 (throughput does not use it); the header keeps the size exact.
        payloads = [_HEADER.pack(seq, 0.0) + self.filler for seq in range(n)]
        started = time.perf_counter()
        for payload in payloads:
            # Returns at once: beyond the window paho queues the message, and its network
            # thread sends the next one as each PUBACK frees a slot.
            self.publisher.publish(self.topic, payload, qos=QOS)
        timeout = 60 + n / _MIN_RATE_MSG_S
        if not arrived_all.wait(timeout):
            msg = f"throughput: {self.sink.count} of {n} messages arrived within {timeout:g} s"
            raise TimeoutError(msg)
        # The last PUBACK may trail the last delivery; wait for it so round trips start clean.
        if not acked_all.wait(_CONNECT_TIMEOUT_S):
            msg = f"throughput: {self.acks.count} of {n} publishes acknowledged"
            raise TimeoutError(msg)
        seconds = self.sink.last_arrival - started
        return {
            "messages": n,
            "received": self.sink.count,
            "throughput_msg_s": round(n / seconds, 1),
            "seconds": round(seconds, 3),
            "publish_acked_s": round(self.acks.last - started, 3),
            "publish_failures": self.acks.failed,
        }

    def round_trips(self, *, first: int, count: int) -> list[float]:
        """Publish sequence numbers first.. one at a time; return each one's latency (s)."""
        for seq in range(first, first + count):
            arrived = self.sink.expect(seq + 1)
            payload = _HEADER.pack(seq, time.perf_counter()) + self.filler
            self.publisher.publish(self.topic, payload, qos=QOS)
            if not arrived.wait(_RTT_TIMEOUT_S):
                msg = f"round trip {seq - first}: no message within {_RTT_TIMEOUT_S:g} s"
                raise TimeoutError(msg)
        return list(self.sink.rtts)


def main() -> None:
    """Run the raw baseline alone against a running broker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--broker", required=True, help="mqtt://[user:password@]host:port")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(BrokerUrl.parse(args.broker), quick=args.quick)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
