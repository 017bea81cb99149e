"""`scripts/storm`: a storm per broker and size, each on a fresh broker, and their report.

`python -m benchmarks.storm` (`__main__`) runs `main`; docs/reliability.md ("Event storms")
holds the figures of a run.
"""

import argparse
import asyncio
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import MOSQUITTO, Target, started_broker
from benchmarks.machine import broker_process, machine
from benchmarks.stats import progress
from benchmarks.storm import StormSettings, storm
from benchmarks.storm import __doc__ as storm_doc
from bus.errors import TransportError

BROKERS: dict[str, Target] = {"mosquitto": MOSQUITTO, "amqtt": None}


async def compare(
    brokers: Sequence[str],
    sizes: Sequence[int],
    *,
    drones: int,
    padding_bytes: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One storm per broker and size, each on a fresh broker; JSON-able figures of each."""
    tell = progress or (lambda _: None)
    storms = []
    for name in brokers:
        for size in sizes:
            async with started_broker(BROKERS[name]) as running:
                broker = await asyncio.to_thread(broker_process, running.url)
                version = running.version or ""
                kind = version if version.startswith(name) else f"{name} {version}".rstrip()
                tell(f"a storm of {size:,} requests on {kind}")
                settings = StormSettings(requests=size, drones=drones, padding_bytes=padding_bytes)
                with tempfile.TemporaryDirectory(prefix="murmur-storm-") as tmp:
                    try:
                        result = await storm(
                            running.url, settings, Path(tmp), broker=broker, progress=tell
                        )
                    except (RuntimeError, TimeoutError, TransportError, OSError) as exc:
                        tell(f"the storm failed: {type(exc).__name__}: {exc}")
                        storms.append({"broker": kind, "requests": size, "error": str(exc)})
                        continue
            storms.append({"broker": kind, "padding_bytes": padding_bytes, **result.figures})
    return {"machine": machine(), "storms": storms}


def report(figures: dict[str, Any]) -> str:
    """One storm's figures, for people."""
    head = f"{figures['requests']:,} requests on {figures['broker']}"
    if "error" in figures:
        return f"{head}: failed: {figures['error']}"
    absorbed = ", ".join(f"{n} {s} s" for n, s in figures["absorbed_s"].items())
    outcomes = ", ".join(f"{stage} {count:,}" for stage, count in figures["outcomes"].items())
    memory = ", ".join(
        f"{name} {v['baseline']} -> {v['peak']} ({_signed(v['growth'])})"
        for name, v in figures["rss_mib"].items()
    )
    outbox = ", ".join(f"{n} {count:,}" for n, count in figures["outbox_peak"].items())
    lines = [
        (
            f"{head} ({figures['drones']} drones, x{figures['speedup']:g}, assigned within "
            f"{figures['assign_within_s']:g} s or unassignable)"
        ),
        (
            f"  published in {figures['published_s']} s; absorbed in {figures['all_absorbed_s']} s "
            f"({absorbed}); all terminal in {figures['terminal_s']} s"
        ),
        (
            f"  outcomes: {outcomes}; lost {figures['lost']:,}; terminal retained statuses "
            f"{figures['retained_terminal']:,}; dead letters {figures['dead_letters']}"
        ),
        f"  RSS MiB, baseline -> peak: {memory}",
        f"  outbox peak (rows in SQLite): {outbox}",
    ]
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "?" if value is None else f"{value:+.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run storms of the given sizes on each broker and print their figures."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.storm", description=storm_doc.split("\n\n")[0]
    )
    parser.add_argument(
        "--brokers", default="mosquitto,amqtt", help="comma-separated: mosquitto, amqtt"
    )
    parser.add_argument(
        "--requests", type=int, nargs="+", default=[10_000, 2_000], help="burst sizes"
    )
    parser.add_argument("--drones", type=int, default=5)
    parser.add_argument(
        "--padding-bytes", type=int, default=0, help="an ignored field of this size per request"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    brokers = [b.strip() for b in args.brokers.split(",") if b.strip()]
    unknown = sorted(set(brokers) - set(BROKERS))
    if unknown:
        parser.error(f"--brokers: unknown {', '.join(unknown)}; choose from mosquitto, amqtt")

    results = asyncio.run(
        compare(
            brokers,
            args.requests,
            drones=args.drones,
            padding_bytes=args.padding_bytes,
            progress=progress,
        )
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for figures in results["storms"]:
        print(report(figures))
    _compare_sizes(results["storms"])
    failed = [f for f in results["storms"] if "error" in f or f["lost"]]
    return 1 if failed else 0


def _compare_sizes(storms: list[dict[str, Any]]) -> None:
    """Per broker: how much more each process grew in the largest storm than in the smallest."""
    done = [f for f in storms if "error" not in f]
    for kind in dict.fromkeys(f["broker"] for f in done):
        mine = sorted((f for f in done if f["broker"] == kind), key=lambda f: f["requests"])
        if len(mine) < 2:  # noqa: PLR2004 - a comparison needs two
            continue
        small, large = mine[0], mine[-1]
        deltas = ", ".join(
            f"{name} {_signed(_minus(large['rss_mib'][name]['growth'], v['growth']))}"
            for name, v in small["rss_mib"].items()
        )
        print(
            f"{kind}: {large['requests']:,} requests instead of {small['requests']:,} "
            f"grew each process by this much more (MiB): {deltas}"
        )


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)
