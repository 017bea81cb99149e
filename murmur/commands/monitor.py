"""`murmur monitor`: the live console against any broker, read-only."""

import argparse

from murmur.commands import Subcommands
from murmur.config import add_config_option
from murmur.connection import add_broker_options, broker_url
from murmur.running import INTERRUPTED, problems_reported, run_against_broker


def add_parser(commands: Subcommands) -> None:
    """Add `murmur monitor`."""
    monitor = commands.add_parser("monitor", help="watch drones and deliveries on any broker")
    add_broker_options(monitor)
    monitor.add_argument("--once", action="store_true", help="print one frame and exit")
    add_config_option(monitor, example="monitor.toml")
    monitor.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Draw until Ctrl-C, or one frame with `--once`."""
    from rich.console import Console  # noqa: PLC0415 - lazy by design

    from bus.transport import open_transport  # noqa: PLC0415
    from cloud.monitor.watch import watch  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems)
    if problems or url is None:
        return problems_reported("monitor", problems)

    async def monitor() -> int:
        await watch(open_transport(url), root=args.root, console=Console(), once=args.once)
        return 0

    code = run_against_broker("monitor", monitor())
    return 0 if code == INTERRUPTED else code  # Ctrl-C is how a live monitor ends
