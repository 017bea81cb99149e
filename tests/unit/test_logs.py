"""Log records carry the delivery they are about, in text and in JSON lines."""

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bus import logcontext
from bus.bus import Bus
from bus.memory_transport import MemoryBroker
from bus.outbox import Outbox
from bus.store import open_database
from contracts import Envelope, Event
from contracts.events import DeliveryRequested
from contracts.ids import Location
from contracts.requests import delivery_request
from murmur.logs import ContextFilter, configure, handler

log = logging.getLogger("murmur.test")


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    """A logger writing to a text stream and a JSON stream."""
    text, lines = io.StringIO(), io.StringIO()
    logger = logging.getLogger("murmur.test.captured")
    logger.setLevel(logging.DEBUG)
    handlers = [handler("text", text), handler("json", lines)]
    for each in handlers:
        logger.addHandler(each)
    yield logger, text, lines
    for each in handlers:
        logger.removeHandler(each)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_logged_while_a_delivery_is_handled_carries_its_id(
    captured: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, text, lines = captured
    logger.info("before")
    with logcontext.delivery("del-1"):
        logger.warning("during %s", "work")
    logger.info("explicit", extra={"delivery_id": "del-2", "job_id": "job-9"})

    before, during, explicit = records(lines)
    assert set(before) == {"time", "level", "logger", "message", "delivery_id", "component"}
    assert before["delivery_id"] is None
    assert during["message"] == "during work"
    assert (during["level"], during["logger"]) == ("WARNING", "murmur.test.captured")
    assert during["delivery_id"] == "del-1"
    assert during["time"].endswith("+00:00")
    assert explicit["delivery_id"] == "del-2"
    assert explicit["job_id"] == "job-9"  # other extra fields are kept

    first, second, third = text.getvalue().splitlines()
    assert first.endswith("murmur.test.captured: before")
    assert second.endswith("WARNING murmur.test.captured: during work  delivery_id=del-1")
    assert third.endswith(": explicit  delivery_id=del-2")


def test_an_exception_stays_one_json_line_and_below_the_text_line(
    captured: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, text, lines = captured
    try:
        raise ValueError("boom")  # noqa: TRY301
    except ValueError:
        with logcontext.delivery("del-3"):
            logger.exception("failed")
    [entry] = records(lines)
    assert "ValueError: boom" in entry["exception"]
    assert text.getvalue().splitlines()[0].endswith("failed  delivery_id=del-3")
    assert "Traceback" in text.getvalue().splitlines()[1]


def test_configure_replaces_the_root_handlers_with_one_of_the_chosen_format() -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    try:
        configure("INFO", "json")
        [only] = root.handlers
        assert type(only.formatter).__name__ == "JsonFormatter"
        assert root.level == logging.INFO
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


async def test_the_bus_sets_the_delivery_id_while_a_handler_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = Bus(
        component="tester",
        transport=MemoryBroker().transport(),
        db=open_database(tmp_path / "t.db"),
    )
    seen: list[str | None] = []

    def on_request(event: Envelope[Any], _: Outbox) -> None:
        seen.append(logcontext.DELIVERY_ID.get())
        log.info("handling %s", event.data.delivery_id)

    bus.route(DeliveryRequested, on_request)
    where = Location(latitude=47.37, longitude=8.54)
    request = delivery_request(pickup=where, dropoff=where, weight_kg=1.0, delivery_id="del-7")
    envelope = Envelope[Event].new(request, source="/test", correlationid="del-7")
    caplog.set_level(logging.INFO, logger="murmur.test")
    caplog.handler.addFilter(ContextFilter())

    await bus.receive(request.resolved_topic(), envelope.to_json())

    assert seen == ["del-7"]
    [record] = [r for r in caplog.records if r.name == "murmur.test"]
    assert record.delivery_id == "del-7"  # type: ignore[attr-defined]
    assert logcontext.DELIVERY_ID.get() is None  # reset after the handler
