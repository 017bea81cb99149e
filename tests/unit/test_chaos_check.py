"""The chaos run's judge: each rule passes a sound trace and catches the break it names."""

from typing import Any

from contracts.events import Event, JobCancelled, JobOffered, JobSucceeded, TelemetryReported
from contracts.states import DeliveryStage
from tests.builders import (
    a_delivery_status,
    a_job_acceptance,
    a_job_cancellation,
    a_job_offer,
    a_job_success,
    a_telemetry_report,
    an_envelope,
)
from tests.chaos_check import Consumer, Recorded, first_seen, lost, verdict

ROOT = "murmur/v1"


def rec(data: Event, **overrides: Any) -> Recorded:
    envelope = an_envelope(data, **overrides)
    return data.resolved_topic(ROOT), envelope


def judge(trace: list[Recorded], **kwargs: Any) -> dict[str, list[str]]:
    args: dict[str, Any] = {"requested": [], "final_stages": {}, "consumers": []} | kwargs
    return {k: v for k, v in vars(verdict(trace, **args)).items() if v}


def test_a_redelivery_counts_once() -> None:
    accepted = rec(a_job_acceptance(job_id="j-1"))
    assert first_seen([accepted, accepted]) == [accepted]


def test_a_sound_delivery_breaks_no_rule() -> None:
    trace = [
        rec(a_job_acceptance(drone_id="d-1", job_id="j-1")),
        rec(a_job_success(drone_id="d-1", job_id="j-1", delivery_id="del-1")),
        rec(a_delivery_status(delivery_id="del-1", stage=DeliveryStage.DELIVERED, version=5)),
        rec(a_job_acceptance(drone_id="d-1", job_id="j-2")),
    ]
    done = {"del-1": DeliveryStage.DELIVERED}
    assert judge(trace, requested=["del-1"], final_stages=done) == {}


def test_a_delivery_without_a_terminal_status_is_unfinished() -> None:
    stages = {"del-1": DeliveryStage.HEADED_TO_DROPOFF}
    assert judge([], requested=["del-1", "del-2"], final_stages=stages) == {
        "unfinished": ["del-1 ended HeadedToDropoff", "del-2 ended without a status"]
    }


def test_a_status_after_the_end_reopens_the_delivery() -> None:
    trace = [
        rec(a_delivery_status(delivery_id="del-1", stage=DeliveryStage.FAILED, version=4)),
        rec(a_delivery_status(delivery_id="del-1", stage=DeliveryStage.DELIVERED, version=5)),
    ]
    assert judge(trace)["reopened"] == ["del-1: Failed then Delivered"]


def test_two_jobs_succeeding_for_one_delivery_is_a_double_delivery() -> None:
    trace = [
        rec(a_job_success(drone_id="d-1", job_id="j-1", delivery_id="del-1")),
        rec(a_job_success(drone_id="d-2", job_id="j-2", delivery_id="del-1")),
    ]
    assert judge(trace)["delivered_twice"] == ["del-1: jobs ['j-1', 'j-2'] succeeded"]


def test_two_distinct_delivered_statuses_are_a_double_delivery() -> None:
    status = a_delivery_status(delivery_id="del-1", stage=DeliveryStage.DELIVERED, version=5)
    trace = [rec(status), rec(status)]  # two events (two ids) saying the same thing
    assert judge(trace)["delivered_twice"] == ["del-1: 2 Delivered statuses"]


def test_accepting_a_job_while_holding_another_is_two_jobs() -> None:
    trace = [
        rec(a_job_acceptance(drone_id="d-1", job_id="j-1")),
        rec(a_job_acceptance(drone_id="d-1", job_id="j-2")),
    ]
    assert judge(trace)["two_jobs"] == ["d-1 accepted j-2 holding j-1"]


def test_a_cancelled_job_frees_the_drone() -> None:
    cancel: JobCancelled = a_job_cancellation(drone_id="d-1", job_id="j-1")
    trace = [
        rec(a_job_acceptance(drone_id="d-1", job_id="j-1")),
        rec(cancel),
        rec(a_job_acceptance(drone_id="d-1", job_id="j-2")),
    ]
    assert "two_jobs" not in judge(trace)


def test_an_event_a_subscriber_never_committed_is_lost() -> None:
    handled = rec(a_job_offer(drone_id="d-1", job_id="j-1"))
    missed = rec(a_job_offer(drone_id="d-1", job_id="j-2"))
    elsewhere = rec(a_job_offer(drone_id="d-2", job_id="j-3"))  # not on its subscription
    telemetry = rec(a_telemetry_report(drone_id="d-1"))  # QoS 0: may be lost
    consumer = Consumer(
        "d-1",
        {
            JobOffered: f"{ROOT}/drones/d-1/jobs/+/offer",
            TelemetryReported: f"{ROOT}/drones/d-1/telemetry",
            JobSucceeded: f"{ROOT}/drones/d-1/jobs/+/update",
        },
        handled=frozenset({(handled[1].source, handled[1].id)}),
    )
    assert lost([handled, missed, elsewhere, telemetry], consumer) == [
        f"d-1 never handled murmur.job.offered.v1 {missed[1].id} on {missed[0]}"
    ]


def test_a_dead_lettered_event_is_accounted_for() -> None:
    offer = rec(a_job_offer(drone_id="d-1"))
    consumer = Consumer(
        "d-1",
        {JobOffered: f"{ROOT}/drones/+/jobs/+/offer"},
        handled=frozenset(),
        dead_lettered=frozenset({offer[1].id}),
    )
    assert lost([offer], consumer) == []
