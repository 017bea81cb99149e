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
    version = getattr(data, "version", None)
    if version is not None:
        parts.append(f"v{version}")
    for name in _TELLING:
        value = getattr(data, name, None)
        if value is not None:
            parts.append(str(getattr(value, "value", value)))
    text = " ".join(parts)
    if len(text) > _SUMMARY_LIMIT:
        text = text[: _SUMMARY_LIMIT - 1] + "…"
    return text or None


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
