"""The whole choreography in the test's loop: three services and simulated drones.

Built by `world.system`, as `murmur up` builds it: every part has its own broker connection and
SQLite file, as in production; they share one fast simulated clock, so a delivery of a few
kilometres takes seconds.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from bus.url import BrokerUrl
from cloud.scheduler.service import SchedulerSettings
from cloud.services import SERVICE_NAMES
from contracts.ids import Location
from drone_agent.wiring import DEFAULT_HOME
from flight_model.clock import ScaledClock
from flight_model.geo import from_enu
from world.fleet import Drone, VehicleLink
from world.system import LocalSystem, local_system, scheduler_for, telemetry_hz_for

__all__ = ["CENTER", "ROOT", "SPEEDUP", "Drone", "near", "running_system", "scheduler_settings"]

ROOT = "murmur/v1"
CENTER = DEFAULT_HOME
SPEEDUP = 200.0
TELEMETRY_HZ = telemetry_hz_for(SPEEDUP)  # the same real-time budgets as `murmur up`


def near(east_m: float, north_m: float) -> Location:
    """A point this far from the centre of the test area."""
    return from_enu(CENTER, east_m, north_m)


def scheduler_settings(**overrides: float) -> SchedulerSettings:
    """The scheduler's timers of `murmur up` at this speed-up, with some changed."""
    return replace(scheduler_for(SPEEDUP), **overrides)


@asynccontextmanager
async def running_system(
    url: str,
    tmp_path: Path,
    drones: dict[str, Drone],
    *,
    services: tuple[str, ...] = SERVICE_NAMES,
    scheduler: SchedulerSettings | None = None,
    link: VehicleLink = "sim",
) -> AsyncIterator[LocalSystem]:
    """Services and drones, connected before the block; everything stops after it.

    `link` is how each agent reaches its simulated vehicle: "sim" in process, "mavlink"
    through the vehicle's MAVLink endpoint and the agent's MAVLink adapter.
    """
    async with local_system(
        drones,
        state_dir=tmp_path,
        clock=ScaledClock(SPEEDUP),
        broker=BrokerUrl.parse(url),
        services=services,
        scheduler=scheduler or scheduler_settings(),
        link=link,
        connect_timeout_s=10,
    ) as system:
        yield system
