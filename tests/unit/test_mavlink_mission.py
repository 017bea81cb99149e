import math

import pytest

from contracts.ids import Location
from firmware_sim.failures import Failure
from firmware_sim.mavlink.mission import (
    MAX_ITEMS,
    MAX_RETRIES,
    RETRY_S,
    Finish,
    MissionControl,
    MissionItem,
    MissionUpload,
    RequestItem,
    RunState,
)
from firmware_sim.mavlink.protocol import Cmd, Frame, GripperAction, MissionResult, MissionState
from firmware_sim.state import SimEvent
from firmware_sim.vehicle import SimVehicle
from flight_model.geo import haversine_m
from tests.builders import HOME
from tests.flights import DT, a_hovering_vehicle, a_sim_vehicle, east_of

REL = Frame.GLOBAL_RELATIVE_ALT_INT


def at(
    seq: int,
    location: Location,
    altitude_m: float,
    command: int = Cmd.NAV_WAYPOINT,
    *,
    hold_s: float = 0.0,
) -> MissionItem:
    return MissionItem(
        seq,
        REL,
        command,
        params=(hold_s, 0.0, 0.0, 0.0),
        x=round(location.latitude * 1e7),
        y=round(location.longitude * 1e7),
        z=altitude_m,
    )


def takeoff(seq: int, altitude_m: float = 10.0) -> MissionItem:
    return MissionItem(seq, REL, Cmd.NAV_TAKEOFF, z=altitude_m)


def land(seq: int) -> MissionItem:
    return MissionItem(seq, REL, Cmd.NAV_LAND)


def gripper(seq: int, action: GripperAction, kg: float = 0.0) -> MissionItem:
    return MissionItem(seq, Frame.GLOBAL, Cmd.DO_GRIPPER, params=(1.0, float(action), kg, 0.0))


def upload(items: list[MissionItem]) -> Finish:
    """Run a whole upload, answering each request with the item asked for."""
    transaction = MissionUpload(len(items), now=0.0)
    reply = transaction.begin()
    while isinstance(reply, RequestItem):
        next_reply = transaction.on_item(items[reply.seq], now=0.0)
        assert next_reply is not None
        reply = next_reply
    return reply


# --- upload ----------------------------------------------------------------------------------


def test_an_upload_requests_each_item_in_turn_and_acks_the_mission() -> None:
    items = [takeoff(0), at(1, east_of(HOME, 100.0), 15.0), land(2)]
    transaction = MissionUpload(3, now=0.0)
    assert transaction.begin() == RequestItem(0)
    assert transaction.on_item(items[0], now=0.1) == RequestItem(1)
    assert transaction.on_item(items[1], now=0.2) == RequestItem(2)
    assert transaction.on_item(items[2], now=0.3) == Finish(MissionResult.ACCEPTED, tuple(items))
    assert transaction.done


def test_an_item_out_of_sequence_is_dropped_and_the_expected_one_requested_again() -> None:
    transaction = MissionUpload(3, now=0.0)
    transaction.begin()
    transaction.on_item(takeoff(0), now=0.1)
    assert transaction.on_item(land(2), now=0.2) == RequestItem(1)
    assert transaction.on_item(takeoff(0), now=0.3) == RequestItem(1)  # a duplicate of item 0
    assert transaction.expected == 1


def test_a_silent_uploader_is_asked_again_every_half_second_five_times_then_cancelled() -> None:
    transaction = MissionUpload(2, now=0.0)
    assert transaction.begin() == RequestItem(0)
    assert transaction.on_timer(RETRY_S - 0.01) is None  # not yet
    times = [RETRY_S * k for k in range(1, MAX_RETRIES + 1)]
    assert [transaction.on_timer(t) for t in times] == [RequestItem(0)] * MAX_RETRIES
    last = transaction.on_timer(times[-1] + RETRY_S)
    assert last == Finish(MissionResult.OPERATION_CANCELLED)
    assert transaction.done
    assert transaction.on_timer(100.0) is None


def test_an_item_that_arrives_resets_the_retries() -> None:
    transaction = MissionUpload(2, now=0.0)
    transaction.begin()
    for k in range(1, MAX_RETRIES + 1):
        transaction.on_timer(RETRY_S * k)
    transaction.on_item(takeoff(0), now=3.0)
    replies = [transaction.on_timer(3.0 + RETRY_S * k) for k in range(1, MAX_RETRIES + 2)]
    assert replies == [RequestItem(1)] * MAX_RETRIES + [Finish(MissionResult.OPERATION_CANCELLED)]


@pytest.mark.parametrize(
    ("item", "result"),
    [
        (MissionItem(1, REL, 183), MissionResult.UNSUPPORTED),  # DO_SET_SERVO
        (MissionItem(1, REL, Cmd.NAV_WAYPOINT + 1), MissionResult.UNSUPPORTED),  # LOITER_UNLIM
        (MissionItem(1, 1, Cmd.NAV_WAYPOINT), MissionResult.UNSUPPORTED_FRAME),  # LOCAL_NED
    ],
)
def test_an_item_the_vehicle_cannot_fly_makes_the_final_ack_a_refusal(
    item: MissionItem, result: MissionResult
) -> None:
    assert upload([takeoff(0), item, land(2)]) == Finish(result)


