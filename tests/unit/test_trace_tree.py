"""The causal tree of `murmur trace`, drawn from journal entries."""

from datetime import timedelta

from rich.console import Console

from contracts.events import TraceEntry
from murmur.trace import causal_tree
from tests.builders import T0


def entry(id_: str, cause: str | None = None, n: int = 0) -> TraceEntry:
    return TraceEntry(
        id=id_,
        time=T0 + timedelta(seconds=n),
        source="/test",
        type=f"murmur.test.{id_}.v1",
        causationid=cause,
    )


def drawn(*entries: TraceEntry) -> list[str]:
    console = Console(record=True, width=200)
    console.print(causal_tree("del-1", entries, truncated=False))
    return console.export_text().splitlines()


def depth(lines: list[str], name: str) -> int:
    [line] = [line for line in lines if f"test.{name}" in line]
    return line.index("──") // 4


def test_each_event_hangs_under_its_cause_even_when_the_cause_arrived_later() -> None:
    lines = drawn(entry("a"), entry("c", cause="b", n=2), entry("b", cause="a", n=1))
    assert (depth(lines, "a"), depth(lines, "b"), depth(lines, "c")) == (0, 1, 2)


def test_an_event_caused_outside_the_journal_is_a_root_that_says_so() -> None:
    lines = drawn(entry("a"), entry("x", cause="telemetry-1"))
    assert depth(lines, "x") == 0
    assert "caused by telemetry-1, outside this delivery" in next(s for s in lines if "test.x" in s)


def test_events_causing_each_other_in_a_ring_are_still_shown_once() -> None:
    lines = drawn(entry("p", cause="q"), entry("q", cause="p"))
    assert sum("test.p" in line for line in lines) == 1
    assert sum("test.q" in line for line in lines) == 1
