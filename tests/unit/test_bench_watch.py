"""The benchmarks' one instrument of what the client sees: raw messages to what each needs."""

import json
from datetime import UTC, datetime

from benchmarks.watch import Watch

ROOT = "murmur/v1"


def status(delivery_id: str, version: int, stage: str, reason: str | None = None) -> bytes:
    data = {"delivery_id": delivery_id, "version": version, "stage": stage, "reason": reason}
    return json.dumps({"data": data}).encode()


def link(kind: str, name: str, state: str, sent: float) -> bytes:
    data = {"drone_id" if kind == "drones" else "service": name, "link": state}
    time = datetime.fromtimestamp(sent, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"time": time, "data": data}).encode()


def test_the_watch_keeps_the_first_sighting_of_each_assignment_and_delivery() -> None:
    watch = Watch()
    delivered = b'{"data": {"stage": "Delivered", "delivery_id": "x"}}'

    watch.see(f"{ROOT}/deliveries/x/assigned", b"{}", 1.0)
    watch.see(f"{ROOT}/deliveries/x/assigned", b"{}", 2.0)
    watch.see(f"{ROOT}/deliveries/x/status", b'{"data": {"stage": "Scheduled"}}', 3.0)
    watch.see(f"{ROOT}/deliveries/x/status", delivered, 4.0)
    watch.see(f"{ROOT}/deliveries/x/status", delivered, 5.0)
    watch.see(f"{ROOT}/drones/d-1/telemetry", b"{}", 6.0)

    assert watch.assigned_at == {"x": 1.0}
    assert watch.delivered_at == {"x": 4.0}
    assert watch.telemetry_from == {"d-1"}


def test_the_watch_times_the_offer_and_the_drones_accept() -> None:
    watch = Watch()
    offer = b'{"data": {"delivery_id": "x", "job_id": "j"}}'
    accepted = b'{"type": "murmur.job.accepted.v1", "data": {"delivery_id": "x"}}'
    progress = b'{"type": "murmur.job.progressed.v1", "data": {"delivery_id": "x"}}'

    watch.see(f"{ROOT}/drones/d-1/jobs/j/offer", offer, 1.0)
    watch.see(f"{ROOT}/drones/d-1/jobs/j/update", progress, 2.0)
    watch.see(f"{ROOT}/drones/d-1/jobs/j/update", accepted, 3.0)

    assert watch.offered_at == {"x": 1.0}
    assert watch.accepted_at == {"x": 3.0}


def test_the_latest_status_of_a_wanted_delivery_wins_whatever_the_order() -> None:
    watch = Watch(wanted={"a", "b"})
    reason = "no drone took the delivery before its deadline"

    watch.see(f"{ROOT}/deliveries/a/status", status("a", 2, "Unassignable", reason), 1.0)
    watch.see(f"{ROOT}/deliveries/a/status", status("a", 1, "Requested"), 2.0)  # late, older
    watch.see(f"{ROOT}/deliveries/b/status", status("b", 1, "Requested"), 3.0)
    watch.see(f"{ROOT}/deliveries/c/status", status("c", 5, "Rejected"), 4.0)  # not wanted

    assert watch.latest == {"a": (2, "Unassignable", reason), "b": (1, "Requested", None)}
    assert watch.terminal == {"a"}


def test_links_count_online_only_when_sent_since_the_moment_asked() -> None:
    watch = Watch()

    watch.see(f"{ROOT}/drones/d-1/status", link("drones", "d-1", "online", 100.0), 1.0)
    watch.see(f"{ROOT}/drones/d-2/status", link("drones", "d-2", "online", 200.0), 1.0)
    watch.see(f"{ROOT}/drones/d-3/status", link("drones", "d-3", "online", 200.0), 1.0)
    watch.see(f"{ROOT}/drones/d-3/status", link("drones", "d-3", "offline", 201.0), 1.0)
    watch.see(f"{ROOT}/services/package/status", link("services", "package", "online", 5.0), 1.0)

    assert watch.drones_online() == 2
    assert watch.drones_online(since=150.0) == 1
    assert watch.services_online() == 1
    assert watch.services_online(since=10.0) == 0


def test_a_message_that_is_not_what_its_topic_says_is_skipped() -> None:
    watch = Watch(wanted={"a"})

    watch.see(f"{ROOT}/deliveries/a/status", b"not json", 1.0)
    watch.see(f"{ROOT}/services/package/status", b'{"data": {}}', 1.0)
    watch.see("short", b"{}", 1.0)

    assert watch.latest == {}
    assert watch.services_online() == 0


async def test_until_is_woken_by_a_message_and_gives_up_at_its_timeout() -> None:
    watch = Watch()

    assert await watch.until(lambda: True, 0.0)
    assert not await watch.until(lambda: "x" in watch.assigned_at, 0.05)
    watch.see(f"{ROOT}/deliveries/x/assigned", b"{}", 1.0)
    assert await watch.until(lambda: "x" in watch.assigned_at, 0.05)
