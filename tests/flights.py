"""Builders and stepping helpers for simulated flight controllers (`firmware_sim`).

Plain functions, like `tests/builders.py`: a test names only what it is about, e.g.
`fly_until(a_flying_vehicle(), "landed")`.
"""

from typing import Any

from contracts.ids import Location
from firmware_sim.state import SimEvent
from firmware_sim.vehicle import SimVehicle
from flight_model.geo import from_enu
from tests.builders import DRONE, HOME

DT = 0.5


def east_of(origin: Location, metres: float, *, north_m: float = 0.0) -> Location:
    """The location `metres` east (and `north_m` north) of `origin`."""
    return from_enu(origin, metres, north_m)


def a_sim_vehicle(**overrides: Any) -> SimVehicle:
    """A disarmed drone at HOME with the default airframe and a full battery."""
    return SimVehicle(**{"vehicle_id": DRONE, "home": HOME, **overrides})


def fly_until(
    vehicle: SimVehicle, kind: str, *, dt: float = DT, limit_s: float = 3_600.0
) -> list[SimEvent]:
    """Step until an event of `kind` happens; every event so far, that one last."""
    events: list[SimEvent] = []
    elapsed = 0.0
    while elapsed < limit_s:
        events += vehicle.step(dt)
        elapsed += dt
        if any(e.kind == kind for e in events):
            return events
    msg = f"no {kind!r} within {limit_s} s; events: {events}; state: {vehicle.state()}"
    raise AssertionError(msg)


def fly_for(vehicle: SimVehicle, seconds: float, *, dt: float = DT) -> list[SimEvent]:
    """Step for `seconds`; every event on the way."""
    events: list[SimEvent] = []
    for _ in range(round(seconds / dt)):
        events += vehicle.step(dt)
    return events


def kinds(events: list[SimEvent]) -> list[str]:
    """The kinds of `events`, in order."""
    return [e.kind for e in events]


def a_hovering_vehicle(altitude_m: float = 40.0, **overrides: Any) -> SimVehicle:
    """A drone armed, taken off and hovering at `altitude_m` above HOME."""
    vehicle = a_sim_vehicle(**overrides)
    assert vehicle.arm().accepted
    assert vehicle.takeoff(altitude_m).accepted
    fly_until(vehicle, "reached")
    return vehicle


def a_cruising_vehicle(metres_east: float = 2_000.0, **overrides: Any) -> SimVehicle:
    """A hovering drone just sent on a goto `metres_east` of HOME, a few seconds under way."""
    vehicle = a_hovering_vehicle(**overrides)
    assert vehicle.goto(east_of(HOME, metres_east)).accepted
    fly_for(vehicle, 10.0)
    return vehicle
