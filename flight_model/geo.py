"""Geometry on a spherical Earth: distances, bearings and a local east-north frame.

The simulator integrates in a flat east-north-up frame centred on home; over the 20 km a
delivery drone flies, the flat-frame error is far below a GPS error.
"""

import math
import random

from contracts.ids import Location

EARTH_RADIUS_M = 6_371_000
_HALF_TURN_DEG = 180.0


def haversine_m(a: Location, b: Location) -> float:
    """Great-circle distance in metres, ignoring altitude."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dphi = phi2 - phi1
    dlam = math.radians(b.longitude - a.longitude)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: Location, b: Location) -> float:
    """Initial bearing from `a` to `b`, clockwise from true north, in [0, 360)."""
    phi1, phi2 = math.radians(a.latitude), math.radians(b.latitude)
    dlam = math.radians(b.longitude - a.longitude)
    y = math.sin(dlam) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlam)
    return math.degrees(math.atan2(y, x)) % 360.0


def to_enu(origin: Location, point: Location) -> tuple[float, float]:
    """`point` as (east, north) metres from `origin` in the local flat frame."""
    east = (
        EARTH_RADIUS_M
        * math.radians(point.longitude - origin.longitude)
        * math.cos(math.radians(origin.latitude))
    )
    north = EARTH_RADIUS_M * math.radians(point.latitude - origin.latitude)
    return east, north


def from_enu(origin: Location, east: float, north: float, altitude_m: float = 0.0) -> Location:
    """The location `east`, `north` metres from `origin`, `altitude_m` above the take-off point."""
    latitude = origin.latitude + math.degrees(north / EARTH_RADIUS_M)
    longitude = origin.longitude + math.degrees(
        east / (EARTH_RADIUS_M * math.cos(math.radians(origin.latitude)))
    )
    if not -_HALF_TURN_DEG <= longitude <= _HALF_TURN_DEG:  # stay valid across the antimeridian
        longitude = (longitude + _HALF_TURN_DEG) % 360.0 - _HALF_TURN_DEG
    return Location(latitude=latitude, longitude=longitude, altitude_m=altitude_m)


def heading_deg(east: float, north: float) -> float:
    """Compass heading of an (east, north) vector, in [0, 360)."""
    return math.degrees(math.atan2(east, north)) % 360.0


def random_within(rng: random.Random, center: Location, radius_m: float) -> Location:
    """A point drawn uniformly from the disc of `radius_m` around `center`."""
    radius = radius_m * math.sqrt(rng.random())
    angle = rng.uniform(0, 2 * math.pi)
    return from_enu(center, radius * math.cos(angle), radius * math.sin(angle))
