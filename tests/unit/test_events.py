"""The event models: what they accept, what they refuse, and how they are declared."""

from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from contracts import REGISTRY, DecodeError, DecodeErrorKind, Envelope, Event, decode
from contracts.ids import TopicId
from tests.builders import (
    DELIVERY,
    DRONE,
    EXAMPLES,
    JOB,
    a_delivery_request,
    a_drone_command,
    a_job_offer,
    a_location,
    a_package,
    a_telemetry_report,
    an_envelope,
    an_example,
    wire_bytes,
    wire_dict,
)

REQUESTED_TOPIC = f"murmur/v1/deliveries/{DELIVERY}/requested"


def _by_type() -> list[Any]:
    return [pytest.param(cls, id=event_type) for event_type, cls in REGISTRY.items()]


def test_every_registered_type_has_an_example_builder() -> None:
    assert set(REGISTRY.values()) - set(EXAMPLES) == set()


@pytest.mark.parametrize("cls", _by_type())
def test_each_event_round_trips_through_the_wire(cls: type[Event]) -> None:
    sent = an_envelope(an_example(cls), sequence=7, causationid="cause-1")

    received = decode(sent.data.resolved_topic(), sent.to_json())

    assert received == sent
    assert type(received.data) is cls


def test_the_wire_form_leaves_out_unset_optional_attributes() -> None:
    wire = wire_dict(an_envelope(a_delivery_request(), correlationid=None))

    assert "correlationid" not in wire
    assert "sequence" not in wire
    assert wire["specversion"] == "1.0"
    assert wire["datacontenttype"] == "application/json"


def test_a_new_envelope_takes_its_type_and_subject_from_the_event() -> None:
    envelope = Envelope.new(a_job_offer(), source="/cloud/scheduler")

    assert envelope.type == "murmur.job.offered.v1"
    assert envelope.subject == DRONE
    assert envelope.id


def test_an_event_caused_by_another_keeps_its_correlation_and_names_its_cause() -> None:
    request = an_envelope(a_delivery_request(), correlationid=DELIVERY)

    offer = Envelope.caused_by(request, a_job_offer(), source="/cloud/scheduler")

    assert offer.correlationid == DELIVERY
    assert offer.causationid == request.id
    assert offer.id != request.id


def test_an_event_is_published_on_its_resolved_topic_under_any_root() -> None:
    offer = a_job_offer()

    assert offer.resolved_topic() == f"murmur/v1/drones/{DRONE}/jobs/{JOB}/offer"
    assert offer.resolved_topic("fleet") == f"fleet/drones/{DRONE}/jobs/{JOB}/offer"


def test_an_enum_topic_parameter_fills_its_level_with_the_wire_value() -> None:
    assert a_drone_command().resolved_topic() == f"murmur/v1/drones/{DRONE}/cmd/hold"


def test_events_are_immutable() -> None:
    offer = a_job_offer()

    with pytest.raises(ValidationError, match="frozen"):
        offer.drone_id = "d-other"  # type: ignore[misc]


# --- ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("pickup", "latitude"), 91),
        (("pickup", "latitude"), -90.5),
        (("dropoff", "longitude"), -181),
        (("dropoff", "longitude"), 180.01),
        (("package", "weight_kg"), 0),
        (("package", "weight_kg"), -1),
        (("package", "weight_kg"), 101),
        (("package", "size"), "huge"),
        (("package", "size"), "Small"),
        (("deadline",), "2026-01-01T12:00:00"),
        (("owner_id",), 42),
    ],
    ids=lambda v: ".".join(v) if isinstance(v, tuple) else repr(v),
)
def test_a_value_out_of_range_is_refused_on_the_wire(path: tuple[str, ...], value: object) -> None:
    wire = wire_dict(an_envelope(a_delivery_request()))
    *parents, name = path
    target = wire["data"]
    for parent in parents:
        target = target[parent]
    target[name] = value

    with pytest.raises(DecodeError) as refused:
        decode(REQUESTED_TOPIC, wire_bytes(wire))

    assert refused.value.kind is DecodeErrorKind.INVALID_FIELD
    assert f"data.{'.'.join(path)}" in str(refused.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: a_location(latitude=91),
        lambda: a_location(longitude=-181),
        lambda: a_package(weight_kg=0),
        lambda: a_telemetry_report(battery_pct=100.1),
        lambda: a_telemetry_report(heading_deg=360),
    ],
)
def test_a_value_out_of_range_cannot_even_be_built(build: Callable[[], object]) -> None:
    with pytest.raises(ValidationError):
        build()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_json_has_no_nan_or_infinity_so_no_event_carries_one(value: float) -> None:
    with pytest.raises(ValidationError, match="finite number"):
        a_telemetry_report(climb_rate_mps=value)
    wire = wire_dict(an_envelope(a_telemetry_report()))
    wire["data"]["climb_rate_mps"] = value

    with pytest.raises(DecodeError, match=r"data\.climb_rate_mps"):
        decode(f"murmur/v1/drones/{DRONE}/telemetry", wire_bytes(wire))


