"""Command-line entry point. Each command imports its part only when it runs.

So `murmur agent` on a Raspberry Pi never imports the embedded broker or the console.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

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


def _fleet(args: argparse.Namespace, drone_ids: list[str]) -> Any:  # noqa: ANN401 - FleetConfig
    from drone_agent.main import ConfigError, fleet_config  # noqa: PLC0415 - lazy by design

    try:
        return fleet_config(
            broker=args.broker,
            home=args.home,
            state_dir=args.state_dir,
            speedup=args.speedup,
            max_payload_kg=args.max_payload_kg,
            telemetry_hz=args.telemetry_hz,
            drone_ids=drone_ids,
        )
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"murmur {args.command}: {problem}", file=sys.stderr)
        return None


def _agent(args: argparse.Namespace) -> int:
    from drone_agent.main import run_fleet  # noqa: PLC0415 - lazy by design

    config = _fleet(args, [args.drone_id])
    if config is None:
        return 2
    _run_until_signalled(run_fleet(config, {args.drone_id: config.home}, snapshot=True))
    return 0


def _sim(args: argparse.Namespace) -> int:
    from drone_agent.main import run_fleet, spread_homes  # noqa: PLC0415 - lazy by design

    if args.drones < 1:
        print(f"murmur sim: --drones: at least 1, got {args.drones}", file=sys.stderr)
        return 2
    ids = [f"d-{i:03d}" for i in range(1, args.drones + 1)]
    config = _fleet(args, ids)
    if config is None:
        return 2
    homes = spread_homes(config.home, len(ids), spread_km=args.spread_km, seed=args.seed)
    _run_until_signalled(run_fleet(config, dict(zip(ids, homes, strict=True)), snapshot=False))
    return 0


def _add_fleet_options(command: argparse.ArgumentParser, *, state_dir: str) -> None:
    command.add_argument("--broker", required=True, help="mqtt://user:password@host:port")
    command.add_argument("--home", default="47.3769,8.5417", help="LAT,LON (default Zurich)")
    command.add_argument("--speedup", type=float, default=1.0, help="simulated time factor")
    command.add_argument("--max-payload-kg", type=float, default=2.5)
    command.add_argument("--telemetry-hz", type=float, default=1.0)
    command.add_argument(
        "--state-dir", type=Path, default=Path(state_dir), help="SQLite files (default %(default)s)"
    )


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

    agent = commands.add_parser("agent", help="run one drone agent")
    agent.add_argument("--drone-id", required=True)
    agent.add_argument("--fc", choices=["sim"], default="sim", help="flight controller")
    _add_fleet_options(agent, state_dir="var/agent")
    agent.set_defaults(run=_agent)

    sim = commands.add_parser("sim", help="run N simulated drones, each with its own agent")
    sim.add_argument("--drones", type=int, required=True)
    sim.add_argument("--spread-km", type=float, default=3.0, help="homes scattered this far")
    sim.add_argument("--seed", type=int, default=1)
    _add_fleet_options(sim, state_dir="var/sim")
    sim.set_defaults(run=_sim)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `murmur` command; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run: Command = args.run
    return run(args)
