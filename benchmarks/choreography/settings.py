"""The sizes of a choreography run (`FULL`, `QUICK`) and the limits its figures are held to."""

from dataclasses import dataclass
from typing import Literal

from drone_agent.wiring import DEFAULT_HOME

Placement = Literal["subprocess", "inprocess"]
"""Where the services run: one process each, as in production, or all in this event loop."""

HOME = DEFAULT_HOME  # the centre of the fleet's area
SOURCE = "/clients/bench"  # the CloudEvents source of the benchmark's requests
P99_LIMIT_S = 0.100  # a rate is sustained when every request is assigned and the p99 is within
CONNECT_TIMEOUT_S = 60.0  # for services and drones to connect, and drones to report


@dataclass(frozen=True)
class Settings:
    """One run's sizes; `FULL` and `QUICK` are the two `measure` uses."""

    # Throughput: a burst of `burst` requests on a fleet of `drones`.
    drones: int
    burst: int
    # Latency: `rate` requests per second for `seconds`, on `latency_drones`.
    latency_drones: int
    rate: float
    seconds: float
    # The search for the highest sustainable rate, `step_seconds` each: `step_rates` above
    # `rate` while they hold, or `lower_rates` below it until one holds.
    step_rates: tuple[float, ...]
    step_seconds: float
    lower_rates: tuple[float, ...] = ()
    speedup: float = 200.0
    spread_km: float = 1.0  # the burst's area (radius around the home)
    # The latency runs' area: short trips, so that fewer drones keep enough of them free.
    latency_spread_km: float = 0.3
    sim_tick_s: float = 1.0  # simulated seconds per physics step (murmur up: 0.5)
    # Processes the fleet is split over, like as many `murmur sim` (0: the benchmark's own).
    fleet_processes: int = 2
    grace_s: float = 3.0  # how long after the last request its assignment may still come
    delivered_timeout_s: float = 60.0

    def fleet_processes_for(self, placement: Placement) -> int:
        """The fleet's processes: none when everything runs in this process."""
        return self.fleet_processes if placement == "subprocess" else 0


# The burst is half the fleet: with as many requests as drones, the last few find only far
# drones (or none able) and wait for one to come back, and the K-th assignment measures that.
FULL = Settings(
    drones=200,
    burst=100,
    latency_drones=150,
    rate=50.0,
    seconds=10.0,
    step_rates=(75.0, 100.0, 150.0),
    step_seconds=5.0,
    lower_rates=(25.0, 10.0, 5.0),
)
QUICK = Settings(
    drones=30,
    burst=15,
    latency_drones=50,
    rate=50.0,
    seconds=2.0,
    step_rates=(),
    step_seconds=2.0,
    delivered_timeout_s=15.0,
)
