"""`murmur trace`: the causal chain of a delivery, from the Delivery service's journal."""

import json
from pathlib import Path
from typing import Any

import pytest

from contracts.events import DeliveryStatusChanged, DroneAssigned, JobFailed, TelemetryReported
from contracts.states import DeliveryStage
from firmware_sim.failures import Failure
from tests.brokers import TestBroker
from tests.e2e.test_choreography import a_request, of_delivery, reached, send
from tests.e2e.test_cli import murmur
from tests.e2e.test_cli_cloud import finished
from tests.probe import probing
from tests.system import ROOT, Drone, near, running_system

pytestmark = pytest.mark.e2e


def _kind(entry: dict[str, Any]) -> str:
    return str(entry["type"]).removeprefix("murmur.").rsplit(".v", 1)[0]


async def test_the_trace_of_a_rescheduled_delivery_shows_both_jobs_in_order(
    broker: TestBroker, tmp_path: Path
) -> None:
    motor = Failure(component="motor", kind="off", at_s=20.0)
    drones = {"d-1": Drone(near(1300, 0), [motor]), "d-2": Drone(near(0, 0))}
    request = a_request(pickup=near(1500, 0), dropoff=near(1500, 800))
    async with (
        probing(broker.url, [f"{ROOT}/#"]) as probe,
        running_system(broker.url, tmp_path, drones),
    ):
        await send(broker.url, request)
        await reached(probe, request.delivery_id, DeliveryStage.DELIVERED)
        as_json = await murmur("trace", request.delivery_id, "--broker", broker.url, "--json")
        out, err = await finished(as_json, timeout=30)
        assert as_json.returncode == 0, err
        as_tree = await murmur("trace", request.delivery_id, "--broker", broker.url)
        tree, err = await finished(as_tree, timeout=30)
        assert as_tree.returncode == 0, err

    entries = json.loads(out)
    kinds = [_kind(e) for e in entries]
    first, second = [a.job_id for a in probe.of(DroneAssigned)]
    [failed] = probe.of(JobFailed)
    offers = [e for e in entries if _kind(e) == "job.offered"]
    assert [o["summary"].split()[:2] for o in offers] == [["d-1", first], ["d-2", second]]
    # The first job's whole story comes before the second job's offer.
    assert kinds.index("job.failed") < entries.index(offers[1])
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)), "an event journaled twice"
    # Every status the client saw is there, under the event that caused it; only telemetry
    # (an ETA that moved) is left out of the journal.
    published = [
        e
        for e in probe.seen
        if isinstance(e.data, DeliveryStatusChanged) and of_delivery(request.delivery_id)(e.data)
    ]
    by_id = {e["id"]: e for e in entries}
    types_seen = {e.id: e.type for e in probe.seen}
    for status in published:
        assert status.id in by_id
        cause = by_id[status.id]["causationid"]
        assert cause in by_id or types_seen.get(cause) == TelemetryReported.type
    rescheduled = next(e for e in entries if "Rescheduled" in (e.get("summary") or ""))
    [failure] = [e for e in probe.seen if e.data == failed]
    assert rescheduled["causationid"] == failure.id
    assert kinds[0] == "delivery.requested"
    # The tree names the delivery, both drones, both jobs and the end.
    for text in (request.delivery_id, "d-1", "d-2", first, second, "Delivered"):
        assert text in tree


async def test_trace_of_an_unknown_delivery_says_so_and_without_a_delivery_service_times_out(
    broker: TestBroker, tmp_path: Path
) -> None:
    async with running_system(broker.url, tmp_path, {}, services=("delivery",)) as system:
        unknown = await murmur("trace", "del-nobody", "--broker", broker.url)
        out, _ = await finished(unknown, timeout=30)
        assert unknown.returncode == 1
        assert "knows no events of del-nobody" in out
        await system.stop("delivery")
        silent = await murmur("trace", "del-nobody", "--broker", broker.url, "--timeout", "0.5")
        _, err = await finished(silent, timeout=30)
    assert silent.returncode == 1
    assert "is the Delivery service running?" in err
