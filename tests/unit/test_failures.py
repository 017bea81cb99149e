import pytest

from firmware_sim.failures import Failure, FailurePlan
from firmware_sim.state import SimEvent
from flight_model.phases import FlightPhase
from tests.flights import a_sim_vehicle, fly_for, fly_until, kinds

CRUISE = FlightPhase.CRUISE


def test_a_timed_failure_fires_once_when_its_time_comes() -> None:
    plan = FailurePlan([Failure("gps", "off", at_s=30.0)], seed=1)
    assert plan.due(29.5, CRUISE) == []
    assert plan.due(30.0, CRUISE) == [Failure("gps", "off", at_s=30.0)]
    assert plan.due(31.0, CRUISE) == []
    assert plan.pending == ()


def test_a_phase_failure_waits_for_its_phase_and_its_time() -> None:
    failure = Failure("motor", "off", at_s=10.0, at_phase=FlightPhase.LAND)
    plan = FailurePlan([failure], seed=1)
    assert plan.due(60.0, CRUISE) == []
    assert plan.due(5.0, FlightPhase.LAND) == []
    assert plan.due(60.0, FlightPhase.LAND) == [failure]


@pytest.mark.parametrize(
    ("component", "kind"), [("motor", "ok"), ("gps", "drain"), ("wind", "off")]
)
def test_an_unsupported_failure_is_refused(component: str, kind: str) -> None:
    with pytest.raises(ValueError, match="Unsupported failure"):
        Failure(component, kind)  # type: ignore[arg-type]


def test_a_battery_failure_needs_a_value() -> None:
    with pytest.raises(ValueError, match="needs a value"):
        Failure("battery", "drop")


def test_random_plans_repeat_for_a_seed_and_differ_across_seeds() -> None:
    assert (
        FailurePlan.random(42, rate_per_hour=5.0).failures
        == FailurePlan.random(42, rate_per_hour=5.0).failures
    )
    assert (
        FailurePlan.random(42, rate_per_hour=5.0).failures
        != FailurePlan.random(43, rate_per_hour=5.0).failures
    )


def test_a_random_plan_keeps_to_its_horizon_and_components() -> None:
    plan = FailurePlan.random(7, rate_per_hour=60.0, horizon_s=600.0, components=("gps",))
    assert plan.failures
    assert all(
        f.component == "gps" and f.at_s is not None and f.at_s <= 600.0 for f in plan.failures
    )


def test_a_plan_round_trips_with_what_already_fired() -> None:
    plan = FailurePlan(
        [Failure("gps", "off", at_s=1.0), Failure("battery", "drain", at_s=99.0, value=2.0)], seed=5
    )
    plan.due(2.0, CRUISE)
    again = FailurePlan.from_dict(plan.to_dict())
    assert again.to_dict() == plan.to_dict()
    assert again.pending == (Failure("battery", "drain", at_s=99.0, value=2.0),)


def test_failure_times_count_armed_seconds_only() -> None:
    """Test that a drone waiting disarmed on the pad does not use up its failure schedule."""
    vehicle = a_sim_vehicle(failures=FailurePlan([Failure("gps", "off", at_s=5.0)], seed=1))
    assert fly_for(vehicle, 60.0) == []
    vehicle.arm()
    vehicle.takeoff(20.0)
    events = fly_until(vehicle, "failure")
    assert SimEvent("failure", "gps off") in events
    assert vehicle.flight.armed_s == pytest.approx(5.0)


def test_a_faster_drain_empties_the_battery_sooner() -> None:
    normal = a_sim_vehicle()
    faster = a_sim_vehicle(failures=FailurePlan([Failure("battery", "drain", value=3.0)], seed=1))
    for vehicle in (normal, faster):
        vehicle.arm()
        vehicle.takeoff(20.0)
        fly_for(vehicle, 60.0)
    used_normal = 100.0 - normal.state().battery_pct
    assert 100.0 - faster.state().battery_pct == pytest.approx(3.0 * used_normal, rel=0.02)


def test_a_restored_gps_lets_the_vehicle_fly_again() -> None:
    vehicle = a_sim_vehicle()
    vehicle.inject(Failure("gps", "off"))
    assert vehicle.arm().reason == "no GPS fix"
    vehicle.inject(Failure("gps", "ok"))
    assert vehicle.arm().accepted
    assert kinds(vehicle.step(0.5)) == ["failure", "failure"]
