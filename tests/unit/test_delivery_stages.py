from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.delivery.stages import (
    BEFORE_PICKUP,
    ETA_TOLERANCE_S,
    eta,
    eta_moved,
    forward,
    stages_for_phase,
)
from contracts.events import JobPhase
from contracts.states import DELIVERY_TRANSITIONS, TERMINAL_STAGES, DeliveryStage, can_advance
from flight_model.airframe import Airframe
from flight_model.geo import from_enu
from tests.builders import PICKUP, T0

D = DeliveryStage
AIRFRAME = Airframe()
DROPOFF_1200_M = from_enu(PICKUP, 1_200.0, 0.0)


def _eta_s_from_now(
    stage: DeliveryStage, eta_s: float | None, airframe: Airframe = AIRFRAME
) -> float | None:
    estimate = eta(
        now=T0,
        stage=stage,
        eta_s=eta_s,
        pickup=PICKUP,
        dropoff=DROPOFF_1200_M,
        airframe=airframe,
    )
    return None if estimate is None else (estimate - T0).total_seconds()


# --- forward -----------------------------------------------------------------------------------


def test_a_delivery_never_moves_backwards() -> None:
    assert forward(D.HEADED_TO_DROPOFF, (D.HEADED_TO_PICKUP,)) == []
    assert forward(D.PICKED_UP, (D.SCHEDULED, D.HEADED_TO_PICKUP)) == []


def test_stages_already_passed_are_skipped() -> None:
    wanted = (D.HEADED_TO_PICKUP, D.PICKED_UP, D.HEADED_TO_DROPOFF)

    assert forward(D.PICKED_UP, wanted) == [D.HEADED_TO_DROPOFF]


def test_several_stages_are_returned_in_order() -> None:
    wanted = (D.PICKED_UP, D.HEADED_TO_DROPOFF)

    assert forward(D.HEADED_TO_PICKUP, wanted) == [D.PICKED_UP, D.HEADED_TO_DROPOFF]


def test_a_later_stage_first_makes_an_earlier_one_after_it_illegal() -> None:
    wanted = (D.HEADED_TO_DROPOFF, D.PICKED_UP)

    assert forward(D.HEADED_TO_PICKUP, wanted) == [D.HEADED_TO_DROPOFF]


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STAGES))
def test_nothing_follows_a_terminal_stage(terminal: DeliveryStage) -> None:
    assert forward(terminal, tuple(DeliveryStage)) == []


def test_the_stage_a_delivery_is_in_is_not_repeated() -> None:
    assert forward(D.HEADED_TO_PICKUP, (D.HEADED_TO_PICKUP,)) == []
    assert forward(D.SCHEDULED, (D.PICKED_UP, D.PICKED_UP)) == [D.PICKED_UP]


def test_nothing_wanted_moves_nothing() -> None:
    assert forward(D.REQUESTED, ()) == []


@given(
    current=st.sampled_from(DeliveryStage),
    wanted=st.lists(st.sampled_from(DeliveryStage), max_size=8).map(tuple),
)
def test_every_stage_forward_returns_is_a_legal_transition_from_the_one_before(
    current: DeliveryStage, wanted: tuple[DeliveryStage, ...]
) -> None:
    moves = forward(current, wanted)

    for before, after in zip([current, *moves], moves, strict=False):
        assert can_advance(DELIVERY_TRANSITIONS, before, after)
    remaining = iter(wanted)
    assert all(stage in remaining for stage in moves)  # a subsequence of `wanted`


# --- stages_for_phase ----------------------------------------------------------------------------


@pytest.mark.parametrize("phase", [JobPhase.TO_PICKUP, JobPhase.LOADING])
def test_a_drone_flying_to_or_loading_at_the_pickup_means_headed_to_pickup(
    phase: JobPhase,
) -> None:
    assert stages_for_phase(phase) == (D.HEADED_TO_PICKUP,)


@pytest.mark.parametrize("phase", [JobPhase.TO_DROPOFF, JobPhase.RELEASING])
def test_a_drone_flying_to_the_dropoff_implies_picked_up_then_headed_to_dropoff(
    phase: JobPhase,
) -> None:
    assert stages_for_phase(phase) == (D.PICKED_UP, D.HEADED_TO_DROPOFF)


