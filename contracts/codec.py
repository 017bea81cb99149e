"""Bytes from the broker to a typed event, or one error that says what is wrong."""

import json
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from contracts import topics
from contracts.envelope import Envelope
from contracts.events import REGISTRY, Event
from contracts.producers import expected_source

MAX_PAYLOAD_BYTES = 64 * 1024
_REQUIRED = ("specversion", "id", "source", "type")


class DecodeErrorKind(StrEnum):
    """The ways a payload can be refused; each is a dead-letter reason."""

    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    NOT_CLOUDEVENT = "not_cloudevent"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    TOPIC_MISMATCH = "topic_mismatch"
    SOURCE_MISMATCH = "source_mismatch"


class DecodeError(ValueError):
    """Raised when a payload is not a valid event for its topic; `kind` says which way."""

    def __init__(
        self,
        kind: DecodeErrorKind,
        detail: str,
        *,
        event_id: str | None = None,
        event_type: str | None = None,
    ) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        self.event_id = event_id
        self.event_type = event_type


@cache
def _adapter(event_cls: type[Event]) -> TypeAdapter[Envelope[Any]]:
    return TypeAdapter(Envelope[event_cls])  # type: ignore[valid-type]


def decode(topic: str, payload: bytes, *, root: str = topics.DEFAULT_ROOT) -> Envelope[Event]:
    """Parse and validate one message received on `topic`.

    Raises:
        DecodeError: the payload is too large, not JSON, not a CloudEvent, of an unknown type,
            has an invalid field, or does not belong on this topic.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise DecodeError(
            DecodeErrorKind.TOO_LARGE, f"{len(payload)} bytes, the limit is {MAX_PAYLOAD_BYTES}"
        )
    try:
        # CloudEvents JSON is UTF-8 only (json.loads would also guess UTF-16/32), and a deep
        # nesting that fits in the size limit still overflows the parser's recursion.
        raw = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise DecodeError(DecodeErrorKind.NOT_JSON, detail) from exc
    if not isinstance(raw, dict):
        raise DecodeError(DecodeErrorKind.NOT_CLOUDEVENT, "the payload is not a JSON object")
    missing = [name for name in _REQUIRED if not isinstance(raw.get(name), str)]
    if missing or raw["specversion"] != "1.0":
        detail = f"missing {', '.join(missing)}" if missing else "specversion must be '1.0'"
        raise DecodeError(DecodeErrorKind.NOT_CLOUDEVENT, detail, event_id=_str(raw.get("id")))
    event_id, event_type = raw["id"], raw["type"]
    event_cls = REGISTRY.get(event_type)
    if event_cls is None:
        raise DecodeError(
            DecodeErrorKind.UNKNOWN_TYPE, event_type, event_id=event_id, event_type=event_type
        )
    try:
        envelope: Envelope[Event] = _adapter(event_cls).validate_json(payload)
    except ValidationError as exc:
        raise DecodeError(
            DecodeErrorKind.INVALID_FIELD,
            _describe(exc),
            event_id=event_id,
            event_type=event_type,
        ) from exc
    _check_topic(envelope, topic, root)
    _check_source(envelope)
    return envelope


def _check_source(envelope: Envelope[Event]) -> None:
    expected = expected_source(envelope.type, envelope.data)
    if expected is not None and envelope.source != expected:
        raise DecodeError(
            DecodeErrorKind.SOURCE_MISMATCH,
            f"{envelope.type} must come from {expected}, not {envelope.source}",
            event_id=envelope.id,
            event_type=envelope.type,
        )


def _check_topic(envelope: Envelope[Event], topic: str, root: str) -> None:
    data = envelope.data
    params = topics.match(data.topic, topic, root=root)
    problem = None
    if params is None:
        problem = f"{envelope.type} belongs on {topics.join(root, data.topic)}, not {topic}"
    elif params != data.topic_values():
        problem = f"topic {topic} does not match the event's fields {data.topic_values()}"
    elif envelope.subject is not None and envelope.subject != data.subject():
        problem = f"subject {envelope.subject!r} is not {data.subject()!r}"
    if problem:
        raise DecodeError(
            DecodeErrorKind.TOPIC_MISMATCH, problem, event_id=envelope.id, event_type=envelope.type
        )


def _describe(exc: ValidationError) -> str:
    """'invalid field data.package.weight_kg: Input should be greater than 0', one per error."""
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in error["loc"] if p != "function-after") or "(root)"
        parts.append(f"invalid field {where}: {error['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
