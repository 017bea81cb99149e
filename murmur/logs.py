"""Log output for every `murmur` command: text for people, JSON lines for log pipelines.

Every record carries `delivery_id` (the delivery the bus was handling when it was logged,
or one given with `extra={"delivery_id": ...}`) and `component` (the bus component of the
task). Text output appends them as `delivery_id=... component=...`; JSON output is one
object per line with `time`, `level`, `logger`, `message`, `delivery_id`, `component`, any
other `extra` fields, and `exception` when there is one.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from bus import logcontext

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_CONTEXT = ("delivery_id", "component")
# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", *_CONTEXT}


class ContextFilter(logging.Filter):
    """Puts `delivery_id` and `component` on every record (an `extra` value wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the context; never drops a record."""
        if getattr(record, "delivery_id", None) is None:
            record.delivery_id = logcontext.DELIVERY_ID.get()
        if getattr(record, "component", None) is None:
            record.component = logcontext.COMPONENT.get()
        return True


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message  delivery_id=... component=...` (set ones only)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The usual line, with the context appended."""
        line = super().format(record)
        context = [
            f"{name}={value}"
            for name in _CONTEXT
            if (value := getattr(record, name, None)) is not None
        ]
        if not context:
            return line
        first, newline, rest = line.partition("\n")  # keep a traceback below the line
        return f"{first}  {' '.join(context)}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialize `record`; values JSON cannot hold are written as their `str`."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "delivery_id": getattr(record, "delivery_id", None),
            "component": getattr(record, "component", None),
        }
        entry.update(
            (name, value)
            for name, value in vars(record).items()
            if name not in _STANDARD and not name.startswith("_")
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def handler(log_format: LogFormat = "text", stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) with the context filter and the chosen format."""
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    out.addFilter(ContextFilter())
    out.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return out


def configure(level: str = "WARNING", log_format: LogFormat = "text") -> None:
    """Send every record of `level` and above to stderr in `log_format`, replacing handlers."""
    logging.basicConfig(level=level, handlers=[handler(log_format)], force=True)