@pytest.mark.parametrize("phase", [JobPhase.RETURNING, JobPhase.LANDING])
def test_a_drone_returning_or_landing_says_nothing_about_the_delivery(phase: JobPhase) -> None:
    assert stages_for_phase(phase) == ()


def test_a_scheduled_delivery_whose_drone_reports_to_dropoff_moves_through_pickup() -> None:
    wanted = stages_for_phase(JobPhase.TO_DROPOFF)

    assert forward(D.SCHEDULED, wanted) == [D.PICKED_UP, D.HEADED_TO_DROPOFF]
    assert forward(D.PICKED_UP, wanted) == [D.HEADED_TO_DROPOFF]
    assert forward(D.HEADED_TO_DROPOFF, wanted) == []


def test_a_late_to_pickup_phase_does_not_undo_a_pickup() -> None:
    assert forward(D.PICKED_UP, stages_for_phase(JobPhase.TO_PICKUP)) == []


def test_before_pickup_holds_exactly_the_live_stages_a_client_can_still_cancel() -> None:
    cancellable = {
        stage
        for stage in DeliveryStage
        if stage not in TERMINAL_STAGES and can_advance(DELIVERY_TRANSITIONS, stage, D.CANCELLED)
    }

    assert cancellable == BEFORE_PICKUP
    assert {D.REQUESTED, D.SCHEDULED, D.HEADED_TO_PICKUP, D.RESCHEDULED} == BEFORE_PICKUP


# --- eta -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [D.SCHEDULED, D.HEADED_TO_PICKUP])
def test_before_pickup_the_eta_adds_the_dwell_and_the_loaded_leg(stage: DeliveryStage) -> None:
    leg_s = 1_200.0 / AIRFRAME.cruise_speed_mps  # 120 s at 10 m/s
    expected = 90.0 + AIRFRAME.dwell_s + leg_s  # 90 + 15 + 120

    assert _eta_s_from_now(stage, 90.0) == pytest.approx(expected, abs=0.01)
    assert _eta_s_from_now(stage, 90.0) == pytest.approx(225.0, abs=0.01)


def test_the_eta_before_pickup_follows_the_airframe() -> None:
    slow = Airframe(cruise_speed_mps=5.0, dwell_s=60.0)

    assert _eta_s_from_now(D.HEADED_TO_PICKUP, 90.0, slow) == pytest.approx(390.0, abs=0.01)


@pytest.mark.parametrize("stage", [D.PICKED_UP, D.HEADED_TO_DROPOFF])
def test_after_pickup_the_eta_is_the_drones_own(stage: DeliveryStage) -> None:
    assert _eta_s_from_now(stage, 90.0) == 90.0
    assert _eta_s_from_now(stage, 0.0) == 0.0


@pytest.mark.parametrize("stage", sorted(D))
def test_without_the_drones_eta_there_is_no_estimate(stage: DeliveryStage) -> None:
    assert _eta_s_from_now(stage, None) is None


@pytest.mark.parametrize("stage", sorted(TERMINAL_STAGES))
def test_a_finished_delivery_has_no_eta(stage: DeliveryStage) -> None:
    assert _eta_s_from_now(stage, 90.0) is None


@pytest.mark.parametrize("stage", [D.REQUESTED, D.RESCHEDULED])
def test_a_delivery_without_a_drone_on_it_has_no_eta(stage: DeliveryStage) -> None:
    assert _eta_s_from_now(stage, 90.0) is None


# --- eta_moved -----------------------------------------------------------------------------------


def test_a_first_estimate_is_always_worth_publishing() -> None:
    assert eta_moved(None, T0)


@pytest.mark.parametrize("seconds", [0.0, 1.0, 59.0, 60.0, -60.0, -30.0])
def test_an_estimate_within_a_minute_of_the_published_one_is_not_worth_publishing(
    seconds: float,
) -> None:
    assert not eta_moved(T0, T0 + timedelta(seconds=seconds))


@pytest.mark.parametrize("seconds", [60.5, 61.0, -61.0, 3_600.0])
def test_an_estimate_over_a_minute_from_the_published_one_is_worth_publishing(
    seconds: float,
) -> None:
    assert eta_moved(T0, T0 + timedelta(seconds=seconds))


def test_the_eta_tolerance_is_one_minute() -> None:
    assert ETA_TOLERANCE_S == 60.0
