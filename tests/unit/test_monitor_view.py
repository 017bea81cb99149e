"""The console's fold and its frame: scripted envelopes in, text of the frame out."""

from typing import Any

from rich.console import Console

from cloud.monitor import FleetView, render
from cloud.monitor.render import MAP_HEIGHT, MAP_WIDTH
from cloud.monitor.view import Batch, Liveness, Severity, family
from contracts import Envelope, Event
from contracts.events import (
    Availability,
    DroneEventKind,
    JobPhase,
    Link,
)
from contracts.states import DeliveryStage
from flight_model.geo import from_enu
from tests.builders import (
    HOME,
    a_dead_letter,
    a_delivery_request,
    a_delivery_status,
    a_drone_event,
    a_drone_state,
    a_drone_status,
    a_job_offer,
    a_job_progress,
    a_job_rejection,
    a_package_rejection,
    a_service_status,
    a_telemetry_report,
    an_envelope,
    an_unassignable_delivery,
)

_S = DeliveryStage


def feed(view: FleetView, data: Event, now: float, *, retained: bool = False, **env: Any) -> None:
    view.apply(an_envelope(data, **env), now, retained=retained)


def frame(view: FleetView, now: float, *, width: int = 120, **options: Any) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(render(view, now, **options))
    return console.export_text()


def line_of(text: str, needle: str) -> str:
    [line] = [line for line in text.splitlines() if needle in line]
    return line


def a_flying_drone(view: FleetView, drone_id: str, now: float, **telemetry: Any) -> None:
    feed(view, a_drone_status(drone_id=drone_id), now, retained=True)
    feed(
        view,
        a_drone_state(drone_id=drone_id, availability=Availability.BUSY, job_id="j-1"),
        now,
        retained=True,
    )
    feed(
        view,
        a_telemetry_report(drone_id=drone_id, job_id="j-1", **telemetry),
        now,
        sequence=1,
    )


# --- the frame ---------------------------------------------------------------------------------


def test_drones_show_their_link_battery_and_phase() -> None:
    view = FleetView()
    a_flying_drone(view, "d-1", 0.0, battery_pct=76.0, phase="cruise")
    feed(view, a_job_progress(drone_id="d-1", job_id="j-1", phase=JobPhase.TO_DROPOFF), 0.5)

    row = line_of(frame(view, 1.0), "d-1")

    assert "online" in row
    assert "busy" in row
    assert "76%" in row
    assert "to_dropoff·cruise" in row
    assert "j-1" in row


def test_deliveries_show_their_stage_active_first() -> None:
    view = FleetView()
    feed(view, a_delivery_request(delivery_id="del-a"), 0.0)
    feed(view, a_delivery_status(delivery_id="del-a", stage=_S.HEADED_TO_PICKUP, version=3), 0.0)
    feed(view, a_delivery_status(delivery_id="del-b", stage=_S.DELIVERED, version=6), 1.0)
    feed(view, a_delivery_request(delivery_id="del-c"), 2.0)

    text = frame(view, 3.0)

    assert "HeadedToPickup" in line_of(text, "del-a")
    assert "Delivered" in line_of(text, "del-b")
    assert "Requested" in line_of(text, "del-c")
    assert text.index("del-c") < text.index("del-b")  # active before finished


def test_a_failsafe_is_an_alert() -> None:
    view = FleetView()
    feed(view, a_drone_event(drone_id="d-9", kind=DroneEventKind.FAILSAFE_BATTERY), 1.0)
    feed(view, a_drone_event(drone_id="d-9", kind=DroneEventKind.TAKEOFF), 1.0)

    assert [(a.severity, a.text) for a in view.alerts] == [
        (Severity.CRITICAL, "d-9 failsafe_battery")
    ]
    assert "d-9 failsafe_battery" in frame(view, 2.0)


def test_a_dead_letter_counts_in_the_dlq() -> None:
    view = FleetView()
    assert "DLQ 0" in frame(view, 0.0)

    feed(view, a_dead_letter(component="delivery"), 1.0)

    text = frame(view, 2.0)
    assert view.dlq_count == 1
    assert "DLQ 1 (delivery 1)" in text
    assert "dlq/delivery: not_json" in text


