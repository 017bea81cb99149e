"""Command-line entry point. Each command imports its part only when it runs.

So `murmur agent` on a Raspberry Pi never imports the embedded broker or the console.
"""

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from contracts import DEFAULT_ROOT
from murmur.config import add_config_option, instant, report
from murmur.connection import add_connection_options, broker_url
from murmur.creds import add_creds_command

Command = Callable[[argparse.Namespace], int]
INTERRUPTED = 130  # the shell's exit code for a process ended by Ctrl-C
MAX_PORT = 65535


def _contract(args: argparse.Namespace) -> int:
    from contracts.asyncapi import asyncapi_document  # noqa: PLC0415 - lazy by design

    print(json.dumps(asyncapi_document(root=args.root), indent=2))
    return 0


def _broker(args: argparse.Namespace) -> int:
    from broker.amqtt_server import PortInUseError, is_loopback, serve  # noqa: PLC0415 - lazy
    from broker.credentials import CredentialsError, read_credentials  # noqa: PLC0415

    create = "create logins with `murmur creds add LOGIN --role ROLE --credentials DIR`"
    password_file, roles = None, None
    if args.credentials is not None:
        try:
            credentials = read_credentials(args.credentials)
        except CredentialsError as exc:
            return _problems("broker", [f"--credentials: {exc}"])
        if not credentials.roles:
            return _problems("broker", [f"--credentials: {args.credentials}: no logins; {create}"])
        password_file, roles = credentials.password_file, credentials.roles
        mode = f"{len(roles)} login{'s' if len(roles) > 1 else ''} from {args.credentials}"
    elif is_loopback(args.host):
        mode = "development mode: any user name, any topic"
    else:
        why = (
            f"--host {args.host}: other machines could connect, so it needs --credentials DIR, "
            f"the passwords and topic rights of every login; {create} (docs/security.md)"
        )
        return _problems("broker", [why])
    where = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"murmur broker: embedded amqtt broker on mqtt://{where}:{args.port} ({mode}; Ctrl-C stops)"
    )
    try:
        asyncio.run(serve(host=args.host, port=args.port, password_file=password_file, roles=roles))
    except PortInUseError as exc:
        print(f"murmur broker: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _run_until_signalled(main: Coroutine[Any, Any, None]) -> None:
    """Run `main`; SIGINT or SIGTERM cancels it, so it can say goodbye on the bus."""

    async def runner() -> None:
        task = asyncio.create_task(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(runner())


def _fleet(
    args: argparse.Namespace, drone_ids: list[str], problems: list[str] | None = None
) -> Any:  # noqa: ANN401 - FleetConfig, or None once every problem is printed
    from dataclasses import replace  # noqa: PLC0415

    from bus.url import BrokerUrl, BrokerUrlError  # noqa: PLC0415
    from drone_agent.main import ConfigError, fleet_config  # noqa: PLC0415 - lazy by design
    from murmur.connection import connection  # noqa: PLC0415

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
        _problems(args.command, problems)
        return None
    return replace(config, broker=url)


def _agent(args: argparse.Namespace) -> int:
    from drone_agent.main import run_fleet  # noqa: PLC0415 - lazy by design

    config = _fleet(args, [args.drone_id or ""])
    if config is None:
        return 2
    _run_until_signalled(run_fleet(config, {args.drone_id: config.home}, snapshot=True))
    return 0


def _sim(args: argparse.Namespace) -> int:
    from dataclasses import replace  # noqa: PLC0415

    from drone_agent.main import run_fleet, spread_homes  # noqa: PLC0415 - lazy by design

    drones = args.drones or 0  # None: missing, which layering reported
    problems = [] if drones >= 1 else [f"--drones: at least 1, got {drones}"]
    if args.mavlink and not 1 <= args.mavlink_port <= MAX_PORT - max(drones, 1):
        problems.append(
            f"--mavlink-port: 1..{MAX_PORT - max(drones, 1)} for {drones} drones, "
            f"got {args.mavlink_port}"
        )
    ids = [f"d-{i:03d}" for i in range(1, drones + 1)]
    passwords = _drone_passwords(args, ids, problems)
    config = _fleet(args, ids, problems)
    if config is None:
        return 2
    config = replace(config, passwords=passwords)
    homes = spread_homes(config.home, len(ids), spread_km=args.spread_km, seed=args.seed)
    if args.mavlink:
        print(
            f"murmur sim: vehicle i's MAVLink endpoint on udp 127.0.0.1:{args.mavlink_port}+i "
            f"(d-001 on {args.mavlink_port + 1})",
            flush=True,
        )
    _run_until_signalled(
        run_fleet(
            config,
            dict(zip(ids, homes, strict=True)),
            snapshot=False,
            mavlink_base_port=args.mavlink_port if args.mavlink else None,
        )
    )
    return 0


def _drone_passwords(
    args: argparse.Namespace, ids: list[str], problems: list[str]
) -> dict[str, str]:
    """Each drone's own password, from `--password-dir`: the first line of DIR/<drone id>."""
    from broker.credentials import CredentialsError, read_secret  # noqa: PLC0415
    from bus.url import BrokerUrl, BrokerUrlError  # noqa: PLC0415

    directory: Path | None = args.password_dir
    if directory is None:
        return {}
    url = None
    with contextlib.suppress(BrokerUrlError):  # a bad URL is reported with the fleet's settings
        url = BrokerUrl.parse(args.broker or "")
    if args.username or (url is not None and url.username):
        problems.append(
            "--password-dir: each drone logs in as itself, with its drone id; "
            "drop --username and the broker URL's user name"
        )
    if args.password_file or (url is not None and url.password):
        problems.append(
            "--password-dir: each drone has a password of its own; "
            "drop --password-file and the broker URL's password"
        )
    if not directory.is_dir():
        problems.append(f"--password-dir: {directory}: no such directory")
        return {}
    passwords = {}
    for drone_id in ids:
        try:
            passwords[drone_id] = read_secret(directory / drone_id)
        except CredentialsError as exc:
            problems.append(f"--password-dir: {exc}")
    return passwords


def _problems(command: str, problems: list[str]) -> int:
    for problem in problems:
        print(f"murmur {command}: {problem}", file=sys.stderr)
    return 2


def _positive(args: argparse.Namespace, names: Sequence[str], problems: list[str]) -> None:
    for name in names:
        value = getattr(args, name.lstrip("-").replace("-", "_"))
        if not (math.isfinite(value) and value > 0):
            problems.append(f"{name}: must be a positive number, got {value}")


def _service(args: argparse.Namespace) -> int:
    from bus.transport import open_transport  # noqa: PLC0415
    from cloud.package.rules import PackagePolicy  # noqa: PLC0415 - lazy by design
    from cloud.scheduler.service import SchedulerSettings  # noqa: PLC0415
    from cloud.services import CloudSettings, build_service  # noqa: PLC0415
    from contracts.ids import PackageSize  # noqa: PLC0415
    from flight_model.clock import ScaledClock  # noqa: PLC0415
    from murmur.config import missing  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems)
    if args.db is None and args.service in {"package", "scheduler", "delivery"}:
        problems.append(missing(args, "db"))
    numbers = ["--speedup", "--max-weight-kg", "--offer-timeout", "--step-timeout"]
    _positive(args, [*numbers, "--stale-after", "--assign-within"], problems)
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
        return _problems(f"service {args.service}", problems)
    if args.service == "ingestion":
        return _ingestion(args, url)
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
        transport=open_transport(url),
        db_path=args.db,
        clock=ScaledClock.anchored(args.speedup, args.sim_epoch),
        settings=settings,
        root=args.root,
    )
    _run_until_signalled(service.run())
    return 0


