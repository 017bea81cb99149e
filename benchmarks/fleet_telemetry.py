"""N simulated drones at 1 Hz against a private Mosquitto: CPU, memory and telemetry lag.

Usage: python -m benchmarks.fleet_telemetry --drones 1000 --seconds 30 [--json FILE]

Each drone is a full agent (its own MQTT connection, last will, SQLite file) flying nothing,
as a parked fleet does most of the time. An independent subscriber measures
lag = arrival time - envelope time (both on this machine's clock).
"""

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt

from broker.mosquitto import Mosquitto
from broker.url import BrokerUrl
from contracts import decode
from contracts.ids import Location
from drone_agent.main import FleetConfig, run_fleet, spread_homes

USER, PASSWORD = "bench", "bench-password"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _measure(url: BrokerUrl, seconds: float, lags: list[float]) -> None:
    async with aiomqtt.Client(
        url.host, url.port, username=USER, password=PASSWORD, identifier="bench-sub"
    ) as client:
        await client.subscribe("murmur/v1/drones/+/telemetry", qos=0)
        async with asyncio.timeout(seconds):
            async for message in client.messages:
                payload = message.payload
                assert isinstance(payload, bytes)
                sent = decode(str(message.topic), payload).time
                lags.append((datetime.now(UTC) - sent).total_seconds())


async def bench(drones: int, seconds: float) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="murmur-bench-"))
    async with Mosquitto(workdir / "mosquitto", users={USER: PASSWORD}) as mosquitto:
        url = BrokerUrl("127.0.0.1", mosquitto.port, USER, PASSWORD)
        config = FleetConfig(
            broker=url, home=Location(latitude=47.3769, longitude=8.5417), state_dir=workdir
        )
        ids = [f"d-{i:04d}" for i in range(drones)]
        homes = dict(zip(ids, spread_homes(config.home, drones, spread_km=3, seed=1), strict=True))
        rss_before = _rss_mb()
        started = time.perf_counter()
        fleet = asyncio.create_task(run_fleet(config, homes, snapshot=False))
        lags: list[float] = []
        # Let every drone connect (one connection each), then measure in steady state.
        warmup = min(60.0, 5 + drones / 50)
        await asyncio.sleep(warmup)
        cpu_before = time.process_time()
        wall_before = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await _measure(url, seconds, lags)
        cpu = time.process_time() - cpu_before
        wall = time.perf_counter() - wall_before
        fleet.cancel()
        await asyncio.gather(fleet, return_exceptions=True)
    lags.sort()
    return {
        "drones": drones,
        "seconds": round(wall, 1),
        "messages": len(lags),
        "expected_messages": int(drones * seconds),
        "lag_p50_ms": round(1000 * statistics.median(lags), 1) if lags else None,
        "lag_p99_ms": round(1000 * lags[int(0.99 * (len(lags) - 1))], 1) if lags else None,
        "cpu_pct_of_one_core": round(100 * cpu / wall, 1),
        "cpu_ms_per_drone_second": round(1000 * cpu / wall / drones, 3),
        "rss_mb_per_drone": round((_rss_mb() - rss_before) / drones, 3),
        "startup_s": round(warmup, 1),
        "total_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drones", type=int, nargs="+", default=[100])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [asyncio.run(bench(n, args.seconds)) for n in args.drones]
    for result in results:
        print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
