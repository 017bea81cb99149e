"""The choreography's throughput: a burst of K requests, all published at once.

Deliveries per second to `DroneAssigned` and to `Delivered` (K divided by the time from the
first request to the K-th event), and the events per second the three services handled and
published over those windows (their `BusStats`), with `ratio_to_raw` against the raw paho QoS 1
baseline of the same run. `events_per_s` is over the window to the K-th `DroneAssigned`, where
the burst keeps the services busy; the window to `Delivered` is mostly flight time.
"""

import asyncio
import itertools
import time
from typing import Any

from benchmarks.choreography.figures import last, nth, per_second, round3, stats_delta
from benchmarks.choreography.rig import requests, rig
from benchmarks.choreography.settings import Placement, Settings
from benchmarks.instrument import publish_request
from benchmarks.stats import progress
from bus.url import BrokerUrl


async def throughput(
    url: BrokerUrl, settings: Settings, placement: Placement, raw: dict[str, Any] | None
) -> dict[str, Any]:
    """A burst of K requests through the whole choreography."""
    async with rig(
        url,
        settings,
        placement,
        drones=settings.drones,
        spread_km=settings.spread_km,
        statuses=True,
    ) as running:
        watch = running.watch
        burst = list(
            itertools.islice(
                requests(running.homes, running.run, spread_km=running.spread_km), settings.burst
            )
        )
        ids = [delivery_id for delivery_id, _ in burst]
        before = await running.services.stats()
        cpu_before = dict(running.services.cpu_s)
        started = time.monotonic()
        await asyncio.gather(*(publish_request(running.client, d, payload) for d, payload in burst))
        published_s = time.monotonic() - started

        def all_in(seen: dict[str, float]) -> bool:
            return all(d in seen for d in ids)

        assigned_ok = await watch.until(lambda: all_in(watch.assigned_at), 30)
        at_assigned = await running.services.stats()
        # Events are counted up to the snapshot: right after the K-th event, or at the timeout.
        assigned_window = time.monotonic() - started
        cpu_assigned = dict(running.services.cpu_s)
        assigned_s = last(watch.assigned_at, ids, started)
        delivered_ok = await watch.until(
            lambda: all_in(watch.delivered_at), settings.delivered_timeout_s
        )
        at_delivered = await running.services.stats()
        delivered_window = time.monotonic() - started
        delivered_s = last(watch.delivered_at, ids, started)

    progress(f"burst of {settings.burst}: assigned in {assigned_s}, delivered in {delivered_s}")
    to_assigned = stats_delta(before, at_assigned)
    cpu_s = sum(cpu_assigned.values()) - sum(cpu_before.values()) if cpu_before else None
    to_delivered = stats_delta(before, at_delivered)
    events_assigned = to_assigned["handled"] + to_assigned["published"]
    events_delivered = to_delivered["handled"] + to_delivered["published"]
    events_per_s = per_second(events_assigned, assigned_window)
    raw_msg_s = raw.get("throughput_msg_s") if raw else None
    return {
        "placement": placement,
        "fleet_processes": settings.fleet_processes_for(placement),
        "drones": settings.drones,
        "deliveries": settings.burst,
        "speedup": settings.speedup,
        "spread_km": settings.spread_km,
        "burst_published_s": round(published_s, 3),
        "assigned": sum(d in watch.assigned_at for d in ids),
        "delivered": sum(d in watch.delivered_at for d in ids),
        "all_assigned": assigned_ok,
        "all_delivered": delivered_ok,
        "to_assigned_s": round3(assigned_s),
        # When half and nine in ten of the burst were assigned: a straggler shows as a gap.
        "to_assigned_p50_s": round3(nth(watch.assigned_at, ids, started, 0.5)),
        "to_assigned_p90_s": round3(nth(watch.assigned_at, ids, started, 0.9)),
        "to_delivered_s": round3(delivered_s),
        "assigned_per_s": per_second(settings.burst, assigned_s) if assigned_ok else None,
        "delivered_per_s": per_second(settings.burst, delivered_s) if delivered_ok else None,
        "window_to_assigned": {
            **to_assigned,
            "events_per_s": events_per_s,
            "window_s": round3(assigned_window),
            # CPU the three service processes spent per event: unlike a rate, it holds still
            # when something else shares the machine (subprocess placement only).
            "services_cpu_s": round3(cpu_s),
            "services_cpu_us_per_event": round(1e6 * cpu_s / events_assigned, 1)
            if cpu_s is not None and events_assigned
            else None,
        },
        "window_to_delivered": {
            **to_delivered,
            "events_per_s": per_second(events_delivered, delivered_window),
            "window_s": round3(delivered_window),
        },
        "events_per_s": events_per_s,
        "choreography_events_per_s": per_second(
            events_assigned - to_assigned["volatile"], assigned_window
        ),
        "ratio_to_raw": round(events_per_s / raw_msg_s, 3) if events_per_s and raw_msg_s else None,
    }
