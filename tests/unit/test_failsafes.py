import pytest

from firmware_sim.battery import Battery
from firmware_sim.failsafes import (
    BATTERY_CRITICAL,
    BATTERY_LOW,
    GPS_LOST,
    LINK_LOST,
    MOTOR_FAILED,
    Health,
    arming_denial,
    check,
)
from firmware_sim.failures import Failure
from firmware_sim.vehicle import SimVehicle
from flight_model.geo import haversine_m
from flight_model.phases import FlightPhase
from tests.builders import HOME, PICKUP
from tests.flights import (
    a_cruising_vehicle,
    a_hovering_vehicle,
    a_sim_vehicle,
    fly_for,
    fly_until,
    kinds,
)

FLYING = Health(in_air=True, battery_pct=80.0)


# --- the rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        (Health(in_air=True, battery_pct=19.0), BATTERY_LOW),
        (Health(in_air=True, battery_pct=9.0), BATTERY_CRITICAL),
        (Health(in_air=True, battery_pct=80.0, gps_ok=False), GPS_LOST),
        (Health(in_air=True, battery_pct=80.0, motors_ok=False), MOTOR_FAILED),
        (Health(in_air=True, battery_pct=80.0, link_silent_s=10.5), LINK_LOST),
    ],
)
def test_each_fault_maps_to_its_failsafe(health: Health, expected: object) -> None:
    assert check(health, active=None) is expected


def test_a_healthy_flight_engages_nothing() -> None:
    assert check(Health(in_air=True, battery_pct=80.0, link_silent_s=10.0), active=None) is None


def test_on_the_ground_only_gps_and_motor_faults_engage() -> None:
    assert check(Health(in_air=False, battery_pct=5.0, link_silent_s=60.0), active=None) is None
    assert check(Health(in_air=False, battery_pct=80.0, gps_ok=False), active=None) is GPS_LOST
    broken = Health(in_air=False, battery_pct=80.0, gps_ok=False, motors_ok=False)
    assert check(broken, active=None) is MOTOR_FAILED


def test_a_worse_failsafe_replaces_a_milder_one_but_never_the_reverse() -> None:
    critical = Health(in_air=True, battery_pct=9.0)
    assert check(critical, active=BATTERY_LOW) is BATTERY_CRITICAL
    assert check(Health(in_air=True, battery_pct=19.0), active=BATTERY_CRITICAL) is None
    assert check(Health(in_air=True, battery_pct=19.0), active=BATTERY_LOW) is None


def test_arming_is_refused_without_gps_a_motor_or_charge() -> None:
    assert arming_denial(Health(in_air=False, battery_pct=90.0, gps_ok=False)) == "no GPS fix"
    assert arming_denial(Health(in_air=False, battery_pct=90.0, motors_ok=False)) == "motor failure"
    assert arming_denial(Health(in_air=False, battery_pct=15.0)) == "battery low (15 %)"
    assert arming_denial(Health(in_air=False, battery_pct=90.0)) is None


# --- the vehicle under failsafes --------------------------------------------------------------


def test_low_battery_returns_home_once_and_lands_there() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.inject(Failure("battery", "drop", value=19.0))
    events = vehicle.step(0.5)
    assert kinds(events) == ["failure", "battery_low", "failsafe_battery"]
    assert vehicle.state().phase is FlightPhase.RTL
    assert (vehicle.state().failsafe, vehicle.state().failsafe_reason) == (
        "failsafe_battery",
        "battery_low",
    )
    later = fly_until(vehicle, "landed")
    assert "battery_low" not in kinds(later)
    assert vehicle.state().position.latitude == pytest.approx(HOME.latitude)


def test_critical_battery_lands_where_it_is_after_braking() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.inject(Failure("battery", "drop", value=9.0))
    events = vehicle.step(0.5)
    assert ("failsafe_battery", "land") in [(e.kind, e.detail) for e in events]
    assert vehicle.state().phase is FlightPhase.LAND
    spot = vehicle.state().position
    fly_until(vehicle, "landed")
    braking_m = 10.0**2 / (2 * 2.5)
    assert haversine_m(vehicle.state().position, spot) <= braking_m + 1.0


def test_a_low_battery_return_turns_into_a_landing_when_critical() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.inject(Failure("battery", "drop", value=19.0))
    vehicle.step(0.5)
    vehicle.inject(Failure("battery", "drop", value=9.0))
    assert [(e.kind, e.detail) for e in vehicle.step(0.5)][-1] == ("failsafe_battery", "land")
    state = vehicle.state()
    assert (state.phase, state.failsafe_reason) == (FlightPhase.LAND, "battery_critical")


def test_gps_loss_holds_for_5_s_then_lands() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.inject(Failure("gps", "off"))
    assert "failsafe_gps" in kinds(vehicle.step(0.5))
    fly_for(vehicle, 4.0)
    assert vehicle.state().phase is FlightPhase.HOLD
    fly_for(vehicle, 1.0)
    assert vehicle.state().phase is FlightPhase.LAND
    fly_until(vehicle, "landed")
    assert not vehicle.state().gps_ok


