"""Which drones may take a trip, best first: pure rules, no I/O."""

from collections.abc import Iterable
from dataclasses import dataclass

from contracts.events import Availability, DroneState
from contracts.ids import Location
from flight_model.energy import EnergyModel
from flight_model.geo import haversine_m


@dataclass(frozen=True)
class Trip:
    """What a delivery asks of a drone."""

    pickup: Location
    dropoff: Location
    payload_kg: float


@dataclass(frozen=True)
class DroneView:
    """The scheduler's picture of one drone."""

    state: DroneState
    state_seq: int  # grows with every state the drone publishes
    online: bool
    fresh: bool  # telemetry seen within the staleness limit
    has_open_job: bool  # the scheduler holds an offered or accepted job for it

    @property
    def drone_id(self) -> str:
        """The drone's id."""
        return self.state.drone_id


def free(drone: DroneView) -> bool:
    """Online, reporting, idle by its own account, and not holding a job of ours."""
    state = drone.state
    return (
        drone.online
        and drone.fresh
        and not drone.has_open_job
        and state.availability is Availability.IDLE
        and state.job_id is None
    )


def can_fly(state: DroneState, trip: Trip, energy: EnergyModel) -> bool:
    """Capacity and energy for here → pickup → dropoff → home, with the reserve left."""
    return trip.payload_kg <= state.max_payload_kg and energy.feasible(
        energy_wh=state.energy_wh,
        start=state.position,
        pickup=trip.pickup,
        dropoff=trip.dropoff,
        home=state.home,
        payload_kg=trip.payload_kg,
    )


def candidates(
    drones: Iterable[DroneView],
    trip: Trip,
    energy: EnergyModel,
    *,
    declined: dict[str, int],
) -> list[DroneView]:
    """Free drones that can fly `trip`, nearest to the pickup first.

    `declined` maps a drone that turned this trip down to its state at the time; it is asked
    again only once its state changed.
    """
    able = [
        d
        for d in drones
        if free(d) and declined.get(d.drone_id, -1) < d.state_seq and can_fly(d.state, trip, energy)
    ]
    return sorted(able, key=lambda d: (haversine_m(d.state.position, trip.pickup), d.drone_id))


def best_candidate(
    drones: Iterable[DroneView],
    trip: Trip,
    energy: EnergyModel,
    *,
    declined: dict[str, int],
) -> DroneView | None:
    """The first of `candidates`, estimating energy only for as many drones as it takes.

    The energy estimate is the costly test: free drones are ranked first and checked nearest
    first, so a fleet of hundreds costs one or a few estimates instead of one per free drone.
    """
    ranked = sorted(
        (
            d
            for d in drones
            if free(d)
            and declined.get(d.drone_id, -1) < d.state_seq
            and trip.payload_kg <= d.state.max_payload_kg
        ),
        key=lambda d: (haversine_m(d.state.position, trip.pickup), d.drone_id),
    )
    return next((d for d in ranked if can_fly(d.state, trip, energy)), None)
