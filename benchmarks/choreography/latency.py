"""The choreography's latency under load, and the highest rate it sustains.

Requests at a fixed offered rate (50/s), request -> `DroneAssigned` p50/p99 as the client sees
it, timed from each request's scheduled send time (no coordinated omission) and split into hops
(request -> offer, offer -> accept, accept -> assigned); then the highest sustained rate (every
request assigned, p99 under 100 ms): stepped up from 50/s while it holds, or down from it until
one does. `BENCH_DEBUG=1` prints the job traffic of a sample of deliveries.
"""

import asyncio
import itertools
import math
import os
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.choreography.figures import (
    hop,
    latency_summary,
    per_second,
    stats_delta,
    sustainable,
)
from benchmarks.choreography.rig import Rig, requests, rig
from benchmarks.choreography.settings import P99_LIMIT_S, Placement, Settings
from benchmarks.instrument import publish_request
from benchmarks.stats import percentile, progress
from bus.url import BrokerUrl


async def offered_load(
    running: Rig,
    stream: Iterator[tuple[str, bytes]],
    *,
    rate: float,
    seconds: float,
    grace_s: float,
) -> dict[str, Any]:
    """Requests at `rate` per second for `seconds`; request -> DroneAssigned as seen."""
    count = max(1, round(rate * seconds))
    batch = list(itertools.islice(stream, count))
    due: dict[str, float] = {}
    pending: set[asyncio.Task[Any]] = set()
    before = await running.services.stats()
    started = time.monotonic()
    late = 0.0
    for i, (delivery_id, payload) in enumerate(batch):
        at = started + i / rate
        wait = at - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            late = max(late, -wait)
        due[delivery_id] = at
        task = asyncio.create_task(publish_request(running.client, delivery_id, payload))
        pending.add(task)
        task.add_done_callback(pending.discard)
    sent_s = time.monotonic() - started
    await asyncio.gather(*pending)
    watch = running.watch
    await watch.until(lambda: all(d in watch.assigned_at for d in due), grace_s)
    window = time.monotonic() - started
    after = await running.services.stats()
    spans = [watch.assigned_at[d] - at for d, at in due.items() if d in watch.assigned_at]
    if os.environ.get("BENCH_DEBUG"):
        progress(
            f"latency by order: {[round(1000 * x) for x in spans[:: max(1, len(spans) // 30)]]}"
        )
        for d in list(due)[:: max(1, len(due) // 12)]:
            marks = {
                k: round(1000 * (v - due[d])) for k, v in (watch.trace or {}).get(d, {}).items()
            }
            marks["assigned"] = round(1000 * (watch.assigned_at.get(d, math.nan) - due[d]))
            progress(f"  {d}: {marks}")
    summary = latency_summary(spans)
    hops = {
        # The services' part (scheduler), the drone's part (fleet), the services' part again.
        "request_to_offer": hop(due, watch.offered_at),
        "offer_to_accept": hop(watch.offered_at, watch.accepted_at, due),
        "accept_to_assigned": hop(watch.accepted_at, watch.assigned_at, due),
    }
    delta = stats_delta(before, after)
    p99 = percentile(spans, 0.99)
    progress(f"{rate}/s: {len(spans)}/{count} assigned, {summary}")
    return {
        "rate_per_s": rate,
        "offered": count,
        "assigned": len(spans),
        "send_s": round(sent_s, 3),
        "sender_late_ms": round(1000 * late, 1),
        "request_to_assigned": summary,
        "hops": hops,
        "events_per_s": per_second(delta["handled"] + delta["published"], window),
        "sustainable": sustainable(count, len(spans), p99),
    }


async def latency(url: BrokerUrl, settings: Settings, placement: Placement) -> dict[str, Any]:
    """p50/p99 at the fixed rate, then the highest sustained rate near it (`Settings`)."""
    async with rig(
        url,
        settings,
        placement,
        drones=settings.latency_drones,
        spread_km=settings.latency_spread_km,
    ) as running:
        stream = requests(running.homes, running.run, spread_km=running.spread_km)
        fixed = await offered_load(
            running, stream, rate=settings.rate, seconds=settings.seconds, grace_s=settings.grace_s
        )
        steps = []
        # Up from the fixed rate while it holds, or down from it until one does.
        upward = fixed["sustainable"]
        best = settings.rate if upward else None
        for rate in settings.step_rates if upward else settings.lower_rates:
            # Let the drones of the previous step come home first.
            await asyncio.sleep(2.0)
            step = await offered_load(
                running, stream, rate=rate, seconds=settings.step_seconds, grace_s=settings.grace_s
            )
            steps.append(step)
            if step["sustainable"]:
                best = rate
            if step["sustainable"] != upward:
                break
    return {
        "placement": placement,
        "fleet_processes": settings.fleet_processes_for(placement),
        "drones": settings.latency_drones,
        "speedup": settings.speedup,
        "spread_km": settings.latency_spread_km,
        "fixed_rate": fixed,
        "steps": steps,
        "highest_sustainable_rate_per_s": best,
        "p99_limit_ms": 1000 * P99_LIMIT_S,
    }
