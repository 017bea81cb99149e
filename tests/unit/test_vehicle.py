import json

import pytest

from firmware_sim.battery import Battery
from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.vehicle import SimVehicle
from flight_model.geo import haversine_m
from flight_model.phases import FlightPhase
from tests.builders import DROPOFF, HOME, PICKUP
from tests.flights import (
    a_cruising_vehicle,
    a_hovering_vehicle,
    a_sim_vehicle,
    east_of,
    fly_for,
    fly_until,
    kinds,
)


def test_a_new_vehicle_is_disarmed_on_the_ground_at_home() -> None:
    state = a_sim_vehicle().state()
    assert (state.phase, state.armed, state.landed) == (FlightPhase.DISARMED, False, True)
    assert state.position == HOME
    assert state.battery_pct == 100.0


def test_takeoff_climbs_at_climb_speed_and_reports_reaching_the_altitude() -> None:
    vehicle = a_sim_vehicle()
    vehicle.arm()
    assert vehicle.takeoff(40.0).accepted
    climb_rates: list[float] = []
    events = vehicle.step(0.5)
    while "reached" not in kinds(events):
        climb_rates.append(vehicle.state().climb_rate_mps)
        events = vehicle.step(0.5)
    assert max(climb_rates) == pytest.approx(2.5)
    assert 16.0 <= 0.5 * len(climb_rates) <= 20.0
    assert events[-1].detail == "altitude"
    state = vehicle.state()
    assert (state.phase, state.position.altitude_m) == (FlightPhase.HOLD, 40.0)


def test_the_first_step_off_the_ground_reports_a_takeoff() -> None:
    vehicle = a_sim_vehicle()
    vehicle.arm()
    vehicle.takeoff(10.0)
    assert kinds(vehicle.step(0.5)) == ["takeoff"]


def test_goto_arrives_within_the_waypoint_radius_without_exceeding_cruise_speed() -> None:
    vehicle = a_hovering_vehicle()
    target = east_of(HOME, 1_000.0, north_m=500.0)
    assert vehicle.goto(target).accepted
    speeds: list[float] = []
    events = vehicle.step(0.5)
    while "reached" not in kinds(events):
        speeds.append(vehicle.state().ground_speed_mps)
        events = vehicle.step(0.5)
    assert max(speeds) == pytest.approx(10.0)
    assert haversine_m(vehicle.state().position, target) <= 2.0
    assert vehicle.state().phase is FlightPhase.HOLD


@pytest.mark.parametrize("dt", [0.5, 0.7, 1.0])
def test_a_reached_goto_holds_its_point_whatever_the_step(dt: float) -> None:
    # A busy loop steps the simulator in coarse steps (up to MAX_STEP_S): braking where the
    # arrival found it left the vehicle 5 m past the point, out of the agent's arrival radius.
    vehicle = a_hovering_vehicle()
    target = east_of(HOME, -305.0)
    assert vehicle.goto(target).accepted
    fly_until(vehicle, "reached", dt=dt)
    fly_for(vehicle, 30.0, dt=dt)
    state = vehicle.state()
    assert state.phase is FlightPhase.HOLD
    assert state.ground_speed_mps == 0.0
    assert haversine_m(state.position, target) <= 2.0


def test_a_goto_from_the_ground_climbs_before_flying_level() -> None:
    vehicle = a_sim_vehicle()
    vehicle.arm()
    assert vehicle.goto(PICKUP).accepted
    fly_for(vehicle, 10.0)
    state = vehicle.state()
    assert 0.0 < state.position.altitude_m < 40.0
    assert state.ground_speed_mps == 0.0
    assert haversine_m(state.position, HOME) < 0.01


def test_a_full_delivery_by_commands_ends_landed_at_home() -> None:
    vehicle = a_sim_vehicle()
    fly_a_delivery(vehicle)
    state = vehicle.state()
    assert (state.phase, state.landed, state.payload_kg) == (FlightPhase.ARMED, True, 0.0)
    assert haversine_m(state.position, HOME) < 0.01
    assert vehicle.disarm().accepted


def test_a_flown_delivery_uses_a_little_less_than_the_shared_estimate() -> None:
    """Test that the estimate errs on the safe side, by its dwell hovers, and not by much."""
    vehicle = a_sim_vehicle()
    fly_a_delivery(vehicle)
    used = vehicle.battery.capacity_wh - vehicle.battery.energy_wh
    estimate = vehicle.autopilot.energy.trip_wh(
        start=HOME, pickup=PICKUP, dropoff=DROPOFF, home=HOME, payload_kg=1.2
    )
    assert 0.9 * estimate < used < estimate


def test_a_heavier_flight_drains_more() -> None:
    light, heavy = a_sim_vehicle(), a_sim_vehicle()
    heavy.load_payload(2.0)
    for vehicle in (light, heavy):
        vehicle.arm()
        vehicle.goto(DROPOFF)
        fly_until(vehicle, "reached")
    assert heavy.state().battery_pct < light.state().battery_pct - 10


def test_hold_stops_a_goto_and_resume_continues_it() -> None:
    vehicle = a_cruising_vehicle(1_000.0)
    assert vehicle.hold().accepted
    fly_for(vehicle, 10.0)
    assert vehicle.state().ground_speed_mps == 0.0
    assert vehicle.resume().accepted
    fly_until(vehicle, "reached")
    assert haversine_m(vehicle.state().position, east_of(HOME, 1_000.0)) <= 2.0


