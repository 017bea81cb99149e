"""`murmur trace`: one delivery's events as a causal tree, from the Delivery service's journal."""

import argparse
import asyncio
import json
import sys
import uuid
from typing import TYPE_CHECKING

from murmur import checks
from murmur.commands import Subcommands
from murmur.config import add_config_option
from murmur.connection import add_broker_options, broker_url
from murmur.running import FAILED, problems_reported, run_against_broker

if TYPE_CHECKING:
    from bus.client import Client
    from contracts.events import DeliveryTraced


def add_parser(commands: Subcommands) -> None:
    """Add `murmur trace`."""
    trace = commands.add_parser("trace", help="print one delivery's events as a causal tree")
    trace.add_argument("delivery_id", metavar="DELIVERY_ID")
    add_broker_options(trace)
    trace.add_argument("--timeout", type=float, default=10.0, help="wait this long for an answer")
    trace.add_argument("--json", action="store_true", help="the entries as one JSON array")
    add_config_option(trace, example="client.toml")
    trace.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Ask the Delivery service for the journal and print it."""
    from rich.console import Console  # noqa: PLC0415 - lazy by design

    from bus.client import connect  # noqa: PLC0415
    from bus.transport import open_transport  # noqa: PLC0415
    from murmur.trace import causal_tree  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems)
    checks.delivery_id(args.delivery_id, problems)
    checks.positive(args, ["--timeout"], problems)
    if problems or url is None:
        return problems_reported("trace", problems)

    async def trace() -> int:
        async with connect(open_transport(url), root=args.root) as client:
            try:
                async with asyncio.timeout(args.timeout):
                    traced = await journal(client, args.delivery_id)
            except TimeoutError:
                print(
                    f"murmur trace: no answer within {args.timeout:g} s;"
                    " is the Delivery service running?",
                    file=sys.stderr,
                )
                return FAILED
        if args.json:
            print(
                json.dumps([e.model_dump(mode="json", exclude_none=True) for e in traced.entries])
            )
        elif not traced.entries:
            print(f"murmur trace: the Delivery service knows no events of {args.delivery_id}")
        else:
            Console().print(
                causal_tree(args.delivery_id, traced.entries, truncated=traced.truncated)
            )
        return 0 if traced.entries else FAILED

    return run_against_broker("trace", trace())


async def journal(client: "Client", delivery_id: str) -> "DeliveryTraced":
    """The Delivery service's journal of one delivery: ask, and wait for the answer.

    Raises:
        TransportError: the connection was lost before the answer came.
    """
    from contracts.events import DeliveryTraced, DeliveryTraceRequested  # noqa: PLC0415

    await client.subscribe(DeliveryTraced, delivery_id=delivery_id)
    request_id = f"tr-{uuid.uuid4().hex[:16]}"
    await client.publish(DeliveryTraceRequested(delivery_id=delivery_id, request_id=request_id))
    async for envelope in client.events():
        data = envelope.data
        if isinstance(data, DeliveryTraced) and data.request_id == request_id:
            return data
    raise AssertionError("unreachable: events() ends only by raising")  # pragma: no cover
