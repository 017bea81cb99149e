"""The flags of the drone side (`murmur agent`, `murmur sim`) and the fleet settings from them."""

import argparse
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from murmur.config import report
from murmur.connection import add_connection_options, connection
from murmur.running import problems_reported
from murmur.setting_values import instant

if TYPE_CHECKING:
    from drone_agent.wiring import FleetConfig


def add_fleet_options(command: argparse.ArgumentParser, *, state_dir: str) -> None:
    """Broker, home, clock, limits and state directory of the agents a command runs."""
    command.add_argument("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port]")
    add_connection_options(command)
    command.add_argument("--home", default="47.3769,8.5417", help="LAT,LON (default Zurich)")
    command.add_argument("--speedup", type=float, default=1.0, help="simulated time factor")
    add_sim_epoch(command)
    command.add_argument(
        "--max-payload-kg", type=float, default=2.5, help="heaviest package carried (kg)"
    )
    command.add_argument(
        "--telemetry-hz", type=float, default=1.0, help="telemetry reports per second (max 50)"
    )
    command.add_argument(
        "--state-dir", type=Path, default=Path(state_dir), help="SQLite files (default %(default)s)"
    )


def add_sim_epoch(command: argparse.ArgumentParser) -> None:
    """`--sim-epoch`: when simulated and real time coincided, so processes agree on "now"."""
    command.add_argument(
        "--sim-epoch",
        type=instant,
        metavar="TIME",
        help="with --speedup: when simulated and real time coincided (ISO 8601 with a zone); "
        "processes of one simulated run given the same epoch agree on the time, and a restarted "
        "one carries on (default: when this process starts)",
    )


def fleet_settings(
    args: argparse.Namespace, drone_ids: list[str], problems: list[str] | None = None
) -> "FleetConfig | None":
    """The checked settings of these drones' agents; None once every problem is printed."""
    from bus.url import BrokerUrl, BrokerUrlError  # noqa: PLC0415 - lazy, as every command's
    from drone_agent.wiring import ConfigError, fleet_config  # noqa: PLC0415

    problems = list(problems or [])
    config = None
    try:
        config = fleet_config(
            broker=args.broker or "",  # None: missing, which layering reported
            home=args.home,
            state_dir=args.state_dir,
            speedup=args.speedup,
            max_payload_kg=args.max_payload_kg,
            telemetry_hz=args.telemetry_hz,
            drone_ids=drone_ids,
            fc=getattr(args, "fc", "sim"),
            sim_epoch=args.sim_epoch,
        )
    except ConfigError as exc:
        problems.extend(exc.problems)
    parsed = None  # fleet_config reports a bad URL; the credentials and TLS files need it too
    with contextlib.suppress(BrokerUrlError):
        parsed = BrokerUrl.parse(args.broker or "")
    url = connection(args, problems, parsed)
    problems = report(args, problems)
    if problems or config is None or url is None:
        problems_reported(args.command, problems)
        return None
    return replace(config, broker=url)
