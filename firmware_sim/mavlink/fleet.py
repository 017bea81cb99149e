"""A fleet of endpoints in-process: one UDP port and system id per simulated vehicle."""

from collections.abc import Iterable

from firmware_sim.mavlink.endpoint import MavlinkEndpoint
from firmware_sim.mavlink.stream import bounded_multiplier
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock

BASE_PORT = 14580
"""Vehicle *i* (from 1) listens on `BASE_PORT + i` (docs/mavlink.md)."""

FLEET_FRAMES_PER_S = 500.0
"""What a fleet's endpoints stream together at most when a rate multiplier is asked for.

Measured on two busy cores: ten endpoints and their agents in one process keep up with this
and every COMMAND_ACK arrives; at 8,000 frames/s they did not.
"""


async def serve_fleet(
    vehicles: Iterable[SimVehicle],
    clock: Clock,
    simulator: Simulator,
    *,
    base_port: int = BASE_PORT,
    host: str = "127.0.0.1",
    push_to: tuple[str, int] | None = None,
    rate_multiplier: float = 1.0,
    frames_per_s_budget: float = FLEET_FRAMES_PER_S,
) -> list[MavlinkEndpoint]:
    """Give each vehicle an endpoint: system id *i* on `base_port + i`, ticked by `simulator`.

    Vehicles not yet simulated are added to `simulator`. With `base_port=0` every endpoint
    takes a free port (tests); read it from `MavlinkEndpoint.port`. Close them with `close()`.
    `rate_multiplier` is passed on (`StreamSchedule`): raise it under a large speed-up. It is
    lowered so that the fleet streams at most `frames_per_s_budget` in all (never below 1).
    """
    vehicles = list(vehicles)
    rate_multiplier = bounded_multiplier(
        rate_multiplier, endpoints=len(vehicles), frames_per_s_budget=frames_per_s_budget
    )
    endpoints: list[MavlinkEndpoint] = []
    try:
        for i, vehicle in enumerate(vehicles, start=1):
            endpoint = MavlinkEndpoint(
                vehicle,
                clock,
                system_id=i,
                host=host,
                port=base_port + i if base_port else 0,
                push_to=push_to,
                rate_multiplier=rate_multiplier,
            )
            await endpoint.start()
            endpoints.append(endpoint)
            if vehicle.vehicle_id not in simulator.vehicles:
                simulator.add(vehicle)
            simulator.on_tick(endpoint.on_tick, vehicle_id=vehicle.vehicle_id)
    except BaseException:
        for endpoint in endpoints:
            endpoint.close()
        raise
    return endpoints
