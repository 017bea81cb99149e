import pytest

from firmware_sim.battery import Battery, lipo_cell_voltage
from flight_model.airframe import Airframe
from flight_model.energy import EnergyModel
from flight_model.phases import FlightPhase
from tests.builders import DROPOFF, HOME, PICKUP
from tests.flights import east_of

MODEL = EnergyModel()
FIVE_KM_ROUND_TRIP = {
    "start": HOME,
    "pickup": HOME,
    "dropoff": east_of(HOME, 2_500.0),
    "home": HOME,
}
DELIVERY = {"start": HOME, "pickup": PICKUP, "dropoff": DROPOFF, "home": HOME}


def test_hover_power_matches_the_field_notes_example() -> None:
    """Test that a 2.5 kg quad on 0.46 m² of rotor hovers on about 115 W ideal, 210 W drawn."""
    assert MODEL.hover_power_w(2.5) * Airframe().efficiency == pytest.approx(114.3, abs=0.5)
    assert 200.0 < MODEL.hover_power_w(2.5) < 240.0


def test_hover_power_scales_with_mass_to_the_power_one_and_a_half() -> None:
    assert MODEL.hover_power_w(3.5) / MODEL.hover_power_w(2.5) == pytest.approx(1.4**1.5)


def test_a_disarmed_drone_draws_only_its_avionics() -> None:
    assert MODEL.power_w(FlightPhase.DISARMED, 2.5) == Airframe().avionics_w


def test_climbing_costs_more_than_hovering_and_descending_less() -> None:
    climb = MODEL.power_w(FlightPhase.TAKEOFF, 2.5, climb_rate_mps=2.5)
    hover = MODEL.power_w(FlightPhase.HOLD, 2.5)
    descent = MODEL.power_w(FlightPhase.LAND, 2.5, climb_rate_mps=-1.5)
    idle = MODEL.power_w(FlightPhase.ARMED, 2.5)
    assert climb > hover > descent > idle > MODEL.power_w(FlightPhase.DISARMED, 2.5)


def test_a_5_km_round_trip_with_2_kg_uses_more_energy_than_empty() -> None:
    loaded = MODEL.trip_wh(**FIVE_KM_ROUND_TRIP, payload_kg=2.0)
    empty = MODEL.trip_wh(**FIVE_KM_ROUND_TRIP, payload_kg=0.0)
    assert loaded > 1.3 * empty


def test_a_longer_leg_costs_more_and_one_inside_the_waypoint_radius_nothing() -> None:
    assert MODEL.leg_wh(2_000.0, payload_kg=0.0) > MODEL.leg_wh(1_000.0, payload_kg=0.0) > 0.0
    assert MODEL.leg_wh(1.0, payload_kg=0.0) == 0.0


def test_the_model_error_factor_scales_the_whole_trip() -> None:
    pessimistic = EnergyModel(Airframe(model_error=1.5))
    expected = 1.5 * MODEL.trip_wh(**DELIVERY, payload_kg=1.0)
    assert pessimistic.trip_wh(**DELIVERY, payload_kg=1.0) == pytest.approx(expected)


def test_a_trip_is_feasible_only_if_it_leaves_the_reserve() -> None:
    needed = MODEL.trip_wh(**DELIVERY, payload_kg=1.2) + 0.25 * Airframe().battery_wh
    assert MODEL.feasible(energy_wh=needed + 0.01, **DELIVERY, payload_kg=1.2)
    assert not MODEL.feasible(energy_wh=needed - 0.01, **DELIVERY, payload_kg=1.2)


def test_a_package_over_the_max_payload_is_never_feasible() -> None:
    assert not MODEL.feasible(energy_wh=1_000.0, **FIVE_KM_ROUND_TRIP, payload_kg=3.0)


def test_endurance_shrinks_with_payload() -> None:
    assert MODEL.endurance_s(89.0) / 60 == pytest.approx(24.8, abs=0.5)
    assert MODEL.endurance_s(89.0, payload_kg=1.0) < 0.65 * MODEL.endurance_s(89.0)


@pytest.mark.parametrize(("soc", "volts"), [(1.0, 4.173), (0.5, 3.742), (0.0385, 3.091)])
def test_cell_voltage_follows_the_ardupilot_table(soc: float, volts: float) -> None:
    assert lipo_cell_voltage(soc) == pytest.approx(volts)


def test_cell_voltage_falls_off_a_cliff_near_empty() -> None:
    middle_drop = lipo_cell_voltage(0.5) - lipo_cell_voltage(0.4)
    assert lipo_cell_voltage(0.04) - lipo_cell_voltage(0.01) > 10 * middle_drop


def test_pack_voltage_sags_under_load() -> None:
    battery = Battery(89.0)
    assert battery.voltage(0.0) == pytest.approx(4 * 4.173)
    assert battery.voltage(500.0) < battery.voltage(100.0) < battery.voltage(0.0)


def test_pack_voltage_falls_near_empty() -> None:
    assert (
        Battery(89.0, energy_wh=3.0).voltage(200.0)
        < Battery(89.0, energy_wh=44.5).voltage(200.0) - 2
    )


def test_drain_takes_power_times_time_and_stops_at_empty() -> None:
    battery = Battery(100.0)
    battery.drain(360.0, 100.0)
    assert battery.energy_wh == pytest.approx(90.0)
    battery.drain(360.0, 10_000.0)
    assert battery.energy_wh == 0.0


def test_linear_drain_falls_linearly_and_floors_at_min_pct() -> None:
    battery = Battery.linear(89.0, drain_s=60.0, min_pct=50.0)
    battery.drain(1_000.0, 15.0)
    assert battery.percent == pytest.approx(75.0)
    battery.drain(0.0, 30.0)
    assert battery.percent == pytest.approx(50.0)


def test_linear_drain_waits_while_disarmed_and_refills_on_disarm() -> None:
    battery = Battery.linear(89.0, drain_s=60.0, min_pct=10.0)
    battery.drain(8.0, 30.0, armed=False)
    assert battery.percent == 100.0
    battery.drain(8.0, 30.0)
    battery.on_disarm()
    assert battery.percent == 100.0


def test_a_drop_and_a_faster_drain_cost_charge() -> None:
    battery = Battery(100.0)
    battery.drop_to(30.0)
    battery.drain(360.0, 100.0, factor=2.0)
    assert battery.percent == pytest.approx(10.0)


def test_a_battery_round_trips_through_a_dict() -> None:
    battery = Battery.linear(50.0, drain_s=30.0, min_pct=20.0)
    battery.drain(0.0, 10.0)
    again = Battery.from_dict(battery.to_dict())
    assert again.to_dict() == battery.to_dict()
