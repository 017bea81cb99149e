import asyncio

import pytest

from firmware_sim.simulator import Simulator
from firmware_sim.state import SimEvent
from firmware_sim.vehicle import SimVehicle
from flight_model.clock import ManualClock
from tests.builders import HOME, PICKUP
from tests.flights import a_sim_vehicle


def recording(simulator: Simulator) -> list[tuple[str, list[SimEvent]]]:
    seen: list[tuple[str, list[SimEvent]]] = []
    simulator.on_tick(lambda vehicle, events: seen.append((vehicle.vehicle_id, events)))
    return seen


def test_a_step_moves_every_vehicle_and_tells_the_listeners() -> None:
    simulator = Simulator(ManualClock())
    for name in ("d-1", "d-2"):
        vehicle = a_sim_vehicle(vehicle_id=name)
        vehicle.arm()
        vehicle.takeoff(10.0)
        simulator.add(vehicle)
    seen = recording(simulator)
    simulator.step(0.5)
    assert seen == [("d-1", [SimEvent("takeoff")]), ("d-2", [SimEvent("takeoff")])]


def test_a_listener_for_one_vehicle_hears_only_that_one() -> None:
    simulator = Simulator(ManualClock())
    simulator.add(a_sim_vehicle(vehicle_id="d-1"))
    simulator.add(a_sim_vehicle(vehicle_id="d-2"))
    heard: list[str] = []
    simulator.on_tick(lambda vehicle, _: heard.append(vehicle.vehicle_id), vehicle_id="d-2")
    simulator.step(0.5)
    assert heard == ["d-2"]


def test_a_vehicle_is_simulated_once() -> None:
    simulator = Simulator(ManualClock())
    simulator.add(a_sim_vehicle())
    with pytest.raises(ValueError, match="already simulated"):
        simulator.add(a_sim_vehicle())


def test_a_removed_vehicle_is_handed_back_and_no_longer_stepped() -> None:
    simulator = Simulator(ManualClock())
    simulator.add(a_sim_vehicle(vehicle_id="d-1"))
    seen = recording(simulator)
    assert simulator.remove("d-1").vehicle_id == "d-1"
    simulator.step(1.0)
    assert (seen, dict(simulator.vehicles)) == ([], {})


async def test_the_loop_steps_each_tick_of_simulated_time() -> None:
    clock = ManualClock()
    simulator = Simulator(clock, tick_s=0.5)
    vehicle = a_sim_vehicle()
    vehicle.arm()
    vehicle.goto(PICKUP)
    simulator.add(vehicle)
    seen = recording(simulator)
    loop = asyncio.create_task(simulator.run())
    for _ in range(4):
        await clock.wait_for_sleepers()
        clock.advance(0.5)
    await clock.wait_for_sleepers()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert len(seen) == 4
    assert vehicle.flight.time_s == pytest.approx(2.0)


async def test_a_late_loop_steps_the_time_that_really_passed_in_slices_of_a_second() -> None:
    clock = ManualClock()
    simulator = Simulator(clock, tick_s=0.5)
    simulator.add(SimVehicle(vehicle_id="d-1", home=HOME))
    seen = recording(simulator)
    loop = asyncio.create_task(simulator.run())
    await clock.wait_for_sleepers()
    clock.advance(3.0)
    await clock.wait_for_sleepers()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert len(seen) == 3  # listeners hear every slice: the companion heartbeat rides on them
    assert simulator.vehicles["d-1"].flight.time_s == pytest.approx(3.0)


def test_a_thousand_vehicles_tick_in_well_under_a_tick() -> None:
    """Test that the physics stays cheap: 1,000 flying drones cost far less than a second."""
    simulator = Simulator(ManualClock(), tick_s=1.0)
    for i in range(1_000):
        vehicle = a_sim_vehicle(vehicle_id=f"d-{i}")
        vehicle.arm()
        vehicle.goto(PICKUP)
        simulator.add(vehicle)
    simulator.step(1.0)
    assert all(v.flight.time_s == 1.0 for v in simulator.vehicles.values())
