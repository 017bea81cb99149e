"""The job and delivery state machines, read as tables."""

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

import pytest

from contracts.states import (
    DELIVERY_TRANSITIONS,
    JOB_TRANSITIONS,
    TERMINAL_JOB_STATES,
    TERMINAL_STAGES,
    DeliveryStage,
    IllegalTransitionError,
    JobState,
    advance,
    can_advance,
)

S = TypeVar("S", bound=StrEnum)
D = DeliveryStage
J = JobState

BEFORE_PICKUP = frozenset(
    {
        D.REQUESTED,
        D.SCHEDULED,
        D.HEADED_TO_PICKUP,
        D.RESCHEDULED,
        D.CANCELLED,
        D.REJECTED,
        D.UNASSIGNABLE,
    }
)
AFTER_PICKUP = frozenset(D) - BEFORE_PICKUP


def _walk(table: Mapping[S, frozenset[S]], *path: S) -> S:
    state = path[0]
    for new in path[1:]:
        state = advance(table, state, new)
    return state


def _reachable(table: Mapping[S, frozenset[S]], start: S) -> set[S]:
    seen, todo = {start}, [start]
    while todo:
        for new in table[todo.pop()] - seen:
            seen.add(new)
            todo.append(new)
    return seen


@pytest.mark.parametrize(
    "path",
    [
        (J.OFFERED, J.ACCEPTED, J.IN_PROGRESS, J.IN_PROGRESS, J.IN_PROGRESS, J.SUCCEEDED),
        (J.OFFERED, J.REJECTED),
        (J.OFFERED, J.TIMED_OUT),
        (J.OFFERED, J.ACCEPTED, J.CANCELLED),
        (J.OFFERED, J.ACCEPTED, J.IN_PROGRESS, J.FAILED),
        (J.OFFERED, J.ACCEPTED, J.IN_PROGRESS, J.TIMED_OUT),
    ],
    ids="-".join,
)
def test_a_job_follows_its_happy_and_unhappy_paths(path: tuple[JobState, ...]) -> None:
    assert _walk(JOB_TRANSITIONS, *path) is path[-1]


@pytest.mark.parametrize(
    "path",
    [
        (
            D.REQUESTED,
            D.SCHEDULED,
            D.HEADED_TO_PICKUP,
            D.PICKED_UP,
            D.HEADED_TO_DROPOFF,
            D.DELIVERED,
        ),
        (
            D.REQUESTED,
            D.SCHEDULED,
            D.RESCHEDULED,
            D.SCHEDULED,
            D.HEADED_TO_PICKUP,
            D.PICKED_UP,
            D.DELIVERED,
        ),
        (D.REQUESTED, D.SCHEDULED, D.HEADED_TO_PICKUP, D.RESCHEDULED, D.HEADED_TO_PICKUP),
        (D.REQUESTED, D.SCHEDULED, D.HEADED_TO_PICKUP, D.CANCELLED),
        (D.REQUESTED, D.REJECTED),
        (D.REQUESTED, D.UNASSIGNABLE),
        (D.REQUESTED, D.SCHEDULED, D.HEADED_TO_PICKUP, D.PICKED_UP, D.HEADED_TO_DROPOFF, D.FAILED),
        (D.REQUESTED, D.HEADED_TO_DROPOFF, D.DELIVERED),
    ],
    ids="-".join,
)
def test_a_delivery_follows_its_happy_and_unhappy_paths(path: tuple[DeliveryStage, ...]) -> None:
    assert _walk(DELIVERY_TRANSITIONS, *path) is path[-1]


def test_every_state_appears_as_a_key() -> None:
    assert set(JOB_TRANSITIONS) == set(JobState)
    assert set(DELIVERY_TRANSITIONS) == set(DeliveryStage)


def test_every_state_is_reachable_from_the_first() -> None:
    assert _reachable(JOB_TRANSITIONS, J.OFFERED) == set(JobState)
    assert _reachable(DELIVERY_TRANSITIONS, D.REQUESTED) == set(DeliveryStage)


def test_the_terminal_states_are_exactly_those_without_exits() -> None:
    assert {J.SUCCEEDED, J.FAILED, J.REJECTED, J.CANCELLED, J.TIMED_OUT} == TERMINAL_JOB_STATES
    assert {D.DELIVERED, D.CANCELLED, D.REJECTED, D.FAILED, D.UNASSIGNABLE} == TERMINAL_STAGES
    for terminal in TERMINAL_JOB_STATES:
        assert JOB_TRANSITIONS[terminal] == frozenset()
    for stage in TERMINAL_STAGES:
        assert DELIVERY_TRANSITIONS[stage] == frozenset()


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STAGES))
def test_a_finished_delivery_moves_nowhere(terminal: DeliveryStage) -> None:
    for new in DeliveryStage:
        assert not can_advance(DELIVERY_TRANSITIONS, terminal, new)


@pytest.mark.parametrize("after", sorted(AFTER_PICKUP))
def test_no_delivery_goes_back_from_after_pickup_to_before_it(after: DeliveryStage) -> None:
    assert DELIVERY_TRANSITIONS[after].isdisjoint(BEFORE_PICKUP)


@pytest.mark.parametrize("after", sorted(AFTER_PICKUP - TERMINAL_STAGES))
def test_after_pickup_a_delivery_can_only_be_delivered_or_fail(after: DeliveryStage) -> None:
    assert DELIVERY_TRANSITIONS[after] <= {D.HEADED_TO_DROPOFF, D.DELIVERED, D.FAILED}
    assert {D.DELIVERED, D.FAILED} <= DELIVERY_TRANSITIONS[after]


def test_a_delivery_can_be_cancelled_until_pickup_and_not_after() -> None:
    before = BEFORE_PICKUP - TERMINAL_STAGES
    assert all(can_advance(DELIVERY_TRANSITIONS, stage, D.CANCELLED) for stage in before)
    assert not any(can_advance(DELIVERY_TRANSITIONS, stage, D.CANCELLED) for stage in AFTER_PICKUP)


def test_a_delivery_never_moves_to_the_stage_it_is_in() -> None:
    for stage, exits in DELIVERY_TRANSITIONS.items():
        assert stage not in exits


def test_only_a_job_in_progress_may_repeat_its_state() -> None:
    assert [s for s, exits in JOB_TRANSITIONS.items() if s in exits] == [J.IN_PROGRESS]


def test_an_illegal_transition_names_both_states() -> None:
    with pytest.raises(IllegalTransitionError) as refused:
        advance(DELIVERY_TRANSITIONS, D.PICKED_UP, D.CANCELLED)

    assert str(refused.value) == "illegal transition PickedUp -> Cancelled"
    assert (refused.value.current, refused.value.new) == (D.PICKED_UP, D.CANCELLED)
    assert isinstance(refused.value, ValueError)


def test_an_illegal_job_transition_names_both_states() -> None:
    with pytest.raises(IllegalTransitionError, match="succeeded -> in_progress"):
        advance(JOB_TRANSITIONS, J.SUCCEEDED, J.IN_PROGRESS)
