"""The choreography's figures from what was recorded: latencies, rates, counters. Pure."""

import math
import statistics
from collections.abc import Sequence

from benchmarks.choreography.settings import P99_LIMIT_S
from benchmarks.stats import percentile
from bus.stats import BusStats


def latency_summary(spans: Sequence[float]) -> dict[str, float | int | None]:
    """p50, p99 and max of latencies in seconds, as milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else round(1000 * value, 2)

    return {
        "count": len(spans),
        "p50_ms": ms(statistics.median(spans)) if spans else None,
        "p99_ms": ms(percentile(spans, 0.99)),
        "max_ms": ms(max(spans)) if spans else None,
    }


def hop(
    start: dict[str, float], end: dict[str, float], only: dict[str, float] | None = None
) -> dict[str, float | int | None]:
    """Latency from `start` to `end` of the deliveries in both (and in `only`, if given)."""
    keys = start.keys() if only is None else only.keys()
    return latency_summary([end[k] - start[k] for k in keys if k in start and k in end])


def stats_delta(before: dict[str, BusStats], after: dict[str, BusStats]) -> dict[str, int]:
    """Events the services handled and published between two snapshots, summed over them."""
    total = {"handled": 0, "published": 0, "volatile": 0, "duplicates": 0, "dead_letters": 0}
    for name, end in after.items():
        start = before.get(name, BusStats())
        for key in total:
            total[key] += getattr(end, key, 0) - getattr(start, key, 0)
    return total


def per_second(count: float, seconds: float | None) -> float | None:
    """A rate, rounded; None when the window is empty or unknown."""
    if seconds is None or seconds <= 0:
        return None
    return round(count / seconds, 1)


def sustainable(offered: int, assigned: int, p99_s: float | None) -> bool:
    """Every request assigned and the p99 within the limit."""
    return offered > 0 and assigned == offered and p99_s is not None and p99_s <= P99_LIMIT_S


def last(seen: dict[str, float], ids: list[str], started: float) -> float | None:
    """When the last of `ids` had been seen, from `started` (None if none was)."""
    times = [seen[d] for d in ids if d in seen]
    return max(times) - started if times else None


def nth(seen: dict[str, float], ids: list[str], started: float, q: float) -> float | None:
    """When the `q` share of `ids` had been seen, from `started` (None if never)."""
    times = sorted(seen[d] - started for d in ids if d in seen)
    rank = math.ceil(q * len(ids))
    return times[rank - 1] if 0 < rank <= len(times) else None


def round3(value: float | None) -> float | None:
    """Seconds to the millisecond; None stays None."""
    return None if value is None else round(value, 3)