def test_resume_without_an_interrupted_goto_is_refused() -> None:
    assert vehicle_reason(a_hovering_vehicle().resume()) == "nothing to resume"


def test_flight_commands_need_an_armed_vehicle() -> None:
    vehicle = a_sim_vehicle()
    assert vehicle_reason(vehicle.takeoff(10.0)) == "not armed"
    assert vehicle_reason(vehicle.goto(PICKUP)) == "not armed"
    assert vehicle_reason(vehicle.hold()) == "not flying"
    assert vehicle_reason(vehicle.land()) == "not armed"


def test_a_takeoff_above_the_altitude_limit_is_refused() -> None:
    vehicle = a_sim_vehicle()
    vehicle.arm()
    assert not vehicle.takeoff(500.0).accepted
    assert not vehicle.goto(PICKUP, altitude_m=0.0).accepted


def test_disarming_in_the_air_is_refused() -> None:
    assert vehicle_reason(a_hovering_vehicle().disarm()) == "in air"


def test_repeated_arm_and_land_are_harmless() -> None:
    vehicle = a_sim_vehicle()
    vehicle.arm()
    assert vehicle.arm().reason == "already armed"
    assert vehicle.land().reason == "already landed"


def test_payload_loads_only_on_the_ground_and_up_to_the_maximum() -> None:
    vehicle = a_sim_vehicle()
    assert vehicle.load_payload(2.0).accepted
    assert vehicle_reason(vehicle.load_payload(1.0)) == "over max payload (2.5 kg)"
    assert vehicle_reason(a_hovering_vehicle().load_payload(1.0)) == "not landed"


def test_a_package_is_released_hovering_low_but_not_high() -> None:
    vehicle = a_sim_vehicle()
    vehicle.load_payload(1.0)
    vehicle.arm()
    vehicle.takeoff(30.0)
    fly_until(vehicle, "reached")
    assert vehicle_reason(vehicle.release_payload()) == "too high to release (30.0 m)"
    vehicle.takeoff(8.0)  # in the air, a takeoff just changes altitude
    fly_until(vehicle, "reached")
    fly_for(vehicle, 2.0)
    assert vehicle.release_payload().released_kg == 1.0
    assert vehicle_reason(vehicle.release_payload()) == "no payload"


def test_state_reports_target_eta_and_heading_on_the_way() -> None:
    vehicle = a_cruising_vehicle(2_000.0)
    fly_for(vehicle, 30.0)
    state = vehicle.state()
    assert state.target == east_of(HOME, 2_000.0).model_copy(update={"altitude_m": 40.0})
    remaining_m = haversine_m(state.position, east_of(HOME, 2_000.0))
    assert state.eta_s == pytest.approx(remaining_m / 10.0)
    assert state.heading_deg == pytest.approx(90.0, abs=0.1)
    assert 14.0 < state.voltage_v < 16.8


def test_same_commands_and_seed_give_identical_snapshots() -> None:
    def flown(seed: int) -> SimVehicle:
        plan = FailurePlan.random(seed, rate_per_hour=30.0, components=("battery", "gps"))
        vehicle = a_sim_vehicle(failures=plan)
        vehicle.arm()
        vehicle.goto(DROPOFF)
        fly_for(vehicle, 400.0)
        return vehicle

    assert flown(7).to_dict() == flown(7).to_dict()
    assert flown(7).to_dict() != flown(8).to_dict()


def test_a_restored_snapshot_flies_on_exactly_like_the_original() -> None:
    original = a_cruising_vehicle(
        battery=Battery.linear(89.0, drain_s=600.0, min_pct=30.0),
        failures=FailurePlan([Failure("gps", "off", at_s=200.0)], seed=3),
    )
    original.inject(Failure("battery", "drain", value=1.5))
    snapshot = json.loads(json.dumps(original.to_dict()))
    restored = SimVehicle.from_dict(snapshot)
    assert restored.to_dict() == original.to_dict()
    assert fly_for(restored, 300.0) == fly_for(original, 300.0)
    assert restored.to_dict() == original.to_dict()


def vehicle_reason(ack: object) -> str | None:
    assert not getattr(ack, "accepted", True), f"expected a refusal, got {ack}"
    reason: str | None = getattr(ack, "reason", None)
    return reason


def fly_a_delivery(vehicle: SimVehicle) -> None:
    """Fly HOME -> PICKUP (land, load 1.2 kg) -> DROPOFF (land, release) -> HOME by commands."""
    assert vehicle.arm().accepted
    assert vehicle.goto(PICKUP).accepted
    fly_until(vehicle, "reached")
    assert vehicle.land().accepted
    fly_until(vehicle, "landed")
    assert vehicle.load_payload(1.2).accepted
    assert vehicle.goto(DROPOFF).accepted
    fly_until(vehicle, "reached")
    assert vehicle.land().accepted
    fly_until(vehicle, "landed")
    assert vehicle.release_payload().released_kg == 1.2
    assert vehicle.return_to_launch().accepted
    fly_until(vehicle, "landed")
