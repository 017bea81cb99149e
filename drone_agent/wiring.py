"""Wiring of the agent: validated settings in, an agent with its own bus and database out.

`murmur agent --fc mavlink:...` on a companion computer runs `run_agent`, which needs nothing of
the simulator; simulated fleets (`murmur sim`, `murmur agent --fc sim`, `murmur up`) are built
by `world.fleet` from the same `FleetConfig` and `build_agent`.
"""

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from bus.bus import Bus
from bus.store import open_database
from bus.transport import Transport, open_transport
from bus.url import BrokerUrl, BrokerUrlError
from contracts.ids import Location, parse_location
from contracts.producers import drone_source
from drone_agent.flight import FlightController
from drone_agent.service import DroneAgent, drone_presence
from drone_agent.settings import AgentSettings
from flight_model.clock import Clock, ScaledClock
from flight_model.energy import EnergyModel

DEFAULT_HOME = Location(latitude=47.3769, longitude=8.5417)
"""Zurich: where a drone lives unless told (`--home`), and a simulated fleet's centre."""
_DRONE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class ConfigError(ValueError):
    """Invalid settings; one line per problem, each naming the setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class FleetConfig:
    """Validated settings shared by `murmur agent` and `murmur sim`."""

    broker: BrokerUrl
    state_dir: Path
    home: Location = DEFAULT_HOME
    speedup: float = 1.0
    max_payload_kg: float = 2.5
    telemetry_hz: float = 1.0
    fc: str = "sim"  # or "mavlink:CONNECTION" (docs/mavlink.md)
    sim_epoch: datetime | None = None  # see `ScaledClock.anchored`
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    """Drone id -> its own MQTT password (`murmur sim --password-dir`), instead of the URL's."""


def fleet_config(
    *,
    broker: str,
    home: str,
    state_dir: Path,
    speedup: float,
    max_payload_kg: float,
    telemetry_hz: float,
    drone_ids: list[str],
    fc: str = "sim",
    sim_epoch: datetime | None = None,
) -> FleetConfig:
    """Check every setting and report every problem at once."""
    problems: list[str] = []
    try:
        url = BrokerUrl.parse(broker)
    except BrokerUrlError as exc:
        problems.append(f"--broker: {exc}")
        url = BrokerUrl("invalid", 1)
    location = parse_location(home, "--home", problems)
    problems.extend(
        f"--drone-id: {drone_id!r} must be 1-64 letters, digits, '-' or '_' "
        "(it is one MQTT topic level)"
        for drone_id in drone_ids
        if not _DRONE_ID.match(drone_id)
    )
    problems.extend(
        f"{setting}: must be a positive number, got {value}"
        for setting, value in (
            ("--speedup", speedup),
            ("--max-payload-kg", max_payload_kg),
            ("--telemetry-hz", telemetry_hz),
        )
        if not (math.isfinite(value) and value > 0)
    )
    if telemetry_hz > 50:  # noqa: PLR2004
        problems.append(f"--telemetry-hz: at most 50, got {telemetry_hz}")
    problems.extend(_fc_problems(fc))
    if problems:
        raise ConfigError(problems)
    return FleetConfig(
        broker=url,
        home=location,
        state_dir=state_dir,
        speedup=speedup,
        max_payload_kg=max_payload_kg,
        telemetry_hz=telemetry_hz,
        fc=fc,
        sim_epoch=sim_epoch,
    )


def _fc_problems(fc: str) -> list[str]:
    kind, _, connection = fc.partition(":")
    if fc == "sim":
        return []
    if kind != "mavlink":
        return [f"--fc: {fc!r} is neither sim nor mavlink:CONNECTION"]
    from drone_agent.mavlink.connection import FORMS, parse_connection  # noqa: PLC0415

    if not connection:
        return [f"--fc: {fc!r} names no connection; expected mavlink: followed by {FORMS}"]
    try:
        parse_connection(connection)
    except ValueError as exc:
        return [f"--fc: {exc}"]
    return []


def build_agent(
    config: FleetConfig,
    drone_id: str,
    *,
    fc: FlightController,
    clock: Clock,
    transport: Transport | None = None,
) -> DroneAgent:
    """One agent with its own database, broker connection and last will, flying `fc`.

    `transport` reaches the broker another way than `config.broker` with the drone's login
    (a proxy cutting its link in a test, an in-process broker).
    """
    config.state_dir.mkdir(parents=True, exist_ok=True)
    bus = Bus(
        component=drone_id,
        transport=transport or open_transport(drone_login(config, drone_id)),
        db=open_database(config.state_dir / f"{drone_id}.db"),
        client_id=f"drone-{drone_id}",
        source=drone_source(drone_id),
        presence=drone_presence(drone_id),
    )
    settings = AgentSettings(
        drone_id=drone_id,
        max_payload_kg=config.max_payload_kg,
        telemetry_hz=config.telemetry_hz,
    )
    return DroneAgent(settings=settings, bus=bus, fc=fc, clock=clock, energy=EnergyModel())


def drone_login(config: FleetConfig, drone_id: str) -> BrokerUrl:
    """The broker URL a drone connects with: logged in as itself, unless the URL names a user.

    A drone's login is its drone id, which the ACL binds its topics to (docs/security.md); its
    password is its own if the fleet has one for it, else the URL's.
    """
    url = config.broker
    if url.username is None:
        url = replace(url, username=drone_id)
    if drone_id in config.passwords:
        url = replace(url, password=config.passwords[drone_id])
    return url


async def run_agent(config: FleetConfig, drone_id: str) -> None:
    """Run one agent flying the MAVLink flight controller of `config.fc`, until cancelled."""
    from drone_agent.mavlink import MavlinkFlightController  # noqa: PLC0415 - pymavlink: only here

    clock = ScaledClock.anchored(config.speedup, config.sim_epoch)
    fc = MavlinkFlightController(config.fc.removeprefix("mavlink:"), clock)
    await build_agent(config, drone_id, fc=fc, clock=clock).run()
