"""HTTP ingestion against real brokers: a real uvicorn server on a free loopback port."""

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx
import pytest

from bus.transport import open_transport
from bus.url import BrokerUrl
from cloud.ingestion.server import Ingestion, running, serve
from contracts.events import (
    DeliveryCancellationRequested,
    DeliveryRequested,
    DeliveryStatusChanged,
)
from contracts.ids import Location, PackageSize
from contracts.states import DeliveryStage
from tests.brokers import TestBroker
from tests.builders import a_delivery_status, an_envelope
from tests.e2e.test_choreography import FULL_JOURNEY
from tests.probe import probing
from tests.system import Drone, near, running_system

pytestmark = pytest.mark.e2e

ROOT = "murmur/v1"
WAIT_S = 20
# The gateway's bound on a PUBACK (3 s) and some slack: a 503 never takes longer.
PUBLISH_BOUND_S = 5
_S = DeliveryStage


@dataclass
class Api:
    """A running ingestion service and an HTTP client for it."""

    service: Ingestion
    http: httpx.AsyncClient


@asynccontextmanager
async def api_for(broker: TestBroker) -> AsyncIterator[Api]:
    """The service on a free port, connected to `broker` before the block."""
    async with running(open_transport(broker.url), port=0) as service:
        async with asyncio.timeout(10):
            await service.gateway.connected.wait()
        base_url = f"http://127.0.0.1:{service.port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=WAIT_S) as http:
            yield Api(service, http)


@pytest.fixture
async def api(broker: TestBroker) -> AsyncIterator[Api]:
    async with api_for(broker) as running_api:
        yield running_api


def a_body(**overrides: Any) -> dict[str, Any]:
    return {
        "pickup": {"lat": 47.38, "lon": 8.545},
        "dropoff": {"lat": 47.374, "lon": 8.55},
        "weight_kg": 1.5,
        "size": "medium",
        "deadline": "2030-01-01T12:00:00Z",
        "tag": "fragile",
        "owner_id": "shop-42",
        **overrides,
    }


@dataclass
class SseEvent:
    event: str = "message"
    id: str | None = None
    data: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads("\n".join(self.data))


async def sse_events(response: httpx.Response) -> AsyncGenerator[SseEvent, None]:
    """The events of a text/event-stream body, as the HTML spec parses them (no retry)."""
    current = SseEvent()
    async for line in response.aiter_lines():
        if not line:
            if current.data:
                yield current
            current = SseEvent()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            current.event = value
        elif name == "id":
            current.id = value
        elif name == "data":
            current.data.append(value)


async def publish_statuses(broker: TestBroker, *statuses: DeliveryStatusChanged) -> None:
    """Publish status changes as the Delivery service does: QoS 1, retained, in order.

    (`tests.probe.publish_events` does not retain.)
    """
    async with broker.client() as client:
        for status in statuses:
            payload = an_envelope(status).to_json()
            await client.publish(status.resolved_topic(ROOT), payload, qos=1, retain=True)


async def all_events(response: httpx.Response) -> list[SseEvent]:
    """Every event until the server ends the stream."""
    return [event async for event in sse_events(response)]


