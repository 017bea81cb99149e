"""`murmur request`: publish a delivery request, and with `--follow` print its status changes."""

import argparse
import asyncio
import json
from typing import TYPE_CHECKING

from murmur.commands import Subcommands
from murmur.config import add_config_option
from murmur.connection import add_broker_options, broker_url
from murmur.running import problems_reported, run_against_broker

if TYPE_CHECKING:
    from bus.url import BrokerUrl
    from contracts.events import DeliveryRequested, DeliveryStatusChanged

# The request's fields, by the flag that sets each: a validation error names the flag.
_FLAGS = {
    "weight_kg": "--weight",
    "size": "--size",
    "tag": "--tag",
    "package_id": "--id",
    "owner_id": "--owner",
    "delivery_id": "--id",
    "deadline": "--deadline",
}


def add_parser(commands: Subcommands) -> None:
    """Add `murmur request`."""
    request = commands.add_parser("request", help="request a delivery (and follow it)")
    add_broker_options(request)
    request.add_argument("--pickup", required=True, help="LAT,LON")
    request.add_argument("--dropoff", required=True, help="LAT,LON")
    request.add_argument("--weight", type=float, required=True, help="package weight in kg")
    request.add_argument("--size", default="small", choices=["small", "medium", "large"])
    request.add_argument("--deadline", help="ISO 8601 with a time zone")
    request.add_argument("--tag", help="package tag (e.g. fragile)")
    request.add_argument("--owner", default="cli", help="owner id")
    request.add_argument("--id", help="delivery id (default: a new one)")
    request.add_argument("--follow", action="store_true", help="print each status change")
    request.add_argument("--json", action="store_true", help="one JSON object per line")
    request.add_argument("--timeout", type=float, help="give up following after S seconds")
    add_config_option(request, example="client.toml")
    request.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Check every flag, then request (and follow)."""
    from datetime import datetime  # noqa: PLC0415

    from pydantic import ValidationError  # noqa: PLC0415

    from contracts.ids import PackageSize, parse_location  # noqa: PLC0415
    from contracts.requests import delivery_request  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems)
    pickup = parse_location(args.pickup, "--pickup", problems)
    dropoff = parse_location(args.dropoff, "--dropoff", problems)
    deadline = None
    if args.deadline is not None:
        try:
            deadline = datetime.fromisoformat(args.deadline)
        except ValueError:
            problems.append(f"--deadline: {args.deadline!r} is not an ISO 8601 time")
        else:
            if deadline.tzinfo is None:
                problems.append(f"--deadline: {args.deadline!r} needs a time zone (Z or +hh:mm)")
    request = None
    try:
        request = delivery_request(
            pickup=pickup,
            dropoff=dropoff,
            weight_kg=args.weight,
            size=PackageSize(args.size),
            deadline=deadline if deadline and deadline.tzinfo else None,
            owner_id=args.owner,
            tag=args.tag,
            delivery_id=args.id,
        )
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][-1]) if error["loc"] else "request"
            problems.append(f"{_FLAGS.get(field, field)}: {error['msg']}")
    if problems or request is None or url is None:
        return problems_reported("request", problems)
    return run_against_broker("request", _request_and_follow(args, url, request))


async def _request_and_follow(
    args: argparse.Namespace, url: "BrokerUrl", request: "DeliveryRequested"
) -> int:
    from bus.client import connect  # noqa: PLC0415 - lazy by design
    from bus.transport import open_transport  # noqa: PLC0415
    from contracts.events import DeliveryStatusChanged  # noqa: PLC0415
    from contracts.states import TERMINAL_STAGES, DeliveryStage  # noqa: PLC0415

    async with connect(open_transport(url), root=args.root) as client:
        if args.follow:
            await client.subscribe(DeliveryStatusChanged, delivery_id=request.delivery_id)
        await client.publish(request, correlationid=request.delivery_id)
        if not args.follow:
            if args.json:
                print(json.dumps({"delivery_id": request.delivery_id, "stage": "Requested"}))
            else:
                print(request.delivery_id)
            return 0
        async with asyncio.timeout(args.timeout):
            async for envelope in client.events():
                status = envelope.data
                if not isinstance(status, DeliveryStatusChanged):
                    continue
                print(status_line(status, as_json=args.json), flush=True)
                if status.stage in TERMINAL_STAGES:
                    return 0 if status.stage is DeliveryStage.DELIVERED else 1
    return 1


def status_line(status: "DeliveryStatusChanged", *, as_json: bool) -> str:
    """One status change as a line: words, or one JSON object."""
    if as_json:
        return str(status.model_dump_json(exclude_none=True))
    parts = [f"{status.delivery_id}  v{status.version}  {status.stage.value}"]
    if status.drone_id:
        parts.append(f"drone {status.drone_id}")
    if status.eta:
        parts.append(f"eta {status.eta:%H:%M:%S}")
    if status.reason:
        parts.append(f"({status.reason})")
    return "  ".join(parts)
