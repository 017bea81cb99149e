import math

import pytest

from contracts.ids import Location
from flight_model.geo import EARTH_RADIUS_M, bearing_deg, from_enu, haversine_m, to_enu
from tests.builders import DROPOFF, HOME

ORIGIN = Location(latitude=0.0, longitude=0.0)


def test_one_degree_of_latitude_is_about_111_km() -> None:
    north = Location(latitude=1.0, longitude=0.0)
    assert haversine_m(ORIGIN, north) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)


def test_distance_is_symmetric_and_zero_to_itself() -> None:
    assert haversine_m(HOME, DROPOFF) == pytest.approx(haversine_m(DROPOFF, HOME))
    assert haversine_m(HOME, HOME) == 0.0


def test_distance_ignores_altitude() -> None:
    assert haversine_m(HOME, HOME.model_copy(update={"altitude_m": 100.0})) == 0.0


@pytest.mark.parametrize(
    ("latitude", "longitude", "bearing"),
    [(0.01, 0.0, 0.0), (0.0, 0.01, 90.0), (-0.01, 0.0, 180.0), (0.0, -0.01, 270.0)],
)
def test_bearing_points_to_the_compass_directions(
    latitude: float, longitude: float, bearing: float
) -> None:
    target = Location(latitude=latitude, longitude=longitude)
    assert bearing_deg(ORIGIN, target) == pytest.approx(bearing)


def test_bearing_stays_between_0_and_360() -> None:
    assert 0.0 <= bearing_deg(DROPOFF, HOME) < 360.0


def test_enu_puts_a_northern_point_on_the_north_axis() -> None:
    east, north = to_enu(HOME, HOME.model_copy(update={"latitude": HOME.latitude + 0.001}))
    assert east == pytest.approx(0.0)
    assert north == pytest.approx(EARTH_RADIUS_M * math.radians(0.001))


def test_enu_round_trip_returns_the_same_location() -> None:
    east, north = to_enu(HOME, DROPOFF)
    back = from_enu(HOME, east, north, altitude_m=30.0)
    assert back.latitude == pytest.approx(DROPOFF.latitude, abs=1e-9)
    assert back.longitude == pytest.approx(DROPOFF.longitude, abs=1e-9)
    assert back.altitude_m == 30.0


def test_the_flat_frame_is_off_by_under_a_thousandth_at_20_km() -> None:
    """Test that the flat frame's error stays far below what a delivery cares about."""
    far = from_enu(HOME, 12_000.0, 16_000.0)
    east, north = to_enu(HOME, far)
    assert math.hypot(east, north) == pytest.approx(haversine_m(HOME, far), rel=1e-3)


def test_from_enu_stays_valid_across_the_antimeridian() -> None:
    edge = Location(latitude=0.0, longitude=179.9999)
    assert -180.0 <= from_enu(edge, 1_000.0, 0.0).longitude < -179.99
