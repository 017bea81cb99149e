"""The pure helpers of the choreography benchmark: percentiles, counters, the shared clock."""

import pytest

from benchmarks.choreography.figures import (
    latency_summary,
    per_second,
    stats_delta,
    sustainable,
)
from benchmarks.stats import percentile
from bus.stats import BusStats


def test_percentile_is_nearest_rank_and_none_when_empty() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) is None


def test_latency_summary_is_in_milliseconds() -> None:
    summary = latency_summary([0.010, 0.020, 0.030])

    assert summary == {"count": 3, "p50_ms": 20.0, "p99_ms": 30.0, "max_ms": 30.0}
    assert latency_summary([]) == {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}


def test_stats_delta_sums_the_services_between_two_snapshots() -> None:
    before = {"a": BusStats(handled=10, published=5), "b": BusStats(handled=1, volatile=1)}
    after = {
        "a": BusStats(handled=30, published=15, duplicates=1),
        "b": BusStats(handled=6, volatile=4),
        "c": BusStats(handled=2),  # started after the first snapshot
    }

    assert stats_delta(before, after) == {
        "handled": 20 + 5 + 2,
        "published": 10,
        "volatile": 3,
        "duplicates": 1,
        "dead_letters": 0,
    }


def test_per_second_needs_a_window() -> None:
    assert per_second(100, 2.0) == 50.0
    assert per_second(100, 0.0) is None
    assert per_second(100, None) is None


@pytest.mark.parametrize(
    ("offered", "assigned", "p99_s", "expected"),
    [
        (100, 100, 0.050, True),
        (100, 100, 0.100, True),
        (100, 100, 0.101, False),
        (100, 99, 0.010, False),  # one never assigned: behind
        (100, 100, None, False),
        (0, 0, None, False),
    ],
)
def test_a_rate_is_sustained_when_all_are_assigned_within_the_p99_limit(
    offered: int,
    assigned: int,
    p99_s: float | None,
    expected: bool,  # noqa: FBT001
) -> None:
    assert sustainable(offered, assigned, p99_s) is expected
