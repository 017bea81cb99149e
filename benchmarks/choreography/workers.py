"""The rig's worker processes: one service, or one shard of the fleet, each in a process.

Started by `benchmarks.choreography.rig` as `python -m benchmarks.choreography --worker NAME` or
`--fleet-shard I`, never by hand. Each builds its part with the rig's `local_part`, on a clock
anchored where the parent's is, says `{"ready": true}` once connected, and runs until its stdin
closes. A service worker answers each `stats` line with its bus counters and CPU seconds.
"""

import argparse
import asyncio
import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.choreography.rig import fleet_drones, local_part
from benchmarks.processes import commands, say
from bus.url import BrokerUrl
from cloud.services import SERVICE_NAMES
from flight_model.clock import ScaledClock


async def serve_service(args: argparse.Namespace) -> None:
    """One service in its own process: reports ready, then its counters on each stdin line."""
    clock = ScaledClock.anchored(args.speedup, datetime.fromtimestamp(args.anchor, UTC))
    url, state_dir = BrokerUrl.parse(args.url), Path(args.state_dir)
    # The drones are in processes of their own.
    async with local_part(url, state_dir, clock, args.run, {}, services=[args.worker]) as system:
        bus = system.services[args.worker].bus
        say({"ready": True})
        async for line in commands():
            if line == "stats":
                say({"stats": dataclasses.asdict(bus.stats), "cpu_s": time.process_time()})


async def serve_fleet_shard(args: argparse.Namespace) -> None:
    """One shard of the fleet in its own process: reports ready, runs until stdin closes."""
    clock = ScaledClock.anchored(args.speedup, datetime.fromtimestamp(args.anchor, UTC))
    drones = fleet_drones(
        drones=args.drones, spread_km=args.spread_km, shard=(args.fleet_shard, args.shards)
    )
    url, state_dir = BrokerUrl.parse(args.url), Path(args.state_dir)
    part = local_part(url, state_dir, clock, args.run, drones, services=(), tick_s=args.tick_s)
    async with part:
        say({"ready": True})
        async for _ in commands():
            pass


def main() -> None:
    """A service worker or a fleet shard, as the rig asks."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.choreography",
        description="The choreography rig's workers: run through `murmur bench`, not by hand.",
    )
    parser.add_argument("--worker", choices=SERVICE_NAMES)
    parser.add_argument("--url")
    parser.add_argument("--state-dir")
    parser.add_argument("--speedup", type=float)
    parser.add_argument("--anchor", type=float)
    parser.add_argument("--run")
    parser.add_argument("--fleet-shard", type=int)
    parser.add_argument("--shards", type=int)
    parser.add_argument("--drones", type=int)
    parser.add_argument("--spread-km", type=float)
    parser.add_argument("--tick-s", type=float)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(serve_service(args))
    elif args.fleet_shard is not None:
        asyncio.run(serve_fleet_shard(args))
    else:
        parser.error("nothing to do: run `murmur bench`")
