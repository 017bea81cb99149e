"""`murmur service package|scheduler|delivery|ingestion`: one cloud service as its own process."""

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from murmur.checks import MAX_PORT, positive
from murmur.commands import Subcommands
from murmur.config import add_config_option, missing, report
from murmur.connection import add_broker_options, broker_url
from murmur.fleet_options import add_sim_epoch
from murmur.running import FAILED, problems_reported, run_until_signalled

if TYPE_CHECKING:
    from bus.transport import Transport


def add_parser(commands: Subcommands) -> None:
    """Add `murmur service`."""
    service = commands.add_parser("service", help="run one cloud service")
    service.add_argument("service", choices=["package", "scheduler", "delivery", "ingestion"])
    add_broker_options(service)
    service.add_argument(
        "--db", type=Path, help="the service's SQLite file (package, scheduler, delivery)"
    )
    service.add_argument(
        "--speedup", type=float, default=1.0, help="clock factor, to match a simulated fleet"
    )
    add_sim_epoch(service)
    service.add_argument("--max-weight-kg", type=float, default=2.5, help="package: heaviest")
    service.add_argument("--sizes", default="small,medium", help="package: sizes carried")
    service.add_argument(
        "--refuse-tags", default="hazmat,lithium-bulk,live-animal", help="package: tags refused"
    )
    service.add_argument("--offer-timeout", type=float, default=10.0, help="scheduler: s")
    service.add_argument("--step-timeout", type=float, default=1800.0, help="scheduler: s")
    service.add_argument("--stale-after", type=float, default=15.0, help="scheduler: s")
    service.add_argument("--assign-within", type=float, default=4 * 3600.0, help="scheduler: s")
    service.add_argument("--host", default="127.0.0.1", help="ingestion: HTTP address")
    service.add_argument("--port", type=int, default=8080, help="ingestion: HTTP port (0: any)")
    # Last: it turns the required flags above into settings required from any layer.
    add_config_option(service, example="service.toml", reports=True)
    service.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    from bus.transport import open_transport  # noqa: PLC0415 - lazy by design
    from cloud.package.rules import PackagePolicy  # noqa: PLC0415
    from cloud.scheduler.service import SchedulerSettings  # noqa: PLC0415
    from cloud.services import CloudSettings, build_service  # noqa: PLC0415
    from contracts.ids import PackageSize  # noqa: PLC0415
    from flight_model.clock import ScaledClock  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems)
    if args.db is None and args.service in {"package", "scheduler", "delivery"}:
        problems.append(missing(args, "db"))
    numbers = ["--speedup", "--max-weight-kg", "--offer-timeout", "--step-timeout"]
    positive(args, [*numbers, "--stale-after", "--assign-within"], problems)
    sizes = []
    for size in args.sizes.split(","):
        try:
            sizes.append(PackageSize(size.strip()))
        except ValueError:
            problems.append(f"--sizes: {size!r} is not one of small, medium, large")
    if not 0 <= args.port <= MAX_PORT:
        problems.append(f"--port: must be 0..{MAX_PORT}, got {args.port}")
    problems = report(args, problems)
    if problems or url is None:
        return problems_reported(f"service {args.service}", problems)
    transport = open_transport(url)
    if args.service == "ingestion":
        return _ingestion(args, transport)
    settings = CloudSettings(
        package=PackagePolicy(
            max_weight_kg=args.max_weight_kg,
            sizes=frozenset(sizes),
            refused_tags=frozenset(
                t.strip().lower() for t in args.refuse_tags.split(",") if t.strip()
            ),
        ),
        scheduler=SchedulerSettings(
            offer_timeout_s=args.offer_timeout,
            step_timeout_s=args.step_timeout,
            stale_after_s=args.stale_after,
            assign_within_s=args.assign_within,
        ),
    )
    service = build_service(
        args.service,
        transport=transport,
        db_path=args.db,
        clock=ScaledClock.anchored(args.speedup, args.sim_epoch),
        settings=settings,
        root=args.root,
    )
    run_until_signalled(service.run())
    return 0


def _ingestion(args: argparse.Namespace, transport: "Transport") -> int:
    from cloud.ingestion.server import serve  # noqa: PLC0415 - lazy by design

    def on_ready(port: int) -> None:
        print(f"murmur service ingestion: http://{args.host}:{port} (OpenAPI at /docs)", flush=True)

    try:
        run_until_signalled(
            serve(transport, host=args.host, port=args.port, root=args.root, on_ready=on_ready)
        )
    except OSError as exc:
        print(
            f"murmur service ingestion: --port {args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return FAILED
    return 0
