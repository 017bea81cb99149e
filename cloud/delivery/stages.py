"""How events move a delivery's stage, and its ETA: pure rules, no I/O."""

from datetime import datetime, timedelta

from contracts.events import JobPhase
from contracts.ids import Location
from contracts.states import DELIVERY_TRANSITIONS, DeliveryStage, can_advance
from flight_model.airframe import Airframe
from flight_model.geo import haversine_m

_S = DeliveryStage
BEFORE_PICKUP = frozenset({_S.REQUESTED, _S.SCHEDULED, _S.HEADED_TO_PICKUP, _S.RESCHEDULED})
ETA_TOLERANCE_S = 60.0

# The stages a job phase implies, in order; a stage already passed is skipped.
_PHASE_STAGES: dict[JobPhase, tuple[DeliveryStage, ...]] = {
    JobPhase.TO_PICKUP: (_S.HEADED_TO_PICKUP,),
    JobPhase.LOADING: (_S.HEADED_TO_PICKUP,),
    JobPhase.TO_DROPOFF: (_S.PICKED_UP, _S.HEADED_TO_DROPOFF),
    JobPhase.RELEASING: (_S.PICKED_UP, _S.HEADED_TO_DROPOFF),
}


def forward(current: DeliveryStage, wanted: tuple[DeliveryStage, ...]) -> list[DeliveryStage]:
    """The stages of `wanted` that move `current` forward, in order; never backwards."""
    moves = []
    for stage in wanted:
        if stage != current and can_advance(DELIVERY_TRANSITIONS, current, stage):
            moves.append(stage)
            current = stage
    return moves


def stages_for_phase(phase: JobPhase) -> tuple[DeliveryStage, ...]:
    """What a drone entering `phase` of the current job says about the delivery."""
    return _PHASE_STAGES.get(phase, ())


def eta(
    *,
    now: datetime,
    stage: DeliveryStage,
    eta_s: float | None,
    pickup: Location,
    dropoff: Location,
    airframe: Airframe,
) -> datetime | None:
    """When the package should reach the dropoff, from the drone's time to its next target."""
    if eta_s is None:
        return None
    if stage in (_S.SCHEDULED, _S.HEADED_TO_PICKUP):
        leg_s = haversine_m(pickup, dropoff) / airframe.cruise_speed_mps
        return now + timedelta(seconds=eta_s + airframe.dwell_s + leg_s)
    if stage in (_S.PICKED_UP, _S.HEADED_TO_DROPOFF):
        return now + timedelta(seconds=eta_s)
    return None


def eta_moved(published: datetime | None, estimate: datetime) -> bool:
    """Whether a new estimate is worth a new status version."""
    if published is None:
        return True
    return abs((estimate - published).total_seconds()) > ETA_TOLERANCE_S