def _ingestion(args: argparse.Namespace, url: Any) -> int:  # noqa: ANN401 - BrokerUrl
    from bus.transport import open_transport  # noqa: PLC0415
    from cloud.ingestion.server import serve  # noqa: PLC0415 - lazy by design

    def on_ready(port: int) -> None:
        print(f"murmur service ingestion: http://{args.host}:{port} (OpenAPI at /docs)", flush=True)

    try:
        _run_until_signalled(
            serve(
                open_transport(url),
                host=args.host,
                port=args.port,
                root=args.root,
                on_ready=on_ready,
            )
        )
    except OSError as exc:
        print(
            f"murmur service ingestion: --port {args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    return 0


_REQUEST_FLAGS = {
    "weight_kg": "--weight",
    "size": "--size",
    "tag": "--tag",
    "package_id": "--id",
    "owner_id": "--owner",
    "delivery_id": "--id",
    "deadline": "--deadline",
}


def _status_line(status: Any, *, as_json: bool) -> str:  # noqa: ANN401 - DeliveryStatusChanged
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


def _request(args: argparse.Namespace) -> int:
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
            problems.append(f"{_REQUEST_FLAGS.get(field, field)}: {error['msg']}")
    if problems or request is None:
        return _problems("request", problems)
    return _with_broker("request", _request_and_follow(args, url, request))


async def _request_and_follow(args: argparse.Namespace, url: Any, request: Any) -> int:  # noqa: ANN401
    from bus.client import connect  # noqa: PLC0415
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
                print(_status_line(status, as_json=args.json), flush=True)
                if status.stage in TERMINAL_STAGES:
                    return 0 if status.stage is DeliveryStage.DELIVERED else 1
    return 1


def _check_delivery_id(delivery_id: str, problems: list[str]) -> None:
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    from contracts.ids import TopicId  # noqa: PLC0415

    try:
        TypeAdapter(TopicId).validate_python(delivery_id)
    except ValidationError:
        problems.append(f"DELIVERY_ID: {delivery_id!r} is not a delivery id")


def _cancel(args: argparse.Namespace) -> int:
    from bus.client import connect  # noqa: PLC0415
    from bus.transport import open_transport  # noqa: PLC0415
    from contracts.events import DeliveryCancellationRequested  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems)
    _check_delivery_id(args.delivery_id, problems)
    if problems or url is None:
        return _problems("cancel", problems)

    async def cancel() -> int:
        cancel = DeliveryCancellationRequested(delivery_id=args.delivery_id, reason=args.reason)
        async with connect(open_transport(url), root=args.root) as client:
            await client.publish(cancel, correlationid=args.delivery_id)
        print(
            f"cancellation of {args.delivery_id} requested; its status says whether it was granted"
        )
        return 0

    return _with_broker("cancel", cancel())


