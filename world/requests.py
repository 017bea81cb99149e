"""Delivery requests a fleet can serve: seeded, between points of its area, without end."""

import itertools
import random
from collections.abc import Iterator

from contracts.events import DeliveryRequested
from contracts.ids import Location, PackageSize
from contracts.requests import delivery_request
from flight_model.energy import EnergyModel
from flight_model.geo import random_within

_DRAWS = 100


def request_stream(
    homes: list[Location],
    *,
    center: Location,
    spread_km: float,
    seed: int,
    id_prefix: str,
    owner_id: str = "murmur-up",
) -> Iterator[DeliveryRequested]:
    """Seeded requests between points within `spread_km` of `center`, without end.

    Each is one a fully charged drone from one of `homes` can fly (redrawn otherwise): demand
    the fleet can serve. Delivery ids are `id_prefix` and a five-digit count.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible load, not crypto
    energy = EnergyModel()
    full_wh = energy.airframe.battery_wh

    def somewhere() -> Location:
        return random_within(rng, center, spread_km * 1000)

    def servable(pickup: Location, dropoff: Location, weight_kg: float) -> bool:
        return any(
            energy.feasible(
                energy_wh=full_wh,
                start=home,
                pickup=pickup,
                dropoff=dropoff,
                home=home,
                payload_kg=weight_kg,
            )
            for home in homes
        )

    for i in itertools.count():
        for _ in range(_DRAWS):
            pickup, dropoff, weight_kg = somewhere(), somewhere(), round(rng.uniform(0.2, 2.0), 2)
            if servable(pickup, dropoff, weight_kg):
                break
        yield delivery_request(
            pickup=pickup,
            dropoff=dropoff,
            weight_kg=weight_kg,
            size=rng.choice([PackageSize.SMALL, PackageSize.MEDIUM]),
            owner_id=owner_id,
            delivery_id=f"{id_prefix}{i:05d}",
        )