def test_a_silent_companion_triggers_a_return_after_10_s() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.companion_heartbeat(0.0)
    assert kinds(fly_for(vehicle, 10.0)) == []
    assert kinds(vehicle.step(0.5)) == ["failsafe_link"]
    assert vehicle.state().phase is FlightPhase.RTL


def test_regular_heartbeats_keep_the_link_failsafe_away() -> None:
    vehicle = a_cruising_vehicle()
    for second in range(60):
        vehicle.companion_heartbeat(float(second))
        assert vehicle.step(1.0) == []
    assert vehicle.state().phase is FlightPhase.CRUISE


def test_a_cut_companion_link_loses_the_heartbeats_it_carries() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.inject(Failure("companion_link", "off"))
    for second in range(11):
        vehicle.companion_heartbeat(float(second))
        vehicle.step(1.0)
    assert vehicle.state().failsafe == "failsafe_link"


def test_a_vehicle_never_heard_from_its_companion_does_not_time_out() -> None:
    vehicle = a_cruising_vehicle()
    fly_for(vehicle, 60.0)
    assert vehicle.state().failsafe is None


def test_a_motor_failure_lands_in_emergency_faster_than_a_normal_landing() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.inject(Failure("motor", "off"))
    assert kinds(vehicle.step(0.5)) == ["failure", "failsafe_motor"]
    assert vehicle.state().phase is FlightPhase.EMERGENCY_LAND
    fly_for(vehicle, 10.0)
    assert vehicle.state().climb_rate_mps == pytest.approx(-3.0)


def test_commands_that_would_fly_elsewhere_are_denied_during_a_failsafe() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.inject(Failure("battery", "drop", value=19.0))
    vehicle.step(0.5)
    for ack in (vehicle.goto(HOME), vehicle.takeoff(50.0), vehicle.hold(), vehicle.resume()):
        assert (ack.accepted, ack.reason) == (False, "failsafe active: battery_low")
    assert vehicle.return_to_launch().accepted  # the return already under way
    assert vehicle.land().accepted  # landing on the spot is always allowed
    assert vehicle.state().phase is FlightPhase.LAND


def test_a_return_is_denied_once_a_failsafe_landing_began() -> None:
    vehicle = a_cruising_vehicle()
    vehicle.inject(Failure("battery", "drop", value=9.0))
    vehicle.step(0.5)
    assert vehicle.return_to_launch().reason == "failsafe active: battery_critical"


def test_a_failsafe_holds_after_landing_until_disarmed() -> None:
    vehicle = a_hovering_vehicle(battery=Battery.linear(89.0, drain_s=100.0, min_pct=15.0))
    fly_until(vehicle, "landed")
    assert vehicle.takeoff(10.0).reason == "failsafe active: battery_low"
    assert vehicle.disarm().accepted
    state = vehicle.state()
    assert (state.failsafe, state.battery_pct) == (None, 100.0)
    assert vehicle.arm().accepted


def test_a_linear_drain_battery_reaches_the_low_battery_failsafe_in_seconds() -> None:
    vehicle = a_sim_vehicle(battery=Battery.linear(89.0, drain_s=60.0, min_pct=15.0))
    vehicle.arm()
    vehicle.takeoff(20.0)
    events = fly_until(vehicle, "failsafe_battery", limit_s=60.0)
    assert "battery_low" in kinds(events)
    assert vehicle.flight.time_s < 50.0


def test_a_motor_failed_on_the_ground_keeps_the_vehicle_there() -> None:
    vehicle = SimVehicle(vehicle_id="d-1", home=HOME)
    vehicle.arm()
    vehicle.inject(Failure("motor", "off"))
    assert vehicle.takeoff(10.0).reason == "motor failure"
    vehicle.disarm()
    assert vehicle.arm().reason == "motor failure"


def test_a_gps_loss_on_the_pad_is_announced_and_clears_when_the_fix_returns() -> None:
    vehicle = a_sim_vehicle()
    vehicle.inject(Failure("gps", "off"))
    assert [(e.kind, e.detail) for e in vehicle.step(0.5)][-1] == ("failsafe_gps", "grounded")
    assert vehicle.state().failsafe == "failsafe_gps"
    assert vehicle.step(0.5) == []
    vehicle.inject(Failure("gps", "ok"))
    vehicle.step(0.5)
    assert vehicle.state().failsafe is None
    assert vehicle.arm().accepted


def test_a_gps_loss_before_lift_off_keeps_an_armed_vehicle_on_the_ground() -> None:
    vehicle = a_sim_vehicle()
    vehicle.arm()
    vehicle.goto(PICKUP)
    vehicle.inject(Failure("gps", "off"))
    assert kinds(fly_for(vehicle, 5.0)) == ["failure", "failsafe_gps"]
    state = vehicle.state()
    assert (state.phase, state.landed) == (FlightPhase.ARMED, True)
