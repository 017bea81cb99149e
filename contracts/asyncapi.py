"""The published contract as an AsyncAPI 3.0.0 document, generated from the event registry.

Every payload is a CloudEvents 1.0 event in structured JSON mode, so each message's payload
schema is the envelope with `data` set to the event's own schema. Operations are written from
the producer's side: one `send` per channel and producer, tagged with who publishes.
"""

import inspect
import re
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic.json_schema import JsonSchemaValue, models_json_schema

from contracts import topics
from contracts.envelope import Envelope
from contracts.events import REGISTRY, Event
from contracts.producers import PRODUCERS, producer_of

CONTENT_TYPE = "application/cloudevents+json"
MQTT_BINDING_VERSION = "0.2.0"
_SCHEMAS = "#/components/schemas/"

_ENVELOPE_NOTES = {
    "id": "Unique per event; consumers deduplicate on it (the idempotency key).",
    "source": "URI-reference of the producer: /cloud/scheduler, /drones/d-007, /clients/...",
    "time": "When the event happened, RFC 3339 with an offset. Required here.",
    "subject": "The first topic parameter (the delivery, package, drone... the topic is about).",
    "correlationid": "Extension (String): the delivery id, on every event of one delivery.",
    "causationid": "Extension (String): the `id` of the event that caused this one.",
    "sequence": "Extension (Integer): per-producer order where it matters (telemetry, jobs).",
}

_RETAINED = "Retained: the broker keeps the last value and gives it to each new subscriber."
_DESCRIPTION = """\
Drone deliveries coordinated only by events over MQTT 3.1.1 (choreography, no orchestrator).

Every payload is one CloudEvents 1.0 event in structured JSON mode
(`application/cloudevents+json`, UTF-8); the event's own fields are in `data`
(`datacontenttype` `application/json`). Topics sit under the root `{root}`.

Readers are tolerant: unknown attributes and unknown `data` fields are ignored, known ones are
validated strictly. A breaking change is a new `type` version (`....v2`), published alongside
the old one. Each operation is a `send` by the producer named in its tag; any participant the
broker's ACL allows may subscribe. QoS and retain are in each operation's `mqtt` binding.
"""