def test_a_drone_silent_too_long_is_stale() -> None:
    view = FleetView(stale_after_s=10.0)
    a_flying_drone(view, "d-1", 0.0)
    a_flying_drone(view, "d-2", 15.0)

    text = frame(view, 20.0)

    assert "stale" in line_of(text, "d-1")
    assert "online" in line_of(text, "d-2")
    assert "20s" in line_of(text, "d-1")  # last seen


def test_a_drone_whose_retained_status_says_offline_is_offline() -> None:
    view = FleetView()
    feed(view, a_drone_status(drone_id="d-3", link=Link.OFFLINE, session=4), 0.0, retained=True)

    assert "offline" in line_of(frame(view, 1.0), "d-3")
    assert not view.alerts  # a snapshot, not something that just happened


def test_the_progress_bar_counts_finished_deliveries_of_the_batch() -> None:
    view = FleetView()
    for i, stage in enumerate([_S.DELIVERED, _S.DELIVERED, _S.FAILED, _S.HEADED_TO_PICKUP]):
        feed(view, a_delivery_status(delivery_id=f"del-{i}", stage=stage, version=5), 1.0)

    text = frame(view, 2.0, batch=Batch(5))

    assert "3/5 finished" in text
    assert "2 Delivered, 1 Failed" in text
    assert "finished" not in frame(view, 2.0).splitlines()[1]  # no bar without a batch


def test_the_progress_bar_of_a_run_counts_only_that_runs_deliveries() -> None:
    view = FleetView()
    feed(
        view, a_delivery_status(delivery_id="up-old-00000", stage=_S.DELIVERED), 1.0, retained=True
    )
    feed(view, a_delivery_status(delivery_id="up-new-00000", stage=_S.FAILED), 1.0)

    text = frame(view, 2.0, batch=Batch(2, prefix="up-new-"))

    assert "1/2 finished" in text
    assert "1 Failed" in text
    assert "Delivered," not in line_of(text, "1/2 finished")


def test_a_hundred_drones_are_truncated_and_the_frame_fits_80_columns() -> None:
    view = FleetView()
    for i in range(100):
        a_flying_drone(view, f"d-{i:03d}", 0.0, position=from_enu(HOME, 30.0 * i, 10.0 * i))
    for i in range(50):
        feed(view, a_delivery_request(delivery_id=f"del-{i:03d}"), 0.0)

    text = frame(view, 1.0, width=80, max_rows=10)

    assert "… 90 more drones" in text
    assert "… 40 more active" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "P pickup" in text


def test_one_drone_alone_is_drawn_on_the_map() -> None:
    view = FleetView()
    a_flying_drone(view, "d-1", 0.0)

    lines = frame(view, 1.0).splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("┌"))
    map_rows = [line[1 : MAP_WIDTH + 1] for line in lines[top + 1 : top + 1 + MAP_HEIGHT]]

    assert sum(row.count("D") for row in map_rows) == 1


# --- the fold ---------------------------------------------------------------------------------


def test_duplicate_and_late_status_versions_do_not_regress_a_delivery() -> None:
    view = FleetView()
    feed(view, a_delivery_status(stage=_S.PICKED_UP, version=4), 0.0)
    feed(view, a_delivery_status(stage=_S.HEADED_TO_PICKUP, version=3), 1.0)  # late
    feed(view, a_delivery_status(stage=_S.SCHEDULED, version=4), 2.0)  # same version again

    [delivery] = view.deliveries.values()
    assert (delivery.stage, delivery.version) == (_S.PICKED_UP, 4)

    feed(view, a_delivery_status(stage=_S.HEADED_TO_DROPOFF, version=5), 3.0)
    assert delivery.stage is _S.HEADED_TO_DROPOFF


def test_a_finished_delivery_counts_once_even_when_its_status_repeats() -> None:
    view = FleetView(max_terminal=2)
    for i in range(4):
        feed(view, a_delivery_status(delivery_id=f"del-{i}", stage=_S.DELIVERED, version=6), i)
    feed(view, a_delivery_status(delivery_id="del-0", stage=_S.DELIVERED, version=6), 9.0)
    feed(view, a_delivery_request(delivery_id="del-1"), 9.0)

    assert sorted(view.deliveries) == ["del-2", "del-3"]  # the newest finished are kept
    assert view.finished_count() == 4


