"""The agent's own rules for jobs: whether to take an offer, and what a failure means. Pure."""

from dataclasses import dataclass
from datetime import datetime

from contracts.events import JobOffered, JobPhase, JobRejectionReason, PackageState

# A job's phases in flight order; a restarted agent resumes from the one it stored.
PHASES: tuple[JobPhase, ...] = tuple(JobPhase)


@dataclass(frozen=True)
class Readiness:
    """What the agent knows about itself when an offer arrives."""

    busy: bool
    fc_ready: bool
    max_payload_kg: float
    energy_ok: bool


def rejection_reason(
    offer: JobOffered, readiness: Readiness, *, now: datetime
) -> JobRejectionReason | None:
    """Why this drone must turn the offer down, or None to accept it.

    Checked in order of what the operator most needs to know: a busy drone is busy
    whatever the package weighs.
    """
    if readiness.busy:
        return JobRejectionReason.BUSY
    if offer.payload_kg > readiness.max_payload_kg:
        return JobRejectionReason.PAYLOAD_OVER_CAPACITY
    if not readiness.fc_ready:
        return JobRejectionReason.FC_NOT_READY
    if not readiness.energy_ok:
        return JobRejectionReason.INSUFFICIENT_ENERGY
    if offer.answer_by < now:
        return JobRejectionReason.OFFER_EXPIRED
    return None


def phases_from(phase: JobPhase) -> tuple[JobPhase, ...]:
    """The phases still to fly, starting with `phase`."""
    return PHASES[PHASES.index(phase) :]


def can_abandon(package: PackageState) -> bool:
    """A job may be cancelled until the package is on board (pickup is the pivot)."""
    return package is PackageState.NOT_LOADED


def failure_reason(failsafe: str) -> str:
    """The job-failure reason for a flight-controller failsafe."""
    return failsafe if failsafe.startswith("failsafe_") else f"failsafe_{failsafe}"
