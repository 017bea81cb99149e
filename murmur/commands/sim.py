"""`murmur sim`: N simulated drones in one process, each with its own agent and connection."""

import argparse
from pathlib import Path

from murmur.checks import MAX_PORT
from murmur.commands import Subcommands
from murmur.config import add_config_option
from murmur.fleet_options import add_fleet_options, fleet_settings
from murmur.running import INVALID, run_until_signalled


def add_parser(commands: Subcommands) -> None:
    """Add `murmur sim`."""
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
    add_fleet_options(sim, state_dir="var/sim")
    sim.add_argument(
        "--password-dir",
        type=Path,
        metavar="DIR",
        help="each drone's own MQTT password: the first line of DIR/<drone id> (it logs in with "
        "its drone id)",
    )
    add_config_option(sim, example="sim.toml", reports=True)
    sim.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fly the fleet until SIGINT or SIGTERM."""
    from dataclasses import replace  # noqa: PLC0415

    from world.fleet import drone_ids  # noqa: PLC0415 - lazy by design

    drones = args.drones or 0  # None: missing, which layering reported
    problems = [] if drones >= 1 else [f"--drones: at least 1, got {drones}"]
    if args.mavlink and not 1 <= args.mavlink_port <= MAX_PORT - max(drones, 1):
        problems.append(
            f"--mavlink-port: 1..{MAX_PORT - max(drones, 1)} for {drones} drones, "
            f"got {args.mavlink_port}"
        )
    ids = drone_ids(drones)
    passwords = _drone_passwords(args, ids, problems)
    config = fleet_settings(args, ids, problems)
    if config is None:
        return INVALID
    config = replace(config, passwords=passwords)
    if args.mavlink:
        print(
            f"murmur sim: vehicle i's MAVLink endpoint on udp 127.0.0.1:{args.mavlink_port}+i "
            f"(d-001 on {args.mavlink_port + 1})",
            flush=True,
        )

    async def fly() -> None:
        from flight_model.clock import ScaledClock  # noqa: PLC0415
        from world.fleet import scattered, simulated_fleet  # noqa: PLC0415

        clock = ScaledClock.anchored(config.speedup, config.sim_epoch)
        fleet_of = scattered(config.home, drones, spread_km=args.spread_km, seed=args.seed)
        async with simulated_fleet(
            fleet_of,
            config,
            clock,
            link="mavlink" if args.mavlink else "sim",
            mavlink_base_port=args.mavlink_port,
        ) as fleet:
            await fleet.run()

    run_until_signalled(fly())
    return 0


def _drone_passwords(
    args: argparse.Namespace, ids: list[str], problems: list[str]
) -> dict[str, str]:
    """Each drone's own password, from `--password-dir`: the first line of DIR/<drone id>."""
    import contextlib  # noqa: PLC0415

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
