"""The AsyncAPI document: complete, consistent with the registry, every reference resolving."""

import json
import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from contracts import REGISTRY, Event, topics
from contracts.asyncapi import asyncapi_document
from contracts.producers import PRODUCERS, producer_of
from tests.builders import an_envelope, an_example, wire_dict

DOC = asyncapi_document()


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(ref: str, doc: dict[str, Any] = DOC) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _channel_of(cls: type[Event]) -> dict[str, Any]:
    channels: list[dict[str, Any]] = [
        c for c in DOC["channels"].values() if cls.__name__ in c["messages"]
    ]
    assert len(channels) == 1
    return channels[0]


def test_the_document_is_asyncapi_3_for_cloudevents_in_structured_json() -> None:
    assert DOC["asyncapi"] == "3.0.0"
    assert DOC["info"]["title"] == "Murmuration"
    assert DOC["info"]["version"] == version("murmuration")
    assert DOC["defaultContentType"] == "application/cloudevents+json"


def test_the_document_is_json() -> None:
    assert json.loads(json.dumps(DOC)) == DOC


def test_every_reference_resolves_inside_the_document() -> None:
    refs = set(_refs(DOC))

    assert refs
    for ref in refs:
        assert _resolve(ref) is not None


def test_every_shared_schema_is_used() -> None:
    used = {ref.removeprefix("#/components/schemas/") for ref in _refs(DOC)}

    assert set(DOC["components"]["schemas"]) <= used


def test_every_registered_type_is_one_message() -> None:
    messages = DOC["components"]["messages"]

    assert {m["x-cloudevents-type"] for m in messages.values()} == set(REGISTRY)
    assert len(messages) == len(REGISTRY)
    for name, message in messages.items():
        cls = REGISTRY[message["x-cloudevents-type"]]
        assert name == message["name"] == cls.__name__
        assert message["payload"]["properties"]["type"]["const"] == cls.type
        assert message["contentType"] == "application/cloudevents+json"
        assert message["summary"]


def test_every_channel_has_one_parameter_per_name_in_its_address() -> None:
    for channel in DOC["channels"].values():
        names = re.findall(r"\{([^}]+)\}", channel["address"])
        assert list(channel["parameters"]) == names


def test_a_parameter_states_the_id_pattern_or_its_values() -> None:
    offer = DOC["channels"]["drones_jobs_offer"]["parameters"]["drone_id"]
    command = DOC["channels"]["drones_cmd"]["parameters"]["command"]

    assert "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$" in offer["description"]
    assert offer["location"] == "$message.payload#/data/drone_id"
    assert command["enum"] == ["hold", "resume", "return", "land"]


@pytest.mark.parametrize("cls", list(REGISTRY.values()), ids=list(REGISTRY))
def test_each_type_is_on_the_channel_of_its_topic(cls: type[Event]) -> None:
    assert _channel_of(cls)["address"] == f"murmur/v1/{cls.topic}"


def test_the_job_updates_share_one_channel() -> None:
    update = DOC["channels"]["drones_jobs_update"]

    assert update["address"] == "murmur/v1/drones/{drone_id}/jobs/{job_id}/update"
    assert set(update["messages"]) == {
        "JobAccepted",
        "JobRejected",
        "JobProgressed",
        "JobSucceeded",
        "JobFailed",
        "JobCancellationRefused",
    }


def test_the_root_is_configurable() -> None:
    doc = asyncapi_document(root="fleet/eu")
    addresses = {c["address"] for c in doc["channels"].values()}

    assert addresses == {topics.join("fleet/eu", cls.topic) for cls in REGISTRY.values()}


def test_every_operation_sends_its_channels_own_messages() -> None:
    for operation in DOC["operations"].values():
        channel_ref = operation["channel"]["$ref"]
        channel = _resolve(channel_ref)
        assert operation["action"] == "send"
        assert operation["messages"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"{channel_ref}/messages/")
            assert message["$ref"].rsplit("/", 1)[1] in channel["messages"]


def test_every_message_is_sent_by_exactly_one_operation() -> None:
    sent = [
        m["$ref"].rsplit("/", 1)[1] for op in DOC["operations"].values() for m in op["messages"]
    ]

    assert sorted(sent) == sorted(DOC["components"]["messages"])


def test_each_operation_names_who_publishes_and_how() -> None:
    for operation in DOC["operations"].values():
        (tag,) = operation["tags"]
        assert tag["name"] in PRODUCERS
        classes = [
            DOC["components"]["messages"][m["$ref"].rsplit("/", 1)[1]]
            for m in operation["messages"]
        ]
        for message in classes:
            cls = REGISTRY[message["x-cloudevents-type"]]
            assert producer_of(cls.type) == tag["name"]
            assert operation["bindings"]["mqtt"]["qos"] == cls.qos
            assert operation["bindings"]["mqtt"]["retain"] is cls.retained


def test_who_publishes_what_follows_the_choreography() -> None:
    assert producer_of("murmur.delivery.requested.v1") == "client"
    assert producer_of("murmur.job.offered.v1") == "scheduler"
    assert producer_of("murmur.job.accepted.v1") == "agent"
    assert producer_of("murmur.drone.command.v1") == "operator"
    assert producer_of("murmur.drone.command_reply.v1") == "agent"
    assert producer_of("murmur.delivery.status_changed.v1") == "delivery"


def test_a_type_nobody_is_declared_to_publish_is_refused() -> None:
    with pytest.raises(LookupError, match=r"acme\.thing\.v1"):
        producer_of("acme.thing.v1")


def test_telemetry_is_qos_0_and_snapshots_are_retained() -> None:
    telemetry = DOC["operations"]["agent_sends_drones_telemetry"]["bindings"]["mqtt"]
    status = DOC["operations"]["delivery_sends_deliveries_status"]["bindings"]["mqtt"]

    assert (telemetry["qos"], telemetry["retain"]) == (0, False)
    assert (status["qos"], status["retain"]) == (1, True)


@pytest.mark.parametrize("cls", list(REGISTRY.values()), ids=list(REGISTRY))
def test_each_example_on_the_wire_has_what_its_schema_requires_and_nothing_it_does_not_name(
    cls: type[Event],
) -> None:
    """Test that the schema describes the real wire form (a shallow check, no validator)."""
    wire = wire_dict(an_envelope(an_example(cls), sequence=1, causationid="c-1"))
    payload = DOC["components"]["messages"][cls.__name__]["payload"]
    data = _resolve(payload["properties"]["data"]["$ref"])

    for schema, value in ((payload, wire), (data, wire["data"])):
        assert set(schema["required"]) <= set(value)
        assert set(value) <= set(schema["properties"])


def test_the_published_contract_page_names_every_topic_and_type() -> None:
    page = (Path(__file__).parents[2] / "docs" / "contract.md").read_text()

    for event_type, cls in REGISTRY.items():
        assert f"`{cls.topic}`" in page
        assert f"`{event_type.removeprefix('murmur.').removesuffix('.v1')}`" in page
