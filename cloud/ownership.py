"""A drone speaks only for the jobs it was given; an update for another's job is refused.

The source check of the contract (`contracts.producers`) makes sure an update comes from the
drone it names; this makes sure that drone holds the job. Both end in a dead letter with a
reason, never in a silent drop.
"""

from typing import Any

from bus.outbox import Outbox
from contracts import Envelope

NOT_ASSIGNED = "not_assigned"


def refuse_foreign(event: Envelope[Any], assigned_to: str, out: Outbox) -> None:
    """Dead-letter a job update from a drone that does not hold the job."""
    update = event.data
    out.refuse(
        event,
        reason=NOT_ASSIGNED,
        detail=f"job {update.job_id} is assigned to {assigned_to}, not {update.drone_id}",
    )
