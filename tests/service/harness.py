"""Service tests' harness: components on a memory broker, and a peer that plays everyone else.

A component (a service from `build_service`, or a drone agent) runs its real `run()` as a task
on a `bus.memory_transport.MemoryBroker`; a `Peer` is a plain `bus.client` client on the same
broker. It publishes events as their producers do (each with the CloudEvents `source` its
producer must carry, `tests.builders.source_of`) and records what it subscribed to, so a test
waits for the next event it expects under a timeout, never for a fixed time.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bus.bus import Bus
from bus.client import Client, connect
from bus.memory_transport import MemoryBroker
from bus.store import open_database
from bus.transport import Outgoing
from cloud.services import CloudSettings, Service, build_service
from contracts import Envelope, Event
from contracts.ids import Location
from drone_agent.service import DroneAgent, drone_presence
from drone_agent.settings import AgentSettings
from drone_agent.sim_adapter import SimFlightController, TickRouter
from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock, ManualClock
from flight_model.energy import EnergyModel
from tests.builders import an_envelope

E = TypeVar("E", bound=Event)
WAIT_S = 10.0
"""Real seconds any one expected event may take: far more than it does, even on a busy host."""


class Component(Protocol):
    """A service or a drone agent: one bus, and a `run()` that serves until cancelled."""

    bus: Bus

    async def run(self) -> None:
        """Serve until cancelled."""


C = TypeVar("C", bound=Component)


def _anything(_: object) -> bool:
    return True


class Peer:
    """A client on the broker: publishes as each event's producer, records what it hears."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.seen: list[Envelope[Any]] = []
        """Every event heard, in arrival order."""
        self._taken: set[int] = set()
        self._changed = asyncio.Condition()

    async def listen(self, *events: type[Event], **params: str) -> None:
        """Subscribe to these event types (narrowed by `params`, e.g. `drone_id="d-1"`)."""
        await self.client.subscribe(*events, **params)

    async def send(self, *events: Event | Envelope[Any]) -> list[Envelope[Any]]:
        """Publish each event as its producer would, in order; an envelope goes as it is.

        Sending the same envelope twice is what a redelivery looks like: the same bytes, the
        same event id.
        """
        sent = []
        for each in events:
            envelope = each if isinstance(each, Envelope) else an_envelope(each)
            data = envelope.data
            await self.client.connection.publish(
                Outgoing(
                    data.resolved_topic(self.client.root),
                    envelope.to_json(),
                    data.qos,
                    data.retained,
                )
            )
            sent.append(envelope)
        return sent

    async def next(
        self,
        event_cls: type[E],
        where: Callable[[E], bool] = _anything,
        *,
        timeout_s: float = WAIT_S,
    ) -> Envelope[E]:
        """The first event of `event_cls` matching `where` not returned before; waits for it."""
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                found = await self._changed.wait_for(lambda: self._first_untaken(event_cls, where))
        except TimeoutError:
            heard = [e.type for e in self.seen]
            msg = f"no {event_cls.__name__} as expected within {timeout_s:g} s; heard {heard}"
            raise AssertionError(msg) from None
        assert found is not None  # wait_for returns only once the predicate holds
        index, envelope = found
        self._taken.add(index)
        return envelope

    def heard(self, event_cls: type[E], where: Callable[[E], bool] = _anything) -> list[E]:
        """The data of every event of `event_cls` matching `where` heard so far."""
        return [e.data for e in self.seen if isinstance(e.data, event_cls) and where(e.data)]

    def _first_untaken(
        self, event_cls: type[E], where: Callable[[E], bool]
    ) -> tuple[int, Envelope[E]] | None:
        for index, envelope in enumerate(self.seen):
            data = envelope.data
            if index not in self._taken and isinstance(data, event_cls) and where(data):
                return index, envelope
        return None

    async def _record(self) -> None:
        async for envelope in self.client.events():
            self.seen.append(envelope)
            async with self._changed:
                self._changed.notify_all()


@asynccontextmanager
async def a_peer(broker: MemoryBroker) -> AsyncIterator[Peer]:
    """A peer connected to `broker` for the duration of the block."""
    async with connect(broker.transport(), name="peer") as client:
        peer = Peer(client)
        recording = asyncio.create_task(peer._record(), name="peer.record")
        try:
            yield peer
        finally:
            recording.cancel()
            with suppress(asyncio.CancelledError):
                await recording


@asynccontextmanager
async def running(component: C) -> AsyncIterator[C]:
    """`component.run()` as a task, connected (subscribed, presence sent) before the block."""
    task = asyncio.create_task(component.run(), name=f"{component.bus.component}.run")
    connected = asyncio.create_task(component.bus.connected.wait())
    try:
        async with asyncio.timeout(WAIT_S):
            await asyncio.wait({task, connected}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            await task  # it ended before connecting: raise what ended it
            raise AssertionError(f"{component.bus.component} stopped before connecting")
        yield component
    finally:
        connected.cancel()
        task.cancel()
        # A component that crashed during the test raises here, failing it.
        with suppress(asyncio.CancelledError):
            await task


def a_service(
    broker: MemoryBroker,
    name: str,
    tmp_path: Path,
    *,
    clock: Clock | None = None,
    settings: CloudSettings | None = None,
) -> Service:
    """The service called `name` as `murmur service` wires it, on `broker`, not yet running."""
    return build_service(
        name,
        transport=broker.transport(),
        db_path=tmp_path / f"{name}.db",
        clock=clock or ManualClock(),
        settings=settings,
    )


def an_agent(
    broker: MemoryBroker,
    drone_id: str,
    tmp_path: Path,
    *,
    home: Location,
    clock: Clock,
    router: TickRouter,
    failures: list[Failure] | None = None,
    telemetry_hz: float = 1.0,
) -> DroneAgent:
    """A drone agent on `broker`, flying a simulated vehicle stepped through `router`.

    Wired as `drone_agent.wiring.build_agent` wires it (client id, source, presence, its own
    database), without the broker URL and credentials of a `FleetConfig` it would not use.
    """
    vehicle = SimVehicle(
        vehicle_id=drone_id,
        home=home,
        failures=FailurePlan(failures, seed=7) if failures else None,
    )
    fc = SimFlightController(vehicle, clock)
    router.add(fc)
    bus = Bus(
        component=drone_id,
        transport=broker.transport(),
        db=open_database(tmp_path / f"{drone_id}.db"),
        client_id=f"drone-{drone_id}",
        source=f"/drones/{drone_id}",
        presence=drone_presence(drone_id),
    )
    settings = AgentSettings(drone_id=drone_id, telemetry_hz=telemetry_hz)
    return DroneAgent(settings=settings, bus=bus, fc=fc, clock=clock, energy=EnergyModel())


async def advance(clock: ManualClock, seconds: float) -> None:
    """Move time on, once the timers sleep on `clock`, and wait until they sleep again.

    Waiting first means a timer still busy with its last round does not miss the move;
    waiting after means that round, at the new time, has run and committed.
    """
    async with asyncio.timeout(WAIT_S):
        await clock.wait_for_sleepers()
        clock.advance(seconds)
        await clock.wait_for_sleepers()
