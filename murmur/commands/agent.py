"""`murmur agent`: one drone agent next to its flight controller (MAVLink, or a simulated one)."""

import argparse

from murmur.commands import Subcommands
from murmur.config import add_config_option
from murmur.fleet_options import add_fleet_options, fleet_settings
from murmur.running import INVALID, run_until_signalled


def add_parser(commands: Subcommands) -> None:
    """Add `murmur agent`."""
    agent = commands.add_parser("agent", help="run one drone agent")
    agent.add_argument("--drone-id", required=True, help="this drone's id (one topic level)")
    agent.add_argument(
        "--fc",
        default="sim",
        help="flight controller: sim, or mavlink:CONNECTION with CONNECTION one of "
        "udpin:HOST:PORT, udpout:HOST:PORT, tcp:HOST:PORT, serial:DEVICE[:BAUD]",
    )
    add_fleet_options(agent, state_dir="var/agent")
    add_config_option(agent, example="agent.toml", reports=True)  # last: relaxes required
    agent.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Fly until SIGINT or SIGTERM."""
    config = fleet_settings(args, [args.drone_id or ""])
    if config is None:
        return INVALID
    if config.fc.startswith("mavlink:"):
        # On a companion computer: nothing of the simulator is imported.
        from drone_agent.wiring import run_agent  # noqa: PLC0415 - lazy by design

        run_until_signalled(run_agent(config, args.drone_id))
        return 0
    from world.fleet import Drone, simulated_fleet  # noqa: PLC0415

    async def fly() -> None:
        from flight_model.clock import ScaledClock  # noqa: PLC0415

        clock = ScaledClock.anchored(config.speedup, config.sim_epoch)
        drones = {args.drone_id: Drone(config.home)}
        # The vehicle survives a restart of the agent, as a real flight controller would.
        async with simulated_fleet(drones, config, clock, snapshot=True) as fleet:
            await fleet.run()

    run_until_signalled(fly())
    return 0
