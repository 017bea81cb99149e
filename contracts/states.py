"""The job and delivery state machines, as transition tables.

A table maps each state to the states it may move to. Terminal states map to nothing.
`advance()` is the one place that accepts or refuses a transition.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

S = TypeVar("S", bound=StrEnum)


class IllegalTransitionError(ValueError):
    """Raised when a state machine refuses a transition."""

    def __init__(self, current: StrEnum, new: StrEnum) -> None:
        super().__init__(f"illegal transition {current.value} -> {new.value}")
        self.current = current
        self.new = new


class JobState(StrEnum):
    """One drone's job, as in AWS IoT Jobs: the drone writes its own progress."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


_J = JobState
JOB_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    _J.OFFERED: frozenset({_J.ACCEPTED, _J.REJECTED, _J.CANCELLED, _J.TIMED_OUT}),
    _J.ACCEPTED: frozenset({_J.IN_PROGRESS, _J.SUCCEEDED, _J.FAILED, _J.CANCELLED, _J.TIMED_OUT}),
    # IN_PROGRESS -> IN_PROGRESS is each new phase.
    _J.IN_PROGRESS: frozenset(
        {_J.IN_PROGRESS, _J.SUCCEEDED, _J.FAILED, _J.CANCELLED, _J.TIMED_OUT}
    ),
    _J.SUCCEEDED: frozenset(),
    _J.FAILED: frozenset(),
    _J.REJECTED: frozenset(),
    _J.CANCELLED: frozenset(),
    _J.TIMED_OUT: frozenset(),
}


class DeliveryStage(StrEnum):
    """A delivery as its client sees it (the Azure Drone Delivery stages, extended)."""

    REQUESTED = "Requested"
    SCHEDULED = "Scheduled"
    HEADED_TO_PICKUP = "HeadedToPickup"
    PICKED_UP = "PickedUp"
    HEADED_TO_DROPOFF = "HeadedToDropoff"
    DELIVERED = "Delivered"
    RESCHEDULED = "Rescheduled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    FAILED = "Failed"
    UNASSIGNABLE = "Unassignable"


_D = DeliveryStage
# Before pickup (the saga's pivot) a delivery can still be rescheduled, cancelled, rejected or
# found unassignable; after it, only delivered or failed. Skipping forward is allowed because
# events from different producers arrive in any order; going back never is.
_BEFORE_PICKUP_EXITS = frozenset({_D.RESCHEDULED, _D.CANCELLED, _D.REJECTED, _D.UNASSIGNABLE})
_AFTER_PICKUP = frozenset({_D.PICKED_UP, _D.HEADED_TO_DROPOFF, _D.DELIVERED, _D.FAILED})
DELIVERY_TRANSITIONS: Mapping[DeliveryStage, frozenset[DeliveryStage]] = {
    _D.REQUESTED: frozenset({_D.SCHEDULED, _D.HEADED_TO_PICKUP})
    | _BEFORE_PICKUP_EXITS
    | _AFTER_PICKUP,
    _D.SCHEDULED: frozenset({_D.HEADED_TO_PICKUP}) | _BEFORE_PICKUP_EXITS | _AFTER_PICKUP,
    _D.HEADED_TO_PICKUP: _BEFORE_PICKUP_EXITS | _AFTER_PICKUP,
    _D.RESCHEDULED: frozenset({_D.SCHEDULED, _D.HEADED_TO_PICKUP})
    | (_BEFORE_PICKUP_EXITS - {_D.RESCHEDULED})
    | _AFTER_PICKUP,
    _D.PICKED_UP: frozenset({_D.HEADED_TO_DROPOFF, _D.DELIVERED, _D.FAILED}),
    _D.HEADED_TO_DROPOFF: frozenset({_D.DELIVERED, _D.FAILED}),
    _D.DELIVERED: frozenset(),
    _D.CANCELLED: frozenset(),
    _D.REJECTED: frozenset(),
    _D.FAILED: frozenset(),
    _D.UNASSIGNABLE: frozenset(),
}

TERMINAL_STAGES = frozenset(s for s, nxt in DELIVERY_TRANSITIONS.items() if not nxt)
TERMINAL_JOB_STATES = frozenset(s for s, nxt in JOB_TRANSITIONS.items() if not nxt)


def can_advance(table: Mapping[S, frozenset[S]], current: S, new: S) -> bool:
    """Whether `table` allows moving from `current` to `new`."""
    return new in table[current]


def advance(table: Mapping[S, frozenset[S]], current: S, new: S) -> S:
    """Return `new` if `table` allows it from `current`; raise IllegalTransitionError if not."""
    if new not in table[current]:
        raise IllegalTransitionError(current, new)
    return new
