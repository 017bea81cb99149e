"""`murmur broker`: the embedded MQTT broker (amqtt), in development or production mode."""

import argparse
import asyncio
import sys
from pathlib import Path

from murmur.commands import Subcommands
from murmur.running import FAILED, problems_reported

_CREATE = "create logins with `murmur creds add LOGIN --role ROLE --credentials DIR`"


def add_parser(commands: Subcommands) -> None:
    """Add `murmur broker`."""
    broker = commands.add_parser("broker", help="run the embedded MQTT broker (amqtt)")
    broker.add_argument("--host", default="127.0.0.1", help="address to listen on")
    broker.add_argument("--port", type=int, default=1883, help="port (default %(default)s)")
    broker.add_argument(
        "--credentials",
        type=Path,
        metavar="DIR",
        help="credentials directory (`murmur creds`): passwords checked, topic rights enforced; "
        "required unless --host is loopback, where without it any user name is let in to any "
        "topic (development only)",
    )
    broker.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; off loopback only with credentials."""
    from broker.amqtt_server import PortInUseError, is_loopback, serve  # noqa: PLC0415 - lazy
    from broker.credentials import CredentialsError, read_credentials  # noqa: PLC0415

    password_file, roles = None, None
    if args.credentials is not None:
        try:
            credentials = read_credentials(args.credentials)
        except CredentialsError as exc:
            return problems_reported("broker", [f"--credentials: {exc}"])
        if not credentials.roles:
            return problems_reported(
                "broker", [f"--credentials: {args.credentials}: no logins; {_CREATE}"]
            )
        password_file, roles = credentials.password_file, credentials.roles
        mode = f"{len(roles)} login{'s' if len(roles) > 1 else ''} from {args.credentials}"
    elif is_loopback(args.host):
        mode = "development mode: any user name, any topic"
    else:
        why = (
            f"--host {args.host}: other machines could connect, so it needs --credentials DIR, "
            f"the passwords and topic rights of every login; {_CREATE} (docs/security.md)"
        )
        return problems_reported("broker", [why])
    where = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"murmur broker: embedded amqtt broker on mqtt://{where}:{args.port} ({mode}; Ctrl-C stops)"
    )
    try:
        asyncio.run(serve(host=args.host, port=args.port, password_file=password_file, roles=roles))
    except PortInUseError as exc:
        print(f"murmur broker: {exc}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        pass
    return 0