def test_the_request_gives_pickup_and_dropoff_and_a_status_keeps_them() -> None:
    view = FleetView()
    request = a_delivery_request()
    feed(view, a_delivery_status(stage=_S.SCHEDULED, version=2), 0.0)
    feed(view, request, 1.0)
    feed(view, a_delivery_status(stage=_S.HEADED_TO_PICKUP, version=3), 2.0)

    [delivery] = view.deliveries.values()
    assert (delivery.pickup, delivery.dropoff) == (request.pickup, request.dropoff)
    assert delivery.first_seen == 0.0


def test_a_job_offer_gives_the_route_when_the_request_was_missed() -> None:
    view = FleetView()
    feed(view, a_delivery_status(stage=_S.REQUESTED, version=1), 0.0, retained=True)
    offer = a_job_offer()
    feed(view, offer, 1.0)

    [delivery] = view.deliveries.values()
    assert (delivery.pickup, delivery.dropoff) == (offer.pickup, offer.dropoff)
    assert "P pickup" in frame(view, 2.0)


def test_a_late_will_of_an_old_session_does_not_take_a_drone_offline() -> None:
    view = FleetView()
    feed(view, a_drone_status(session=3), 0.0)
    feed(view, a_drone_status(session=2, link=Link.OFFLINE), 1.0)
    [drone] = view.drones.values()
    assert drone.link is Link.ONLINE

    feed(view, a_drone_status(session=3, link=Link.OFFLINE), 2.0)
    assert drone.liveness(2.0, 10.0) is Liveness.OFFLINE
    assert [a.text for a in view.alerts] == ["d-007 went offline"]


def test_a_retained_snapshot_is_not_a_sign_of_life() -> None:
    view = FleetView(stale_after_s=5.0)
    feed(view, a_drone_status(), 0.0, retained=True)
    feed(view, a_drone_state(), 0.0, retained=True)
    [drone] = view.drones.values()

    assert drone.last_seen is None
    assert view.liveness(drone, 4.0) is Liveness.ONLINE
    assert view.liveness(drone, 6.0) is Liveness.STALE
    assert view.rates(6.0) == {}


def test_telemetry_out_of_order_is_ignored() -> None:
    view = FleetView()
    feed(view, a_telemetry_report(battery_pct=60.0), 0.0, sequence=8)
    feed(view, a_telemetry_report(battery_pct=70.0), 1.0, sequence=7)
    [drone] = view.drones.values()
    assert drone.battery_pct == 60.0

    feed(view, a_telemetry_report(session=2, battery_pct=99.0), 2.0, sequence=0)  # restarted
    assert drone.battery_pct == 99.0


def test_rates_are_per_family_over_the_window() -> None:
    view = FleetView(rate_window_s=10.0)
    for i in range(40):
        feed(view, a_telemetry_report(), i / 2, sequence=i)  # 2 per second for 20 s
    feed(view, a_job_rejection(), 19.0)

    rates = view.rates(19.5)

    assert rates["telemetry"] == 2.0
    assert rates["job"] == 0.1
    assert family("murmur.drone.status.v1") == "drone"


def test_rejections_unassignable_and_services_going_offline_are_alerts() -> None:
    view = FleetView()
    feed(view, a_service_status(service="scheduler"), 0.0, retained=True)
    feed(view, a_package_rejection(), 1.0)
    feed(view, an_unassignable_delivery(), 2.0)
    feed(view, a_service_status(service="scheduler", link=Link.OFFLINE), 3.0)

    texts = [a.text for a in view.alerts]
    assert texts == [
        "package pkg-0001 of del-0001 rejected: overweight",
        "del-0001 unassignable: no feasible drone before the deadline",
        "service scheduler went offline",
    ]
    assert "scheduler offline" in frame(view, 4.0)


def test_alerts_are_bounded() -> None:
    view = FleetView(max_alerts=3)
    for i in range(10):
        feed(view, a_drone_event(kind=DroneEventKind.BATTERY_LOW), float(i))

    assert [a.at for a in view.alerts] == [7.0, 8.0, 9.0]


def test_an_envelope_of_any_event_can_be_folded() -> None:
    """Events the console does not show still count as traffic and change nothing."""
    view = FleetView()
    view.apply(Envelope[Event].new(a_job_rejection(), source="/drones/d-007"), 0.0)
    assert view.events_total == 1
    assert view.drones == {}
