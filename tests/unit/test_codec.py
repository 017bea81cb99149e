"""Decoding: every refusal is one DecodeError whose kind and message say what is wrong."""

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import MAX_PAYLOAD_BYTES, REGISTRY, DecodeError, DecodeErrorKind, Event, decode
from contracts.topics import DEFAULT_ROOT
from tests.builders import (
    DELIVERY,
    DRONE,
    a_delivery_request,
    a_job_acceptance,
    a_job_offer,
    a_service_status,
    an_envelope,
    an_example,
    wire_bytes,
    wire_dict,
)

REQUESTED_TOPIC = f"murmur/v1/deliveries/{DELIVERY}/requested"


def _request_wire(**changes: Any) -> dict[str, Any]:
    return {**wire_dict(an_envelope(a_delivery_request())), **changes}


def _refusal(payload: bytes, topic: str = REQUESTED_TOPIC, **options: Any) -> DecodeError:
    with pytest.raises(DecodeError) as refused:
        decode(topic, payload, **options)
    return refused.value


def _without(wire: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in wire.items() if k not in names}


# One payload per kind, with words its message must contain.
CASES = [
    (
        DecodeErrorKind.TOO_LARGE,
        b" " * (MAX_PAYLOAD_BYTES + 1),
        f"the limit is {MAX_PAYLOAD_BYTES}",
    ),
    (DecodeErrorKind.NOT_JSON, b"{not json", "Expecting property name"),
    (DecodeErrorKind.NOT_CLOUDEVENT, wire_bytes([1, 2]), "not a JSON object"),
    (DecodeErrorKind.UNKNOWN_TYPE, wire_bytes(_request_wire(type="acme.x.v1")), "acme.x.v1"),
    (
        DecodeErrorKind.INVALID_FIELD,
        wire_bytes(_request_wire(data={**_request_wire()["data"], "owner_id": "a/b"})),
        "data.owner_id",
    ),
    (
        DecodeErrorKind.TOPIC_MISMATCH,
        an_envelope(a_delivery_request(delivery_id="del-other")).to_json(),
        "does not match",
    ),
]


@pytest.mark.parametrize(("kind", "payload", "words"), CASES, ids=[c[0].value for c in CASES])
def test_each_kind_of_refusal_says_what_is_wrong(
    kind: DecodeErrorKind, payload: bytes, words: str
) -> None:
    refused = _refusal(payload)

    assert refused.kind is kind
    assert words in refused.detail
    assert str(refused) == f"{kind.value}: {refused.detail}"


def test_every_kind_of_refusal_is_covered_above() -> None:
    covered = {case[0] for case in CASES} | {DecodeErrorKind.SOURCE_MISMATCH}  # tests below
    assert covered == set(DecodeErrorKind)


@pytest.mark.parametrize(
    ("data", "source"),
    [
        (a_job_acceptance(drone_id="d-7"), "/drones/d-8"),  # a drone speaking for another
        (a_job_acceptance(drone_id="d-7"), "/cloud/scheduler"),  # a service posing as a drone
        (a_job_offer(), "/drones/d-007"),  # a drone posing as the scheduler
        (a_service_status(service="delivery"), "/cloud/scheduler"),  # one service for another
    ],
)
def test_an_event_from_a_source_that_may_not_publish_it_is_refused(
    data: Event, source: str
) -> None:
    envelope = an_envelope(data, source=source)

    refused = _refusal(envelope.to_json(), topic=data.resolved_topic(DEFAULT_ROOT))

    assert refused.kind is DecodeErrorKind.SOURCE_MISMATCH
    assert f"not {source}" in refused.detail


def test_clients_and_operators_may_publish_from_any_source() -> None:
    request = an_envelope(a_delivery_request(), source="/clients/shop-42")

    assert decode(REQUESTED_TOPIC, request.to_json()).source == "/clients/shop-42"


def test_the_kinds_are_the_stable_dead_letter_reasons() -> None:
    assert [kind.value for kind in DecodeErrorKind] == [
        "too_large",
        "not_json",
        "not_cloudevent",
        "unknown_type",
        "invalid_field",
        "topic_mismatch",
        "source_mismatch",
    ]


def test_a_payload_at_the_size_limit_is_still_read() -> None:
    payload = an_envelope(a_delivery_request()).to_json()
    padded = payload + b" " * (MAX_PAYLOAD_BYTES - len(payload))

    assert decode(REQUESTED_TOPIC, padded).data == a_delivery_request()


def test_a_payload_over_the_limit_is_refused_before_it_is_parsed() -> None:
    refused = _refusal(b"[" * (MAX_PAYLOAD_BYTES + 1))

    assert refused.kind is DecodeErrorKind.TOO_LARGE
    assert f"{MAX_PAYLOAD_BYTES + 1} bytes" in refused.detail


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        json.dumps(_request_wire()).encode("utf-16"),
        b"\xef\xbb\xbf" + wire_bytes(_request_wire()),
        b"[" * 50_000,
    ],
    ids=["empty", "not-utf8", "utf16", "utf8-bom", "nested-too-deeply"],
)
def test_anything_but_plain_utf8_json_is_not_json(payload: bytes) -> None:
    assert _refusal(payload).kind is DecodeErrorKind.NOT_JSON


@pytest.mark.parametrize(
    ("wire", "words"),
    [
        (_without(_request_wire(), "id", "source"), "missing id, source"),
        (_request_wire(type=7), "missing type"),
        (_request_wire(specversion="0.3"), "specversion must be '1.0'"),
        ("just a string", "not a JSON object"),
    ],
    ids=["no-id-no-source", "type-not-a-string", "old-specversion", "a-string"],
)
def test_a_json_value_that_is_not_a_cloudevent_is_refused(wire: object, words: str) -> None:
    refused = _refusal(wire_bytes(wire))

    assert refused.kind is DecodeErrorKind.NOT_CLOUDEVENT
    assert words in refused.detail


