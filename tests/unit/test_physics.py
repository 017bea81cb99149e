import itertools

import pytest

from firmware_sim.physics import HOLD_HERE, Motion, Setpoint, power_phase, step
from flight_model.airframe import Airframe
from flight_model.phases import FlightPhase

AIRFRAME = Airframe()
DT = 0.1


def trajectory(motion: Motion, setpoint: Setpoint, seconds: float, dt: float = DT) -> list[Motion]:
    states = [motion]
    for _ in range(round(seconds / dt)):
        states.append(step(states[-1], setpoint, AIRFRAME, dt))
    return states


def test_a_climb_reaches_its_altitude_never_faster_than_climb_speed() -> None:
    path = trajectory(Motion(), Setpoint(up=40.0), seconds=25.0)
    assert max(m.v_up for m in path) == pytest.approx(AIRFRAME.climb_speed_mps)
    assert path[-1].up == 40.0
    assert path[-1].v_up == 0.0


def test_a_climb_takes_about_height_over_climb_speed() -> None:
    path = trajectory(Motion(), Setpoint(up=40.0), seconds=30.0)
    arrival_s = next(i for i, m in enumerate(path) if m.up == 40.0) * DT
    assert 16.0 < arrival_s < 19.0  # 40 m at 2.5 m/s, plus speeding up and slowing down


def test_horizontal_acceleration_is_limited() -> None:
    path = trajectory(Motion(up=40.0), Setpoint(1_000.0, 0.0, 40.0), seconds=3.0)
    speeds = [m.ground_speed_mps for m in path]
    steps = [b - a for a, b in itertools.pairwise(speeds)]
    assert max(steps) <= AIRFRAME.acceleration_mps2 * DT + 1e-9
    assert speeds[-1] == pytest.approx(3.0 * AIRFRAME.acceleration_mps2)


def test_cruise_speed_is_never_exceeded() -> None:
    path = trajectory(Motion(up=40.0), Setpoint(1_000.0, 500.0, 40.0), seconds=60.0)
    assert max(m.ground_speed_mps for m in path) == pytest.approx(AIRFRAME.cruise_speed_mps)


def test_the_vehicle_stops_on_its_setpoint_without_overshooting() -> None:
    path = trajectory(Motion(up=40.0), Setpoint(300.0, 0.0, 40.0), seconds=60.0, dt=0.5)
    assert max(m.east for m in path) == 300.0
    assert path[-1] == Motion(300.0, 0.0, 40.0)


def test_a_large_step_still_lands_on_the_setpoint() -> None:
    path = trajectory(Motion(up=40.0), Setpoint(50.0, 0.0, 40.0), seconds=30.0, dt=1.0)
    assert path[-1].east == 50.0


def test_hold_brakes_to_a_stop_at_the_acceleration_limit() -> None:
    moving = Motion(up=40.0, v_east=10.0)
    path = trajectory(moving, HOLD_HERE, seconds=6.0)
    assert path[-1].ground_speed_mps == 0.0
    assert path[-1].east == pytest.approx(10.0**2 / (2 * AIRFRAME.acceleration_mps2), abs=0.6)


def test_a_landing_slows_to_land_speed_below_5_m_and_touches_down() -> None:
    path = trajectory(Motion(up=40.0), Setpoint(landing=True), seconds=60.0)
    above = [m.v_up for m in path if m.up > 10.0]
    below = [m.v_up for m in path if 0.0 < m.up < 4.0]
    assert min(above) == pytest.approx(-AIRFRAME.descent_speed_mps)
    assert all(v == pytest.approx(-AIRFRAME.land_speed_mps) for v in below)
    assert path[-1] == Motion()


def test_an_emergency_landing_descends_faster() -> None:
    normal = trajectory(Motion(up=40.0), Setpoint(landing=True), seconds=20.0)
    emergency = trajectory(Motion(up=40.0), Setpoint(landing=True, emergency=True), seconds=20.0)
    assert emergency[-1].up < normal[-1].up
    assert min(m.v_up for m in emergency) == pytest.approx(-AIRFRAME.emergency_descent_speed_mps)


def test_the_power_phase_follows_the_motion() -> None:
    assert power_phase(Motion(), armed=False) is FlightPhase.DISARMED
    assert power_phase(Motion(), armed=True) is FlightPhase.ARMED
    assert power_phase(Motion(up=5.0, v_up=2.0), armed=True) is FlightPhase.TAKEOFF
    assert power_phase(Motion(up=5.0, v_up=-1.0), armed=True) is FlightPhase.LAND
    assert power_phase(Motion(up=5.0, v_east=8.0), armed=True) is FlightPhase.CRUISE
    assert power_phase(Motion(up=5.0), armed=True) is FlightPhase.HOLD