def asyncapi_document(*, root: str = topics.DEFAULT_ROOT) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of every registered event, with topics under `root`."""
    events = list(REGISTRY.values())
    payloads, schemas = _schemas(events)
    by_template: dict[str, list[type[Event]]] = {}
    for cls in events:
        by_template.setdefault(cls.topic, []).append(cls)

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for template, classes in by_template.items():
        channel_id = _channel_id(template)
        fields = _data_fields(payloads[classes[0]], schemas)
        channels[channel_id] = _channel(template, classes, root=root, fields=fields)
        for producer in dict.fromkeys(producer_of(c.type) for c in classes):
            members = [c for c in classes if producer_of(c.type) == producer]
            operations[f"{producer}_sends_{channel_id}"] = _operation(channel_id, producer, members)

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Murmuration",
            "version": _package_version(),
            "description": _DESCRIPTION.format(root=root or "(no root)"),
            "license": {"name": "Apache-2.0"},
            "tags": [{"name": key, "description": text} for key, text in PRODUCERS.items()],
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": {cls.__name__: _message(cls, payloads[cls]) for cls in events},
            "schemas": schemas,
        },
    }


def _schemas(
    events: Iterable[type[Event]],
) -> tuple[dict[type[Event], JsonSchemaValue], dict[str, Any]]:
    """Each event's envelope schema, and the shared schemas its `$ref`s point into."""
    envelopes = {cls: Envelope[cls] for cls in events}  # type: ignore[valid-type]
    refs, top = models_json_schema(
        [(model, "validation") for model in envelopes.values()],
        ref_template=_SCHEMAS + "{model}",
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    payloads = {}
    for cls, model in envelopes.items():
        payload = schemas.pop(refs[model, "validation"]["$ref"].removeprefix(_SCHEMAS))
        payload["title"] = f"{cls.__name__} event"
        payload["description"] = f"A CloudEvents 1.0 event whose `data` is {cls.__name__}."
        payload["properties"]["type"] = {"const": cls.type, "type": "string"}
        for name, note in _ENVELOPE_NOTES.items():
            payload["properties"][name]["description"] = note
        payloads[cls] = payload
    return payloads, schemas


def _data_fields(payload: JsonSchemaValue, schemas: dict[str, Any]) -> dict[str, Any]:
    """The schema of each field of the event in `data`, with one `$ref` level resolved."""

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return schemas[ref.removeprefix(_SCHEMAS)] if ref else schema

    data = resolve(payload["properties"]["data"])
    return {name: resolve(field) for name, field in data["properties"].items()}


def _channel_id(template: str) -> str:
    return "_".join(level for level in template.split("/") if not level.startswith("{"))


def _channel(
    template: str, classes: list[type[Event]], *, root: str, fields: dict[str, Any]
) -> dict[str, Any]:
    retained = _agreed(classes, "retained", template)
    return {
        "address": topics.join(root, template),
        "description": _RETAINED if retained else "Events, not retained.",
        "parameters": {
            name: _parameter(fields[name], name) for name in topics.template_params(template)
        },
        "messages": {
            cls.__name__: {"$ref": f"#/components/messages/{cls.__name__}"} for cls in classes
        },
    }


def _parameter(field: dict[str, Any], name: str) -> dict[str, Any]:
    parameter: dict[str, Any] = {"location": f"$message.payload#/data/{name}"}
    if "enum" in field:
        parameter["description"] = f"`data.{name}`, one of the listed values."
        parameter["enum"] = [str(value) for value in field["enum"]]
    else:
        parameter["description"] = (
            f"`data.{name}`: one whole topic level matching `{field['pattern']}` "
            "(no `/`, `+`, `#`, `$` or `.`)."
        )
    return parameter


def _operation(channel_id: str, producer: str, classes: list[type[Event]]) -> dict[str, Any]:
    channel = f"#/channels/{channel_id}"
    names = ", ".join(cls.__name__ for cls in classes)
    return {
        "action": "send",
        "channel": {"$ref": channel},
        "summary": f"Published by {PRODUCERS[producer]}: {names}.",
        "tags": [{"name": producer}],
        "bindings": {
            "mqtt": {
                "qos": _agreed(classes, "qos", channel_id),
                "retain": _agreed(classes, "retained", channel_id),
                "bindingVersion": MQTT_BINDING_VERSION,
            }
        },
        "messages": [{"$ref": f"{channel}/messages/{cls.__name__}"} for cls in classes],
    }


def _message(cls: type[Event], payload: JsonSchemaValue) -> dict[str, Any]:
    doc = inspect.cleandoc(cls.__doc__ or cls.__name__)
    message: dict[str, Any] = {
        "name": cls.__name__,
        "title": re.sub(r"(?<!^)([A-Z])", lambda m: " " + m.group(1).lower(), cls.__name__),
        "summary": doc.splitlines()[0],
        "contentType": CONTENT_TYPE,
        "correlationId": {
            "description": "The delivery id (CloudEvents extension `correlationid`).",
            "location": "$message.payload#/correlationid",
        },
        "payload": payload,
        "x-cloudevents-type": cls.type,
    }
    if "\n" in doc:
        message["description"] = doc
    return message


def _agreed(classes: list[type[Event]], attribute: str, where: str) -> object:
    """The value every class on one channel shares; MQTT sets it per publish, not per type."""
    values = {getattr(cls, attribute) for cls in classes}
    if len(values) != 1:
        msg = f"{where}: the events on one topic disagree on {attribute}: {sorted(values)}"
        raise ValueError(msg)
    return values.pop()


def _package_version() -> str:
    try:
        return version("murmuration")
    except PackageNotFoundError:
        return "0.0.0+unknown"
