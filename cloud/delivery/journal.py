"""A delivery's journal: the events that carried its id, as trace entries. Pure."""

from typing import Any

from contracts import Envelope
from contracts.events import TraceEntry

# The fields that tell one event of a delivery from another, in the order a reader wants them.
_TELLING = ("drone_id", "job_id", "stage", "phase", "kind", "package_state", "reason", "detail")
_SUMMARY_LIMIT = 200


def summary(data: Any) -> str | None:  # noqa: ANN401 - any event's data
    """A short line of the fields that tell this event apart: `d-1 job-7 Scheduled`."""
    parts = []
    version = _field(data, "version")
    if version is not None:
        parts.append(f"v{version}")
    for name in _TELLING:
        value = _field(data, name)
        if value is not None:
            parts.append(str(getattr(value, "value", value)))
    text = " ".join(parts)
    if len(text) > _SUMMARY_LIMIT:
        text = text[: _SUMMARY_LIMIT - 1] + "…"
    return text or None


def _field(data: Any, name: str) -> Any:  # noqa: ANN401 - any event's field
    """`getattr(data, name, None)`, without asking a pydantic model for a field it lacks.

    A missing attribute costs a pydantic model a raised and caught AttributeError; every
    event of a delivery asks for nine names, most of them missing.
    """
    fields = getattr(type(data), "model_fields", None)
    if fields is not None and name not in fields:
        return None
    return getattr(data, name, None)


def entry(envelope: Envelope[Any]) -> TraceEntry:
    """The journal entry of one event."""
    return TraceEntry(
        id=envelope.id,
        time=envelope.time,
        source=envelope.source,
        type=envelope.type,
        causationid=envelope.causationid,
        summary=summary(envelope.data),
    )
