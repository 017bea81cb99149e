"""Fuzzing: whatever arrives on a subscribed topic, a component records an outcome and goes on.

For every component (the three services and a drone agent) and every event type it subscribes
to, hypothesis sends on that type's topic: random bytes, random JSON, and real events with one
thing broken (a field of the wrong type, a boundary number, a huge string, a missing attribute,
another specversion or type version). Each input must end as handled or as a dead letter with a
decode reason — never an exception out of the bus, never `handler_failed` (a handler crashing
on input the decoder let through) — and the component must still handle a good event afterwards.

`FUZZ_EXAMPLES` sets the inputs per component: 150 in CI, `scripts/fuzz` runs 2,500 (10,000 in
all). The path is the bus's own `receive`, the one every MQTT message takes after the socket.
"""

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.bus import Bus
from bus.memory_transport import MemoryBroker
from bus.url import BrokerUrl
from cloud.services import SERVICE_NAMES, build_service
from contracts import Event
from contracts.topics import DEFAULT_ROOT
from drone_agent.sim_adapter import SimFlightController
from drone_agent.wiring import FleetConfig, build_agent
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import ManualClock
from tests.builders import DRONE, HOME, a_delivery_request, an_envelope, an_example, wire_dict

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_odd_values = (
    _json
    | st.text(
        min_size=1_000, max_size=70_000
    )  # past the field limits, and the 64 KiB payload limit
    | st.sampled_from([0, -1, 2**63, -(2**63), 1e308, -1e308, "", " ", "\x00", "../..", "+", "#"])
)


@st.composite
def broken_event(draw: st.DrawFn, event: Event) -> bytes:
    """A real envelope of `event` with one thing broken."""
    wire = wire_dict(an_envelope(event))
    how = draw(st.sampled_from(["field", "attribute", "drop", "specversion", "type", "extra"]))
    if how == "field" and wire["data"]:
        wire["data"][draw(st.sampled_from(sorted(wire["data"])))] = draw(_odd_values)
    elif how == "attribute":
        wire[draw(st.sampled_from(sorted(wire)))] = draw(_odd_values)
    elif how == "drop":
        del wire[draw(st.sampled_from(sorted(wire)))]
    elif how == "specversion":
        wire["specversion"] = draw(st.sampled_from(["0.3", "1", "2.0", ""]))
    elif how == "type":
        wire["type"] = wire["type"].rsplit(".", 1)[0] + draw(st.sampled_from([".v2", ".v0", ""]))
    else:
        wire["data"][draw(st.text(max_size=12))] = draw(_odd_values)
    return json.dumps(wire).encode()


def payloads(event: Event) -> st.SearchStrategy[bytes]:
    """Mostly real events with one thing broken: they get past the first checks."""
    return st.sampled_from(["bytes", "json", "broken", "broken", "broken"]).flatmap(
        lambda kind: {
            "bytes": st.binary(max_size=512),
            "json": _json.map(lambda value: json.dumps(value).encode()),
            "broken": broken_event(event),
        }[kind]
    )


def component(name: str, tmp_path: Path) -> Bus:
    clock = ManualClock()
    if name in SERVICE_NAMES:
        transport = MemoryBroker().transport()  # never connected: inputs go straight in
        return build_service(
            name, transport=transport, db_path=tmp_path / f"{name}.db", clock=clock
        ).bus
    config = FleetConfig(broker=BrokerUrl("127.0.0.1", 1883), state_dir=tmp_path / "drones")
    fc = SimFlightController(SimVehicle(vehicle_id=DRONE, home=HOME), clock)
    return build_agent(config, DRONE, fc=fc, clock=clock, transport=MemoryBroker().transport()).bus


def subscribed(bus: Bus) -> Iterator[Event]:
    """One example of each event type the component handles (on its own topic)."""
    for event_cls in bus.subscriptions:
        yield an_example(event_cls)


def crashed(bus: Bus) -> list[tuple[str, str]]:
    """(topic, detail) of every input a handler failed on."""
    query = "SELECT topic, detail FROM bus_dead_letters WHERE reason = 'handler_failed'"
    return [(str(topic), str(detail)) for topic, detail in bus.db.execute(query).fetchall()]


def outcomes(bus: Bus) -> int:
    s = bus.stats
    return s.handled + s.dead_letters + s.duplicates + s.ignored


@pytest.mark.parametrize("name", [*SERVICE_NAMES, "agent"])
def test_any_input_on_any_subscribed_topic_ends_handled_or_dead_lettered(
    name: str, tmp_path: Path
) -> None:
    bus = component(name, tmp_path)
    events = list(subscribed(bus))
    loop = asyncio.new_event_loop()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def one_input(data: st.DataObject) -> None:
        event = data.draw(st.sampled_from(events))
        payload = data.draw(payloads(event))
        before = outcomes(bus)
        loop.run_until_complete(bus.receive(event.resolved_topic(DEFAULT_ROOT), payload))
        assert outcomes(bus) > before, "no outcome recorded"
        assert not crashed(bus), "a handler raised on input the decoder let through"

    try:
        one_input()
        # Still alive: a good event is handled as ever.
        handled = bus.stats.handled
        good = an_example(type(events[0])) if name == "agent" else a_delivery_request()
        envelope = an_envelope(good)
        topic = good.resolved_topic(DEFAULT_ROOT)
        loop.run_until_complete(bus.receive(topic, envelope.to_json()))
        assert bus.stats.handled == handled + 1
    finally:
        loop.close()
