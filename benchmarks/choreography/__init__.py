"""The `choreography` section of `murmur bench`: the three services and a simulated fleet.

Run through `murmur bench` (`benchmarks.harness`), which gives it the broker and the raw
baseline. Two parts, each on a rig of its own (`rig`: services and fleet built as `murmur up`
builds them, each service in its own process by default):

1. `throughput`: a burst of K requests, all at once; deliveries per second and the events per
   second the services handled, against the raw baseline.
2. `latency`: requests at a fixed offered rate; request -> `DroneAssigned` p50/p99 and its
   hops, then the highest rate that holds.

`settings` has the sizes of a full and a quick run, `figures` the arithmetic, `workers` the
rig's child processes (`python -m benchmarks.choreography`).
"""

import os
import resource
import time
from collections.abc import Coroutine
from typing import Any

from benchmarks.choreography.latency import latency
from benchmarks.choreography.settings import FULL, QUICK, Placement
from benchmarks.choreography.throughput import throughput
from benchmarks.machine import machine_busy
from benchmarks.stats import progress
from bus.errors import TransportError
from bus.url import BrokerUrl

__all__ = ["measure"]


async def measure(
    url: BrokerUrl,
    *,
    quick: bool,
    raw: dict[str, Any] | None = None,
    placement: Placement = "subprocess",
) -> dict[str, Any]:
    """Both sections on the broker at `url`; JSON-able. `quick` finishes in well under 30 s.

    `raw` is the raw paho baseline of the same run (its `throughput_msg_s` is used).
    """
    settings = QUICK if quick else FULL
    started = time.monotonic()
    busy_before, total_before = machine_busy()
    own_before = own_cpu_s()
    result: dict[str, Any] = {
        "quick": quick,
        "throughput": await _guarded(throughput(url, settings, placement, raw)),
        "latency": await _guarded(latency(url, settings, placement)),
    }
    busy_after, total_after = machine_busy()
    elapsed = time.monotonic() - started
    # What else ran on the machine meanwhile (another benchmark, a build) skews every figure.
    # The broker, when started by the caller, counts as "other" here.
    result["machine"] = {
        "cores": os.cpu_count(),
        "busy_pct_of_all_cores": round(
            100 * (busy_after - busy_before) / max(1e-9, total_after - total_before), 1
        ),
        "own_cpu_pct_of_one_core": round(100 * (own_cpu_s() - own_before) / elapsed, 1),
        "other_cpu_pct_of_one_core": round(
            100 * ((busy_after - busy_before) - (own_cpu_s() - own_before)) / elapsed, 1
        ),
    }
    result["elapsed_s"] = round(elapsed, 1)
    return result


async def _guarded(section: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """A section's figures, or the reason it has none: one failure spares the other section."""
    try:
        return await section
    except (TimeoutError, RuntimeError, TransportError, OSError) as exc:
        progress(f"section failed: {type(exc).__name__}: {exc}")
        return {"error": f"{type(exc).__name__}: {exc}"}


def own_cpu_s() -> float:
    """CPU seconds of this process and its reaped children (the service workers)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime
