"""`murmur bench`: throughput, latency and fleet scale next to a raw paho baseline."""

import argparse
from pathlib import Path

from murmur.commands import Subcommands
from murmur.connection import add_connection_options, broker_url
from murmur.running import problems_reported, run_against_broker


def add_parser(commands: Subcommands) -> None:
    """Add `murmur bench`."""
    bench = commands.add_parser(
        "bench", help="measure throughput, latency and fleet scale next to a raw paho baseline"
    )
    where = bench.add_mutually_exclusive_group()
    where.add_argument("--broker", help="measure against this broker")
    where.add_argument(
        "--embedded", action="store_true", help="start the embedded amqtt broker (the default)"
    )
    where.add_argument("--mosquitto", action="store_true", help="start a private Mosquitto")
    bench.add_argument("--quick", action="store_true", help="small counts: under a minute")
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    bench.add_argument("--only", help="comma-separated sections: raw, choreography, fleet")
    add_connection_options(bench)
    bench.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the sections against one broker and print the table."""
    from benchmarks.harness import MOSQUITTO, SECTIONS, Target, main  # noqa: PLC0415 - measuring

    problems: list[str] = []
    target: Target = MOSQUITTO if args.mosquitto else None
    if args.broker:
        target = broker_url(args, problems)
    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None
    problems.extend(
        f"--only: {name!r} is not one of {', '.join(SECTIONS)}"
        for name in sorted(only or set())
        if name not in SECTIONS
    )
    if problems:
        return problems_reported("bench", problems)
    return run_against_broker(
        "bench", main(target, quick=args.quick, json_path=args.json, only=only)
    )