async def test_a_request_is_answered_202_once_the_broker_has_it_and_a_retry_is_the_same_event(
    broker: TestBroker, api: Api
) -> None:
    async with probing(broker.url, [f"{ROOT}/deliveries/+/requested"]) as probe:
        response = await api.http.post("/deliveries", json=a_body(delivery_id="order-1001"))
        assert response.status_code == 202, response.text
        assert response.json() == {
            "delivery_id": "order-1001",
            "status_url": "/deliveries/order-1001",
        }
        assert response.headers["location"] == "/deliveries/order-1001"
        [request] = await probe.wait_for(DeliveryRequested)
        assert request.delivery_id == "order-1001"
        assert request.owner_id == "shop-42"
        assert request.pickup == Location(latitude=47.38, longitude=8.545)
        assert request.dropoff == Location(latitude=47.374, longitude=8.55)
        assert request.deadline == datetime(2030, 1, 1, 12, tzinfo=UTC)
        assert request.package.weight_kg == 1.5
        assert request.package.size is PackageSize.MEDIUM
        assert request.package.tag == "fragile"

        retry = await api.http.post("/deliveries", json=a_body(delivery_id="order-1001"))
        assert retry.status_code == 202
        assert retry.json() == response.json()
        await probe.wait_for(DeliveryRequested, count=2)
        first, second = (e for e in probe.seen if isinstance(e.data, DeliveryRequested))
        # The same event id: every consumer's inbox applies it once.
        assert second.id == first.id
        assert second.data == first.data
        assert first.correlationid == "order-1001"

        fresh = [await api.http.post("/deliveries", json=a_body()) for _ in range(2)]
        ids = [r.json()["delivery_id"] for r in fresh]
        assert all(r.status_code == 202 for r in fresh)
        assert len(set(ids)) == 2
        assert "order-1001" not in ids
        await probe.wait_for(DeliveryRequested, lambda r: r.delivery_id in ids, count=2)


async def test_bad_input_is_422_naming_the_field_and_nothing_is_published(
    broker: TestBroker, api: Api
) -> None:
    bodies: list[tuple[dict[str, Any], list[str]]] = [
        (a_body(weight_kg=-1), ["body", "weight_kg"]),
        (a_body(weight_kg="1.5"), ["body", "weight_kg"]),
        (a_body(pickup={"lat": 200, "lon": 8.5}), ["body", "pickup", "lat"]),
        (a_body(size="huge"), ["body", "size"]),
        (a_body(deadline="2030-01-01T12:00:00"), ["body", "deadline"]),
        (a_body(deadline=1_900_000_000), ["body", "deadline"]),
        (a_body(tag="x" * 65), ["body", "tag"]),
        (a_body(owner_id="shop/42"), ["body", "owner_id"]),
        (a_body(delivery_id="a+b"), ["body", "delivery_id"]),
        ({k: v for k, v in a_body().items() if k != "dropoff"}, ["body", "dropoff"]),
    ]
    async with probing(broker.url, [f"{ROOT}/deliveries/#"]) as probe:
        for body, loc in bodies:
            response = await api.http.post("/deliveries", json=body)
            assert response.status_code == 422, (body, response.text)
            assert loc in [error["loc"] for error in response.json()["detail"]], response.text

        # Python's JSON parser takes NaN; the answer is still a 422, not a 500.
        raw = json.dumps(a_body()).replace("47.38", "NaN").encode()
        response = await api.http.post(
            "/deliveries", content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "pickup", "lat"]

        for method, path in [
            ("GET", "/deliveries/a.b"),
            ("DELETE", "/deliveries/a.b"),
            ("GET", "/deliveries/a.b/events"),
        ]:
            response = await api.http.request(method, path)
            assert response.status_code == 422, (method, path)
            assert response.json()["detail"][0]["loc"] == ["path", "delivery_id"]

        # Published in order on one connection: if this one is the first seen, none was before.
        good = await api.http.post("/deliveries", json=a_body(delivery_id="good-one"))
        assert good.status_code == 202
        await probe.wait_for(DeliveryRequested)
    assert [e.data.delivery_id for e in probe.seen] == ["good-one"]


