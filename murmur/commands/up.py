"""`murmur up`: broker, services and a simulated fleet in one process, with a live console."""

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from murmur import checks
from murmur.commands import Subcommands
from murmur.connection import add_connection_options, broker_url
from murmur.running import FAILED, INTERRUPTED, INVALID, problems_reported, run_until_signalled

if TYPE_CHECKING:
    from bus.url import BrokerUrl
    from contracts.events import DeliveryStatusChanged
    from murmur.up import UpConfig


def add_parser(commands: Subcommands) -> None:
    """Add `murmur up`."""
    up = commands.add_parser("up", help="run broker, services and a simulated fleet in one process")
    up.add_argument("--drones", type=int, default=10)
    up.add_argument("--deliveries", type=int, default=0, help="requests to generate at start")
    up.add_argument(
        "--demand", type=float, default=0.0, help="then keep requesting, RATE per simulated hour"
    )
    up.add_argument("--speedup", type=float, default=50.0, help="simulated time factor")
    up.add_argument("--seed", type=int, default=1)
    up.add_argument("--broker", help="use this broker instead of the embedded one")
    add_connection_options(up)
    up.add_argument("--home", default="47.3769,8.5417", help="LAT,LON of the fleet's area")
    up.add_argument("--spread-km", type=float, default=2.0, help="radius of the area")
    up.add_argument("--state-dir", type=Path, help="SQLite files (default: a temporary dir)")
    up.add_argument("--until-idle", action="store_true", help="exit when all are terminal")
    up.add_argument("--json", action="store_true", help="JSON output (no live console)")
    up.add_argument("--no-ui", action="store_true", help="status lines, not the live console")
    up.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run until Ctrl-C, or with `--until-idle` until every delivery ended; print the summary."""
    from murmur.commands.request import status_line  # noqa: PLC0415
    from murmur.up import run_up  # noqa: PLC0415 - lazy by design

    config = _config(args)
    if config is None:
        return INVALID
    live = sys.stdout.isatty() and not (args.no_ui or args.json)
    quiet = live or (args.json and args.until_idle)

    def on_status(status: "DeliveryStatusChanged") -> None:
        if not quiet:
            print(status_line(status, as_json=args.json), flush=True)

    def on_ready(broker: "BrokerUrl") -> None:
        if not args.json:
            print(f"murmur up: {args.drones} drones on {broker} (Ctrl-C stops)", flush=True)

    async def console(broker: "BrokerUrl", run_prefix: str) -> None:
        from rich.console import Console  # noqa: PLC0415

        from bus.transport import open_transport  # noqa: PLC0415
        from cloud.monitor import Batch, watch  # noqa: PLC0415

        batch = Batch(args.deliveries, prefix=run_prefix) if args.deliveries else None
        await watch(
            open_transport(broker), console=Console(), batch=batch, until_done=args.until_idle
        )

    summary: dict[str, Any] = {}

    async def main() -> None:
        summary.update(
            await run_up(
                config,
                until_idle=args.until_idle,
                on_status=on_status,
                on_ready=on_ready,
                console=console if live else None,
            )
        )

    unreachable = False
    try:
        run_until_signalled(main())
    except* TimeoutError:
        unreachable = True
    if unreachable:
        where = config.broker or "the embedded broker"
        print(f"murmur up: not every part connected to {where} in time", file=sys.stderr)
        return FAILED
    return _summary(args, summary)


def _config(args: argparse.Namespace) -> "UpConfig | None":
    from contracts.ids import parse_location  # noqa: PLC0415
    from murmur.up import UpConfig  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems) if args.broker else None
    home = parse_location(args.home, "--home", problems)
    checks.positive(args, ["--speedup", "--spread-km"], problems)
    if args.drones < 1:
        problems.append(f"--drones: at least 1, got {args.drones}")
    if args.deliveries < 0:
        problems.append(f"--deliveries: at least 0, got {args.deliveries}")
    if not (math.isfinite(args.demand) and args.demand >= 0):
        problems.append(f"--demand: must be a number of requests per hour >= 0, got {args.demand}")
    elif args.demand and args.until_idle:
        problems.append("--demand: requests never stop, so --until-idle would never end")
    if problems:
        problems_reported("up", problems)
        return None
    return UpConfig(
        drones=args.drones,
        deliveries=args.deliveries,
        demand_per_hour=args.demand,
        speedup=args.speedup,
        seed=args.seed,
        broker=url,
        home=home,
        spread_km=args.spread_km,
        state_dir=args.state_dir,
    )


def _summary(args: argparse.Namespace, summary: dict[str, Any]) -> int:
    if not summary:
        return INTERRUPTED if args.until_idle else 0
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
    delivered = summary["deliveries"]["by_stage"].get("Delivered", 0)
    return 0 if delivered == summary["deliveries"]["total"] else FAILED
