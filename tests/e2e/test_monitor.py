"""The console against a running system: one frame from the topics alone."""

import asyncio
import contextlib
import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from bus.transport import open_transport
from cloud.monitor import Batch, watch
from cloud.monitor.view import Liveness
from cloud.monitor.watch import SETTLE_MAX_S
from contracts import Envelope, Event
from contracts.events import DeliveryRequested, DeliveryStatusChanged, Link
from contracts.requests import delivery_request
from contracts.states import DeliveryStage
from tests.brokers import TestBroker
from tests.builders import a_drone_status, an_envelope
from tests.e2e.test_cli import murmur
from tests.e2e.test_cli_cloud import finished
from tests.probe import probing, publish_events
from tests.system import ROOT, Drone, near, running_system

pytestmark = pytest.mark.e2e

WAIT_S = 30
SERVICES = ("package", "scheduler", "delivery")


def row_of(text: str, first_cell: str) -> str:
    """The one table row whose first cell is `first_cell`."""
    [line] = [line for line in text.splitlines() if line.split()[:1] == [first_cell]]
    return line


def delivered(delivery_id: str) -> Callable[[DeliveryStatusChanged], bool]:
    return lambda s: s.delivery_id == delivery_id and s.stage is DeliveryStage.DELIVERED


async def test_one_frame_shows_every_drone_and_delivery_with_its_stage(
    broker: TestBroker, tmp_path: Path
) -> None:
    drones = {"d-1": Drone(near(0, 0)), "d-2": Drone(near(-300, 300))}
    requests: list[DeliveryRequested] = [
        delivery_request(pickup=near(600, 300), dropoff=near(1200, -300), weight_kg=1.0),
        delivery_request(pickup=near(-500, 200), dropoff=near(-900, 700), weight_kg=0.5),
    ]
    console = Console(record=True, width=140, color_system=None)
    async with (
        probing(broker.url, [f"{ROOT}/deliveries/+/status"]) as probe,
        running_system(broker.url, tmp_path, drones),
    ):
        await publish_events(
            broker.url,
            [
                Envelope[Event].new(r, source="/clients/test", correlationid=r.delivery_id)
                for r in requests
            ],
        )
        for request in requests:
            await probe.wait_for(
                DeliveryStatusChanged, delivered(request.delivery_id), timeout=WAIT_S
            )
        view = await watch(
            open_transport(broker.url), once=True, console=console, batch=Batch(len(requests))
        )
        command = await murmur("monitor", "--broker", broker.url, "--once")
        printed, err = await finished(command, timeout=30)
        assert command.returncode == 0, err

    for drone_id in drones:  # the command prints the same frame
        assert "online" in row_of(printed, drone_id)
    for request in requests:
        assert "Delivered" in row_of(printed, request.delivery_id)
    text = console.export_text()
    for drone_id in drones:
        assert "online" in row_of(text, drone_id)
        assert view.liveness(view.drones[drone_id], view.started or 0.0) is Liveness.ONLINE
    for request in requests:
        assert "Delivered" in row_of(text, request.delivery_id)
    assert f"{len(requests)}/{len(requests)} finished" in text
    assert {name: s.link for name, s in view.services.items()} == dict.fromkeys(
        SERVICES, Link.ONLINE
    )
    assert view.dlq_count == 0


async def test_an_empty_broker_settles_after_the_quiet_period(broker: TestBroker) -> None:
    console = Console(record=True, width=100, color_system=None)
    started = time.monotonic()

    view = await watch(open_transport(broker.url), once=True, console=console, settle_s=0.2)

    assert time.monotonic() - started < SETTLE_MAX_S
    assert view.drones == {}
    assert view.deliveries == {}
    assert "no drones yet" in console.export_text()


async def publish_retained(broker: TestBroker, data: Event) -> None:
    async with broker.client() as client:
        await client.publish(data.resolved_topic(), an_envelope(data).to_json(), qos=1, retain=True)


class Screen(io.StringIO):
    """A terminal that tells when something was drawn, so a test waits on it, not on time."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn = asyncio.Event()

    def write(self, text: str) -> int:
        self.drawn.set()
        return super().write(text)

    async def shows(self, needle: str, *, timeout: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout):
            while needle not in self.getvalue():
                self.drawn.clear()
                await self.drawn.wait()


async def test_the_live_console_redraws_and_survives_a_broker_restart(
    broker: TestBroker,
) -> None:
    screen = Screen()
    console = Console(file=screen, force_terminal=True, width=120, height=50)
    console_task = asyncio.create_task(
        watch(open_transport(broker.url), console=console, refresh_hz=20)
    )
    try:
        await publish_retained(broker, a_drone_status(drone_id="d-before"))
        await screen.shows("d-before")
        await broker.restart()
        await screen.shows("monitor lost the broker")
        # Retained: the console may not have resubscribed yet.
        await publish_retained(broker, a_drone_status(drone_id="d-after"))
        await screen.shows("d-after")
    finally:
        console_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await console_task
