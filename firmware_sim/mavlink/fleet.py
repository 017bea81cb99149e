"""A fleet of endpoints in-process: one UDP port and system id per simulated vehicle."""

from collections.abc import Iterable

from firmware_sim.mavlink.endpoint import MavlinkEndpoint
from firmware_sim.simulator import Simulator
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import Clock

BASE_PORT = 14580
"""Vehicle *i* (from 1) listens on `BASE_PORT + i` (docs/mavlink.md)."""


async def serve_fleet(
    vehicles: Iterable[SimVehicle],
    clock: Clock,
    simulator: Simulator,
    *,
    base_port: int = BASE_PORT,
    host: str = "127.0.0.1",
    push_to: tuple[str, int] | None = None,
    rate_multiplier: float = 1.0,
) -> list[MavlinkEndpoint]:
    """Give each vehicle an endpoint: system id *i* on `base_port + i`, ticked by `simulator`.

    Vehicles not yet simulated are added to `simulator`. With `base_port=0` every endpoint
    takes a free port (tests); read it from `MavlinkEndpoint.port`. Close them with `close()`.
    `rate_multiplier` is passed on (`StreamSchedule`): raise it under a large speed-up.
    """
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
