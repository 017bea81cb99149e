"""Command-line entry point. Each command imports its part only when it runs.

So `murmur agent` on a Raspberry Pi never imports the embedded broker or the console.
"""

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from contracts import DEFAULT_ROOT

Command = Callable[[argparse.Namespace], int]


def _contract(args: argparse.Namespace) -> int:
    from contracts.asyncapi import asyncapi_document  # noqa: PLC0415 - lazy by design

    print(json.dumps(asyncapi_document(root=args.root), indent=2))
    return 0


def _broker(args: argparse.Namespace) -> int:
    from broker.amqtt_server import PortInUseError, serve  # noqa: PLC0415 - lazy by design

    if args.credentials is not None and not args.credentials.is_file():
        print(f"murmur broker: --credentials {args.credentials}: no such file", file=sys.stderr)
        return 2
    print(f"murmur broker: embedded amqtt broker on mqtt://{args.host}:{args.port} (Ctrl-C stops)")
    try:
        asyncio.run(serve(host=args.host, port=args.port, password_file=args.credentials))
    except PortInUseError as exc:
        print(f"murmur broker: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="murmur", description="Drone delivery by choreography over MQTT."
    )
    parser.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    contract = commands.add_parser(
        "contract", help="print the published contract as an AsyncAPI 3.0 document (JSON)"
    )
    contract.add_argument("--root", default=DEFAULT_ROOT, help="topic root (default %(default)s)")
    contract.set_defaults(run=_contract)

    broker = commands.add_parser("broker", help="run the embedded MQTT broker (amqtt)")
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on")
    broker.add_argument("--port", type=int, default=1883, help="port (default %(default)s)")
    broker.add_argument(
        "--credentials",
        type=Path,
        help="Mosquitto-format password file; without it any client that sends a username "
        "is let in (development only)",
    )
    broker.set_defaults(run=_broker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `murmur` command; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run: Command = args.run
    return run(args)
