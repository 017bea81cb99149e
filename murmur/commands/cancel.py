"""`murmur cancel`: ask to cancel a delivery; its status says whether it was granted."""

import argparse

from murmur import checks
from murmur.commands import Subcommands
from murmur.config import add_config_option
from murmur.connection import add_broker_options, broker_url
from murmur.running import problems_reported, run_against_broker


def add_parser(commands: Subcommands) -> None:
    """Add `murmur cancel`."""
    cancel = commands.add_parser("cancel", help="ask to cancel a delivery")
    cancel.add_argument("delivery_id", metavar="DELIVERY_ID")
    add_broker_options(cancel)
    cancel.add_argument("--reason")
    add_config_option(cancel, example="client.toml")
    cancel.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Publish the cancellation request (done once the broker acknowledged it)."""
    from bus.client import connect  # noqa: PLC0415 - lazy by design
    from bus.transport import open_transport  # noqa: PLC0415
    from contracts.events import DeliveryCancellationRequested  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems)
    checks.delivery_id(args.delivery_id, problems)
    if problems or url is None:
        return problems_reported("cancel", problems)

    async def cancel() -> int:
        event = DeliveryCancellationRequested(delivery_id=args.delivery_id, reason=args.reason)
        async with connect(open_transport(url), root=args.root) as client:
            await client.publish(event, correlationid=args.delivery_id)
        print(
            f"cancellation of {args.delivery_id} requested; its status says whether it was granted"
        )
        return 0

    return run_against_broker("cancel", cancel())