def test_an_empty_upload_clears_and_a_huge_one_has_no_space() -> None:
    assert MissionUpload(0, now=0.0).begin() == Finish(MissionResult.ACCEPTED, ())
    assert MissionUpload(MAX_ITEMS + 1, now=0.0).begin() == Finish(MissionResult.NO_SPACE)


# --- flying ----------------------------------------------------------------------------------


def fly(control: MissionControl, *, limit_s: float = 600.0) -> list[int]:
    """Step the vehicle until the mission completes or pauses; the items reached."""
    reached: list[int] = []
    elapsed = 0.0
    while control.state is RunState.ACTIVE and elapsed < limit_s:
        reached += control.on_events(control.vehicle.step(DT)).reached
        elapsed += DT
    return reached


def armed(vehicle: SimVehicle) -> SimVehicle:
    assert vehicle.arm().accepted
    return vehicle


def test_a_delivery_mission_flies_its_items_in_order_and_completes() -> None:
    vehicle = armed(a_sim_vehicle())
    vehicle.load_payload(1.0)
    dropoff = east_of(HOME, 300.0, north_m=100.0)
    control = MissionControl(vehicle)
    control.replace(
        [takeoff(0, 20.0), at(1, dropoff, 30.0), at(2, dropoff, 5.0, hold_s=3.0),
         gripper(3, GripperAction.RELEASE), MissionItem(4, REL, Cmd.NAV_RETURN_TO_LAUNCH)]
    )  # fmt: skip
    assert control.report().state is MissionState.NOT_STARTED
    ack, news = control.start()
    assert ack.accepted
    assert news.reached == []
    assert control.report().in_mission_mode
    assert fly(control) == [0, 1, 2, 3, 4]
    state = vehicle.state()
    assert (state.landed, state.payload_kg) == (True, 0.0)
    assert haversine_m(state.position, HOME) < 2.0
    assert control.report().state is MissionState.COMPLETE


def test_a_waypoint_is_reported_on_arrival_and_left_after_its_hold_time() -> None:
    vehicle = a_hovering_vehicle(20.0)
    control = MissionControl(vehicle)
    control.replace([at(0, east_of(HOME, 100.0), 20.0, hold_s=5.0), land(1)])
    control.start()
    reached: list[int] = []
    while not reached:
        reached = control.on_events(vehicle.step(DT)).reached
    arrived_s = vehicle.flight.time_s
    while control.current == 0:
        control.on_events(vehicle.step(DT))
    assert vehicle.flight.time_s - arrived_s == pytest.approx(5.0)
    assert fly(control) == [1]


def test_a_landing_item_with_a_position_flies_there_before_descending() -> None:
    vehicle = a_hovering_vehicle(20.0)
    target = east_of(HOME, 200.0)
    control = MissionControl(vehicle)
    control.replace([at(0, target, math.nan, Cmd.NAV_LAND)])
    control.start()
    assert fly(control) == [0]
    state = vehicle.state()
    assert state.landed
    assert haversine_m(state.position, target) < 2.5


def test_a_mission_that_cannot_start_is_refused_with_the_vehicles_reason() -> None:
    control = MissionControl(a_sim_vehicle())  # disarmed
    control.replace([takeoff(0)])
    ack, _ = control.start()
    assert (ack.accepted, ack.reason) == (False, "mission item 0: not armed")
    assert control.state is RunState.PAUSED
    assert MissionControl(a_sim_vehicle()).start()[0].reason == "no mission"


def test_a_failing_item_pauses_the_mission_and_says_why() -> None:
    vehicle = a_hovering_vehicle(40.0)
    control = MissionControl(vehicle)
    control.replace([gripper(0, GripperAction.RELEASE)])  # nothing on board
    ack, news = control.start()
    assert ack.accepted is False
    assert control.state is RunState.PAUSED
    assert news.reached == []


def test_a_failsafe_pauses_the_mission_and_the_vehicle_follows_its_own_rule() -> None:
    vehicle = a_hovering_vehicle(20.0)
    control = MissionControl(vehicle)
    control.replace([at(0, east_of(HOME, 2_000.0), 20.0)])
    control.start()
    vehicle.inject(Failure("battery", "drop", value=15.0))
    news = control.on_events(vehicle.step(DT))
    assert news.failure == "mission paused by failsafe_battery"
    assert not control.active
    assert control.report().state is MissionState.PAUSED


def test_a_paused_mission_resumes_at_its_current_item() -> None:
    vehicle = armed(a_sim_vehicle())
    control = MissionControl(vehicle)
    far = east_of(HOME, 500.0)
    control.replace([takeoff(0, 10.0), at(1, far, 10.0)])
    control.start()
    reached: list[int] = []
    while not reached:
        reached = control.on_events(vehicle.step(DT)).reached
    assert control.current == 1
    control.pause()
    assert vehicle.hold().accepted
    assert control.on_events([SimEvent("reached", "target")]).reached == []  # paused: ignored
    ack, _ = control.resume()
    assert ack.accepted
    assert fly(control) == [1]
    assert haversine_m(vehicle.state().position, far) < 2.5


def test_a_new_mission_replaces_the_old_and_an_empty_one_clears_it() -> None:
    control = MissionControl(a_sim_vehicle())
    control.replace([takeoff(0)])
    assert control.report().total == 1
    control.replace([])
    report = control.report()
    assert (report.state, report.total) == (MissionState.NO_MISSION, 0xFFFF)