def test_a_refusal_keeps_the_event_id_and_type_when_it_could_read_them() -> None:
    wire = _request_wire(id="evt-1", data={})

    refused = _refusal(wire_bytes(wire))

    assert refused.kind is DecodeErrorKind.INVALID_FIELD
    assert (refused.event_id, refused.event_type) == ("evt-1", "murmur.delivery.requested.v1")


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"time": "yesterday"}, "time"),
        ({"time": "2026-01-01T12:00:00"}, "time"),
        ({"sequence": -1}, "sequence"),
        ({"sequence": "7"}, "sequence"),
        ({"subject": "a.b"}, "subject"),
        ({"datacontenttype": "text/xml"}, "datacontenttype"),
        ({"data": None}, "data"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_an_invalid_attribute_is_named(change: dict[str, Any], path: str) -> None:
    refused = _refusal(wire_bytes(_request_wire(**change)))

    assert refused.kind is DecodeErrorKind.INVALID_FIELD
    assert refused.detail.startswith(f"invalid field {path}: ")


def test_a_package_weight_of_zero_is_named_by_its_full_path() -> None:
    wire = _request_wire()
    wire["data"]["package"]["weight_kg"] = 0

    refused = _refusal(wire_bytes(wire))

    assert refused.detail == "invalid field data.package.weight_kg: Input should be greater than 0"


def test_many_invalid_fields_are_summarised_after_five() -> None:
    refused = _refusal(wire_bytes(_request_wire(data={}, time="x", sequence=-1)))

    assert refused.kind is DecodeErrorKind.INVALID_FIELD
    assert refused.detail.count("invalid field") == 5
    assert refused.detail.endswith("; and 2 more")


def test_an_event_on_another_types_topic_is_refused() -> None:
    refused = _refusal(
        an_envelope(a_delivery_request()).to_json(), f"murmur/v1/drones/{DRONE}/state"
    )

    assert refused.kind is DecodeErrorKind.TOPIC_MISMATCH
    assert "belongs on murmur/v1/deliveries/{delivery_id}/requested" in refused.detail


def test_an_event_whose_fields_disagree_with_its_topic_is_refused() -> None:
    offer = an_envelope(a_job_offer(job_id="job-other"))

    refused = _refusal(offer.to_json(), a_job_offer().resolved_topic())

    assert refused.kind is DecodeErrorKind.TOPIC_MISMATCH
    assert "does not match the event's fields" in refused.detail


def test_an_event_whose_subject_disagrees_with_its_topic_is_refused() -> None:
    refused = _refusal(wire_bytes(_request_wire(subject="del-other")))

    assert refused.kind is DecodeErrorKind.TOPIC_MISMATCH
    assert f"subject 'del-other' is not '{DELIVERY}'" in refused.detail


def test_an_event_without_a_subject_is_read() -> None:
    wire = _without(_request_wire(), "subject")

    assert decode(REQUESTED_TOPIC, wire_bytes(wire)).subject is None


def test_an_event_is_read_under_the_root_it_is_told() -> None:
    payload = an_envelope(a_delivery_request()).to_json()
    topic = f"fleet/eu/deliveries/{DELIVERY}/requested"

    assert decode(topic, payload, root="fleet/eu").data == a_delivery_request()
    assert _refusal(payload, topic).kind is DecodeErrorKind.TOPIC_MISMATCH


# --- nothing but DecodeError -------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["1.0", "murmur.delivery.requested.v1", "", "a/b"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_TOPICS = st.sampled_from([REQUESTED_TOPIC, "", "#", "murmur/v1"]) | st.text(max_size=40)
_EXAMPLE_WIRES = [wire_dict(an_envelope(an_example(cls))) for cls in REGISTRY.values()]


def _decodes_or_refuses(topic: str, payload: bytes) -> None:
    """Any exception other than DecodeError escapes and fails the test."""
    with contextlib.suppress(DecodeError):
        decode(topic, payload)


@settings(deadline=None)
@given(payload=st.binary(max_size=512), topic=_TOPICS)
def test_arbitrary_bytes_raise_nothing_but_decode_error(payload: bytes, topic: str) -> None:
    _decodes_or_refuses(topic, payload)


@settings(deadline=None)
@given(value=_JSON, topic=_TOPICS)
def test_arbitrary_json_raises_nothing_but_decode_error(value: object, topic: str) -> None:
    _decodes_or_refuses(topic, wire_bytes(value))


@settings(deadline=None)
@given(
    wire=st.sampled_from(_EXAMPLE_WIRES),
    where=st.sampled_from(["envelope", "data"]),
    key=st.text(max_size=12) | st.sampled_from(["id", "time", "subject", "sequence", "drone_id"]),
    value=_JSON,
)
def test_a_real_event_with_one_arbitrary_value_raises_nothing_but_decode_error(
    wire: dict[str, Any], where: str, key: str, value: object
) -> None:
    changed = json.loads(json.dumps(wire))
    (changed if where == "envelope" else changed["data"])[key] = value
    topic = REGISTRY[wire["type"]].topic  # a template: rarely right, never a crash

    _decodes_or_refuses(topic, wire_bytes(changed))
    _decodes_or_refuses(_example_topic(wire), wire_bytes(changed))


def _example_topic(wire: dict[str, Any]) -> str:
    cls = REGISTRY[wire["type"]]
    return an_example(cls).resolved_topic()