def _monitor(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415

    from bus.transport import open_transport  # noqa: PLC0415
    from cloud.monitor.watch import watch  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems)
    if problems or url is None:
        return _problems("monitor", problems)

    async def monitor() -> int:
        await watch(open_transport(url), root=args.root, console=Console(), once=args.once)
        return 0

    code = _with_broker("monitor", monitor())
    return 0 if code == INTERRUPTED else code  # Ctrl-C is how a live monitor ends


def _trace(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415

    from bus.client import connect  # noqa: PLC0415
    from bus.transport import open_transport  # noqa: PLC0415
    from contracts.events import DeliveryTraced, DeliveryTraceRequested  # noqa: PLC0415
    from murmur.trace import causal_tree  # noqa: PLC0415

    async def request_trace(client: Any, delivery_id: str) -> DeliveryTraced:  # noqa: ANN401
        await client.subscribe(DeliveryTraced, delivery_id=delivery_id)
        request_id = f"tr-{uuid.uuid4().hex[:16]}"
        await client.publish(DeliveryTraceRequested(delivery_id=delivery_id, request_id=request_id))
        async for envelope in client.events():
            data = envelope.data
            if isinstance(data, DeliveryTraced) and data.request_id == request_id:
                return data
        raise AssertionError("unreachable: events() ends only by raising")

    problems: list[str] = []
    url = broker_url(args, problems)
    _check_delivery_id(args.delivery_id, problems)
    _positive(args, ["--timeout"], problems)
    if problems or url is None:
        return _problems("trace", problems)

    async def trace() -> int:
        async with connect(open_transport(url), root=args.root) as client:
            try:
                async with asyncio.timeout(args.timeout):
                    traced = await request_trace(client, args.delivery_id)
            except TimeoutError:
                print(
                    f"murmur trace: no answer within {args.timeout:g} s;"
                    " is the Delivery service running?",
                    file=sys.stderr,
                )
                return 1
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
        return 0 if traced.entries else 1

    return _with_broker("trace", trace())


def _bench(args: argparse.Namespace) -> int:
    from benchmarks.harness import MOSQUITTO, SECTIONS, Target, main  # noqa: PLC0415 - lazy

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
        return _problems("bench", problems)
    return _with_broker("bench", main(target, quick=args.quick, json_path=args.json, only=only))


def _with_broker(command: str, main: Coroutine[Any, Any, int]) -> int:
    from bus.errors import TransportError  # noqa: PLC0415

    try:
        return asyncio.run(main)
    except TransportError as exc:
        print(f"murmur {command}: broker unreachable or refused: {exc}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"murmur {command}: no terminal stage within --timeout", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED


def _up_config(args: argparse.Namespace) -> Any:  # noqa: ANN401 - UpConfig, or None
    from contracts.ids import parse_location  # noqa: PLC0415
    from murmur.up import UpConfig  # noqa: PLC0415

    problems: list[str] = []
    url = broker_url(args, problems) if args.broker else None
    home = parse_location(args.home, "--home", problems)
    _positive(args, ["--speedup", "--spread-km"], problems)
    if args.drones < 1:
        problems.append(f"--drones: at least 1, got {args.drones}")
    if args.deliveries < 0:
        problems.append(f"--deliveries: at least 0, got {args.deliveries}")
    if not (math.isfinite(args.demand) and args.demand >= 0):
        problems.append(f"--demand: must be a number of requests per hour >= 0, got {args.demand}")
    elif args.demand and args.until_idle:
        problems.append("--demand: requests never stop, so --until-idle would never end")
    if problems:
        _problems("up", problems)
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


def _up(args: argparse.Namespace) -> int:
    from murmur.up import run_up  # noqa: PLC0415

    config = _up_config(args)
    if config is None:
        return 2
    live = sys.stdout.isatty() and not (args.no_ui or args.json)
    quiet = live or (args.json and args.until_idle)

    def on_status(status: Any) -> None:  # noqa: ANN401 - DeliveryStatusChanged
        if not quiet:
            print(_status_line(status, as_json=args.json), flush=True)

    def on_ready(broker: Any) -> None:  # noqa: ANN401 - BrokerUrl
        if not args.json:
            print(f"murmur up: {args.drones} drones on {broker} (Ctrl-C stops)", flush=True)

    async def console(broker: Any, run_prefix: str) -> None:  # noqa: ANN401 - BrokerUrl
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
        _run_until_signalled(main())
    except* TimeoutError:
        unreachable = True
    if unreachable:
        where = config.broker or "the embedded broker"
        print(f"murmur up: not every part connected to {where} in time", file=sys.stderr)
        return 1
    return _up_summary(args, summary)


def _up_summary(args: argparse.Namespace, summary: dict[str, Any]) -> int:
    if not summary:
        return INTERRUPTED if args.until_idle else 0
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
    delivered = summary["deliveries"]["by_stage"].get("Delivered", 0)
    return 0 if delivered == summary["deliveries"]["total"] else 1


def _add_fleet_options(command: argparse.ArgumentParser, *, state_dir: str) -> None:
    command.add_argument("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port]")
    add_connection_options(command)
    command.add_argument("--home", default="47.3769,8.5417", help="LAT,LON (default Zurich)")
    command.add_argument("--speedup", type=float, default=1.0, help="simulated time factor")
    _add_sim_epoch(command)
    command.add_argument(
        "--max-payload-kg", type=float, default=2.5, help="heaviest package carried (kg)"
    )
    command.add_argument(
        "--telemetry-hz", type=float, default=1.0, help="telemetry reports per second (max 50)"
    )
    command.add_argument(
        "--state-dir", type=Path, default=Path(state_dir), help="SQLite files (default %(default)s)"
    )


def _add_sim_epoch(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--sim-epoch",
        type=instant,
        metavar="TIME",
        help="with --speedup: when simulated and real time coincided (ISO 8601 with a zone); "
        "processes of one simulated run given the same epoch agree on the time, and a restarted "
        "one carries on (default: when this process starts)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="murmur", description="Drone delivery by choreography over MQTT."
    )
    parser.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one object per line with time, level, logger, message, delivery_id",
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
        metavar="DIR",
        help="credentials directory (`murmur creds`): passwords checked, topic rights enforced; "
        "required unless --host is loopback, where without it any user name is let in to any "
        "topic (development only)",
    )
    broker.set_defaults(run=_broker)

    agent = commands.add_parser("agent", help="run one drone agent")
    agent.add_argument("--drone-id", required=True, help="this drone's id (one topic level)")
    agent.add_argument(
        "--fc",
        default="sim",
        help="flight controller: sim, or mavlink:CONNECTION with CONNECTION one of "
        "udpin:HOST:PORT, udpout:HOST:PORT, tcp:HOST:PORT, serial:DEVICE[:BAUD]",
    )
    _add_fleet_options(agent, state_dir="var/agent")
    add_config_option(agent, example="agent.toml", reports=True)  # last: relaxes required
    agent.set_defaults(run=_agent)

    sim = commands.add_parser("sim", help="run N simulated drones, each with its own agent")
    sim.add_argument("--drones", type=int, required=True, help="how many")
    sim.add_argument("--spread-km", type=float, default=3.0, help="homes scattered this far")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument(
        "--mavlink",
        action="store_true",
        help="agents fly their vehicles over MAVLink (UDP), through endpoints a ground "
        "station can join too",
    )
    sim.add_argument(
        "--mavlink-port", type=int, default=14580, help="vehicle i's endpoint is this port + i"
    )
    _add_fleet_options(sim, state_dir="var/sim")
    sim.add_argument(
        "--password-dir",
        type=Path,
        metavar="DIR",
        help="each drone's own MQTT password: the first line of DIR/<drone id> (it logs in with "
        "its drone id)",
    )
    add_config_option(sim, example="sim.toml", reports=True)
    sim.set_defaults(run=_sim)

    _add_cloud_commands(commands)
    _add_operator_commands(commands)
    add_creds_command(commands)
    return parser


def _add_service_command(commands: Any) -> None:  # noqa: ANN401 - argparse's private type
    service = commands.add_parser("service", help="run one cloud service")
    service.add_argument("service", choices=["package", "scheduler", "delivery", "ingestion"])
    service.add_argument("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port]")
    add_connection_options(service)
    service.add_argument(
        "--db", type=Path, help="the service's SQLite file (package, scheduler, delivery)"
    )
    service.add_argument("--root", default=DEFAULT_ROOT, help="topic root (default %(default)s)")
    service.add_argument(
        "--speedup", type=float, default=1.0, help="clock factor, to match a simulated fleet"
    )
    _add_sim_epoch(service)
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
    service.set_defaults(run=_service)


def _add_cloud_commands(commands: Any) -> None:  # noqa: ANN401 - argparse's private type
    _add_service_command(commands)

    request = commands.add_parser("request", help="request a delivery (and follow it)")
    request.add_argument("--broker", required=True, help="mqtt://user:password@host:port")
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
    request.add_argument("--root", default=DEFAULT_ROOT, help="topic root (default %(default)s)")
    add_connection_options(request)
    add_config_option(request, example="client.toml")
    request.set_defaults(run=_request)

    cancel = commands.add_parser("cancel", help="ask to cancel a delivery")
    cancel.add_argument("delivery_id", metavar="DELIVERY_ID")
    cancel.add_argument("--broker", required=True, help="mqtt://user:password@host:port")
    cancel.add_argument("--reason")
    cancel.add_argument("--root", default=DEFAULT_ROOT, help="topic root (default %(default)s)")
    add_connection_options(cancel)
    add_config_option(cancel, example="client.toml")
    cancel.set_defaults(run=_cancel)

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
    up.set_defaults(run=_up)


def _add_operator_commands(commands: Any) -> None:  # noqa: ANN401 - argparse's private type
    monitor = commands.add_parser("monitor", help="watch drones and deliveries on any broker")
    monitor.add_argument("--broker", required=True, help="mqtt://user:password@host:port")
    monitor.add_argument("--once", action="store_true", help="print one frame and exit")
    monitor.add_argument("--root", default=DEFAULT_ROOT, help="topic root (default %(default)s)")
    add_connection_options(monitor)
    add_config_option(monitor, example="monitor.toml")
    monitor.set_defaults(run=_monitor)

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
    bench.set_defaults(run=_bench)

    trace = commands.add_parser("trace", help="print one delivery's events as a causal tree")
    trace.add_argument("delivery_id", metavar="DELIVERY_ID")
    trace.add_argument("--broker", required=True, help="mqtt://user:password@host:port")
    trace.add_argument("--timeout", type=float, default=10.0, help="wait this long for an answer")
    trace.add_argument("--json", action="store_true", help="the entries as one JSON array")
    trace.add_argument("--root", default=DEFAULT_ROOT, help="topic root (default %(default)s)")
    add_connection_options(trace)
    add_config_option(trace, example="client.toml")
    trace.set_defaults(run=_trace)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `murmur` command; returns the process exit code.

    Settings of commands with `--config` are layered first (file, then `MURMUR_*`
    variables, then flags; see murmur/config.py): every problem is printed, exit code 2.
    """
    from murmur.config import deferred, layer  # noqa: PLC0415
    from murmur.logs import configure  # noqa: PLC0415

    parser = _parser()
    args = parser.parse_args(argv)
    problems = layer(parser, argv, args)
    if problems and not deferred(args):  # a command that reports them checks its own too
        return _problems(args.command, problems)
    configure(args.log_level, args.log_format)
    run: Command = args.run
    return run(args)