@pytest.mark.parametrize(
    "bad_id",
    ["a/b", "a+b", "+", "a#", "#", "$SYS", "a$b", "a.b", "", " a", "a b", "-a", "x" * 65],
    ids=repr,
)
def test_an_id_that_would_not_fill_exactly_one_topic_level_is_refused(bad_id: str) -> None:
    with pytest.raises(ValidationError, match="delivery_id"):
        a_delivery_request(delivery_id=bad_id)


@pytest.mark.parametrize("good_id", ["d-007", "A1", "x" * 64, "0e8c7f0a-uuid_like-ID"])
def test_an_id_of_letters_digits_dashes_and_underscores_is_accepted(good_id: str) -> None:
    assert a_delivery_request(delivery_id=good_id).delivery_id == good_id


def test_an_id_is_refused_in_the_envelope_subject_too() -> None:
    with pytest.raises(ValidationError, match="subject"):
        Envelope[Any].model_validate(
            {**an_envelope(a_delivery_request()).model_dump(), "subject": "a/b"}
        )


# --- evolution ---------------------------------------------------------------------------------


def test_unknown_data_fields_and_attributes_are_ignored() -> None:
    sent = an_envelope(a_delivery_request())
    wire = wire_dict(sent)
    wire["data"]["colour"] = "red"
    wire["data"]["package"]["fragile"] = True
    wire["data"]["pickup"]["accuracy_m"] = 3.5
    wire["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    received = decode(REQUESTED_TOPIC, wire_bytes(wire))

    assert received == sent


def test_an_unknown_type_is_refused_even_with_valid_looking_data() -> None:
    wire = wire_dict(an_envelope(a_delivery_request()))
    wire["type"] = "murmur.delivery.requested.v2"

    with pytest.raises(DecodeError) as refused:
        decode(REQUESTED_TOPIC, wire_bytes(wire))

    assert refused.value.kind is DecodeErrorKind.UNKNOWN_TYPE
    assert "murmur.delivery.requested.v2" in str(refused.value)


def test_every_type_names_its_version() -> None:
    for event_type in REGISTRY:
        assert event_type.startswith("murmur.")
        assert event_type.rsplit(".", 1)[1] == "v1"


# --- declaring an event ------------------------------------------------------------------------


def test_a_topic_parameter_that_is_not_a_field_is_refused_at_declaration() -> None:
    before = dict(REGISTRY)

    with pytest.raises(TypeError, match=r"\{thing_id\} is not a field"):

        class _NoSuchField(Event):
            type: ClassVar[str] = "test.no_such_field.v1"
            topic: ClassVar[str] = "things/{thing_id}/happened"

            other_id: TopicId

    assert before == REGISTRY


@pytest.mark.parametrize(
    "template",
    [
        "things/x{thing_id}/happened",
        "things/+/{thing_id}",
        "things/{thing_id}/#",
        "things//{thing_id}",
    ],
)
def test_a_topic_template_whose_levels_are_not_whole_is_refused_at_declaration(
    template: str,
) -> None:
    before = dict(REGISTRY)

    with pytest.raises(TypeError, match="must be a literal or one"):

        class _BadTemplate(Event):
            type: ClassVar[str] = "test.bad_template.v1"
            topic: ClassVar[str] = template

            thing_id: TopicId

    assert before == REGISTRY


def test_a_topic_without_parameters_is_refused_because_it_has_no_subject() -> None:
    with pytest.raises(TypeError, match="no subject"):

        class _NoSubject(Event):
            type: ClassVar[str] = "test.no_subject.v1"
            topic: ClassVar[str] = "things/happened"


def test_a_type_without_a_topic_is_refused_at_declaration() -> None:
    with pytest.raises(TypeError, match="has no topic"):

        class _NoTopic(Event):
            type: ClassVar[str] = "test.no_topic.v1"


def test_a_type_already_registered_is_refused_at_declaration() -> None:
    before = dict(REGISTRY)

    with pytest.raises(TypeError, match="already used by"):

        class _Duplicate(Event):
            type: ClassVar[str] = "murmur.delivery.requested.v1"
            topic: ClassVar[str] = "deliveries/{delivery_id}/requested-again"

            delivery_id: TopicId

    assert before == REGISTRY


def test_a_declared_event_registers_itself_and_decodes() -> None:
    event_type = "test.thing_happened.v1"
    try:

        class ThingHappened(Event):
            type: ClassVar[str] = event_type
            topic: ClassVar[str] = "things/{thing_id}/happened"

            thing_id: TopicId

        assert REGISTRY[event_type] is ThingHappened
        sent = an_envelope(ThingHappened(thing_id="t-1"))
        assert decode("murmur/v1/things/t-1/happened", sent.to_json()) == sent
    finally:
        REGISTRY.pop(event_type, None)