async def test_while_the_broker_is_down_writes_answer_503_and_202_again_once_it_is_back(
    broker: TestBroker, api: Api
) -> None:
    gateway = api.service.gateway
    await broker.stop()
    async with asyncio.timeout(PUBLISH_BOUND_S):  # whether or not the loss was noticed yet
        response = await api.http.post("/deliveries", json=a_body(delivery_id="while-down"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["detail"].startswith("broker unavailable")

    async with asyncio.timeout(10):
        await gateway.disconnected.wait()
    async with asyncio.timeout(1):  # known to be down: answered at once, not after a bound
        post = await api.http.post("/deliveries", json=a_body(delivery_id="while-down"))
        delete = await api.http.delete("/deliveries/while-down")
    assert (post.status_code, delete.status_code) == (503, 503)

    await broker.start()
    async with asyncio.timeout(10):
        await gateway.connected.wait()
    async with probing(broker.url, [f"{ROOT}/deliveries/+/requested"]) as probe:
        response = await api.http.post("/deliveries", json=a_body(delivery_id="after-restart"))
        assert response.status_code == 202, response.text
        [request] = await probe.wait_for(DeliveryRequested)
    assert request.delivery_id == "after-restart"


class StallingProxy:
    """Forwards loopback TCP to the broker; once `stalled`, swallows what the client sends.

    The connection stays up, so nothing tells the client: its publish is simply never
    acknowledged, as on a link that went silent.
    """

    def __init__(self, target: BrokerUrl) -> None:
        self._target = target
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stalled = False
        self.url = target

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = BrokerUrl(
            "127.0.0.1", port, username=self._target.username, password=self._target.password
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self._target.host, self._target.port)
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, upstream=True)),
            asyncio.create_task(self._pipe(up_reader, writer, upstream=False)),
        ):
            self._tasks.add(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if upstream and self.stalled:
                    continue
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()


async def test_a_publish_the_broker_does_not_acknowledge_within_the_bound_is_a_503(
    broker: TestBroker,
) -> None:
    async with (
        StallingProxy(BrokerUrl.parse(broker.url)) as proxy,
        running(open_transport(proxy.url), port=0, publish_timeout_s=0.5) as service,
    ):
        async with asyncio.timeout(10):
            await service.gateway.connected.wait()
        base_url = f"http://127.0.0.1:{service.port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=WAIT_S) as http:
            proxy.stalled = True
            async with asyncio.timeout(PUBLISH_BOUND_S):
                response = await http.post("/deliveries", json=a_body(delivery_id="unacked"))
    assert response.status_code == 503
    assert "no acknowledgement from the broker within 0.5 s" in response.json()["detail"]
    assert response.headers["retry-after"] == "2"


async def test_get_answers_the_newest_retained_status_and_404_for_an_unknown_delivery(
    broker: TestBroker,
) -> None:
    # Retained before the service starts: it learns the status from the replay on subscribing.
    scheduled = a_delivery_status(delivery_id="del-known", stage=_S.SCHEDULED, version=3)
    await publish_statuses(broker, scheduled)
    async with api_for(broker) as api:
        unknown = await api.http.get("/deliveries/del-unknown")
        assert unknown.status_code == 404
        assert "del-unknown" in unknown.json()["detail"]

        async with (
            asyncio.timeout(WAIT_S),
            api.http.stream("GET", "/deliveries/del-known/events") as stream,
            aclosing(sse_events(stream)) as events,
        ):
            first = await anext(events)  # the replayed status reached the service
            assert first.json() == scheduled.model_dump(mode="json", exclude_none=True)
            response = await api.http.get("/deliveries/del-known")
            assert response.status_code == 200
            assert response.json() == {
                "delivery_id": "del-known",
                "stage": "Scheduled",
                "version": 3,
                "drone_id": scheduled.drone_id,
                "job_id": scheduled.job_id,
            }

            stale = a_delivery_status(delivery_id="del-known", stage=_S.REQUESTED, version=2)
            newer = a_delivery_status(delivery_id="del-known", stage=_S.PICKED_UP, version=4)
            await publish_statuses(broker, stale, newer)
            following = await anext(events)
        assert following.id == "4"  # the stale version 2 is skipped
        response = await api.http.get("/deliveries/del-known")
        assert response.json()["stage"] == "PickedUp"
        assert response.json()["version"] == 4


async def test_events_stream_every_status_change_in_order_and_end_at_a_terminal_stage(
    broker: TestBroker, api: Api
) -> None:
    statuses = [
        a_delivery_status(delivery_id="del-sse", stage=stage, version=version)
        for version, stage in enumerate(FULL_JOURNEY, start=1)
    ]
    async with api.http.stream("GET", "/deliveries/del-sse/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        await publish_statuses(broker, *statuses)
        async with asyncio.timeout(WAIT_S):
            events = await all_events(stream)  # returns only because the server ends it
    assert [e.event for e in events] == ["status"] * len(FULL_JOURNEY)
    assert [e.id for e in events] == [str(v) for v in range(1, len(FULL_JOURNEY) + 1)]
    assert [e.json()["stage"] for e in events] == FULL_JOURNEY

    # Reconnecting with the last id seen: the terminal status ends the stream at once.
    async with asyncio.timeout(WAIT_S):
        again = await api.http.get("/deliveries/del-sse/events", headers={"Last-Event-ID": "6"})
    assert again.status_code == 200
    assert again.text == ""
    async with asyncio.timeout(WAIT_S):
        resumed = await api.http.get("/deliveries/del-sse/events", headers={"Last-Event-ID": "2"})
    # Only the current status is kept: a resumed stream gets it, not the versions in between.
    assert [e.id for e in await all_events(resumed)] == ["6"]


async def test_delete_publishes_a_cancellation_request_once_the_broker_has_it(
    broker: TestBroker, api: Api
) -> None:
    async with probing(broker.url, [f"{ROOT}/deliveries/+/cancel-requested"]) as probe:
        response = await api.http.delete(
            "/deliveries/del-cancel", params={"reason": "changed my mind"}
        )
        assert response.status_code == 202, response.text
        assert response.json() == {
            "delivery_id": "del-cancel",
            "status_url": "/deliveries/del-cancel",
        }
        assert response.headers["location"] == "/deliveries/del-cancel"
        [cancel] = await probe.wait_for(DeliveryCancellationRequested)
    assert cancel == DeliveryCancellationRequested(
        delivery_id="del-cancel", reason="changed my mind"
    )
    [envelope] = probe.seen
    assert envelope.source == "/cloud/ingestion"
    assert envelope.correlationid == "del-cancel"


async def test_serve_reports_its_port_publishes_openapi_and_ends_open_streams_when_cancelled(
    broker: TestBroker,
) -> None:
    ports: asyncio.Queue[int] = asyncio.Queue()
    task = asyncio.create_task(serve(open_transport(broker.url), port=0, on_ready=ports.put_nowait))
    try:
        async with asyncio.timeout(10):
            port = await ports.get()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=WAIT_S) as http:
            openapi = (await http.get("/openapi.json")).json()
            assert set(openapi["paths"]) == {
                "/deliveries",
                "/deliveries/{delivery_id}",
                "/deliveries/{delivery_id}/events",
            }
            lat = openapi["components"]["schemas"]["Position"]["properties"]["lat"]
            assert (lat["minimum"], lat["maximum"]) == (-90, 90)
            assert (await http.get("/docs")).status_code == 200

            async with http.stream("GET", "/deliveries/never-known/events") as stream:
                assert stream.status_code == 200
                task.cancel()
                async with asyncio.timeout(10):
                    assert await all_events(stream) == []  # ended by the server, not by us
        async with asyncio.timeout(10):
            with suppress(asyncio.CancelledError):
                await task
        assert task.cancelled()
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_a_posted_request_is_delivered_by_the_running_system_as_the_stream_shows(
    broker: TestBroker, api: Api, tmp_path: Path
) -> None:
    pickup, dropoff = near(600, 300), near(1200, -300)
    body = a_body(
        pickup={"lat": pickup.latitude, "lon": pickup.longitude},
        dropoff={"lat": dropoff.latitude, "lon": dropoff.longitude},
        weight_kg=1.0,
        deadline=None,
        delivery_id="http-delivery",
    )
    async with (
        running_system(broker.url, tmp_path, {"d-001": Drone()}),
        api.http.stream("GET", "/deliveries/http-delivery/events") as stream,
    ):
        response = await api.http.post("/deliveries", json=body)
        assert response.status_code == 202, response.text
        async with asyncio.timeout(60):
            events = await all_events(stream)
    stages: list[str] = []
    for event in events:
        stage = event.json()["stage"]
        if not stages or stages[-1] != stage:
            stages.append(stage)
    assert stages == FULL_JOURNEY
    versions = [int(e.id or -1) for e in events]
    assert versions == sorted(set(versions))
