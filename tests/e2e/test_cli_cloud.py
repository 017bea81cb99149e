"""`murmur up`, `request` and `cancel` as a user runs them: real processes, a real broker."""

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from contracts.events import DeliveryStatusChanged
from contracts.states import DeliveryStage
from tests.brokers import TestBroker
from tests.e2e.test_cli import murmur
from tests.probe import probing

pytestmark = pytest.mark.e2e

ROOT = "murmur/v1"
PICKUP, DROPOFF = "47.3800,8.5450", "47.3740,8.5500"


async def finished(proc: asyncio.subprocess.Process, timeout: float = 60) -> tuple[str, str]:
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    return out.decode(), err.decode()


async def _drain(stream: asyncio.StreamReader, into: bytearray) -> None:
    while chunk := await stream.read(65536):
        into += chunk


@asynccontextmanager
async def running_up(broker: TestBroker, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`murmur up` against the test broker until the block ends (then Ctrl-C).

    Its output is read all along: once a pipe is full, its next print blocks its event loop,
    and with it the handling of Ctrl-C.
    """
    proc = await murmur("up", "--broker", broker.url, *args)
    assert proc.stdout is not None
    assert proc.stderr is not None
    err = bytearray()
    drains = [asyncio.create_task(_drain(proc.stderr, err))]
    try:
        async with asyncio.timeout(30):
            ready = await proc.stdout.readline()
        assert ready.startswith(b"murmur up:"), ready
        drains.append(asyncio.create_task(_drain(proc.stdout, bytearray())))
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(20):
                await proc.wait()
        except TimeoutError:
            proc.kill()  # never leave it behind, holding the broker and the run
            await proc.wait()
            pytest.fail(f"murmur up ignored Ctrl-C for 20 s; stderr ends: {err[-2000:].decode()}")
        finally:
            await asyncio.gather(*drains)


async def test_murmur_up_until_idle_prints_one_summary_with_every_delivery_delivered() -> None:
    proc = await murmur(
        "up", "--drones", "3", "--deliveries", "4", "--speedup", "200", "--until-idle", "--json"
    )
    out, err = await finished(proc)
    assert proc.returncode == 0, err
    [line] = out.strip().splitlines()
    summary = json.loads(line)
    assert summary["broker"].startswith("mqtt://127.0.0.1:")
    assert summary["drones"] == 3
    assert summary["deliveries"] == {"total": 4, "by_stage": {"Delivered": 4}}
    for span in ("request_to_assigned", "request_to_delivered"):
        latency = summary["latency_s"][span]
        assert 0 < latency["p50"] <= latency["p99"]
    assert summary["latency_s"]["request_to_assigned"]["p99"] < summary["elapsed_s"]


async def test_murmur_request_and_up_name_every_invalid_setting() -> None:
    proc = await murmur(
        "request",
        "--broker",
        "http://x",
        "--pickup",
        "91,0",
        "--dropoff",
        "1,2",
        "--weight",
        "-1",
        "--deadline",
        "2030-01-01T10:00:00",
    )
    _, err = await finished(proc)
    assert proc.returncode == 2
    flags = [line.split(":")[1].strip() for line in err.strip().splitlines()]
    assert flags == ["--broker", "--pickup", "--deadline", "--weight"]

    proc = await murmur("up", "--drones", "0", "--speedup", "-3", "--demand", "nan")
    _, err = await finished(proc)
    assert proc.returncode == 2
    assert [line.split(":")[1].strip() for line in err.strip().splitlines()] == [
        "--speedup",
        "--drones",
        "--demand",
    ]
    proc = await murmur("up", "--demand", "10", "--until-idle")
    _, err = await finished(proc)
    assert proc.returncode == 2
    assert "--demand: requests never stop, so --until-idle would never end" in err


def stages_of(lines: list[dict[str, Any]]) -> list[str]:
    stages: list[str] = []
    for line in lines:
        if not stages or stages[-1] != line["stage"]:
            stages.append(line["stage"])
    return stages


async def test_murmur_request_follows_a_delivery_to_its_end_and_says_how_it_ended(
    broker: TestBroker,
) -> None:
    async with running_up(broker, "--drones", "2", "--speedup", "200"):
        ok = await murmur(
            "request", "--broker", broker.url, "--pickup", PICKUP, "--dropoff", DROPOFF,
            "--weight", "1.5", "--follow", "--json", "--timeout", "60",
        )  # fmt: skip
        refused = await murmur(
            "request", "--broker", broker.url, "--pickup", PICKUP, "--dropoff", DROPOFF,
            "--weight", "1.0", "--tag", "hazmat", "--follow", "--json", "--timeout", "60",
        )  # fmt: skip
        (out, err), (refused_out, refused_err) = await asyncio.gather(
            finished(ok), finished(refused)
        )

    assert ok.returncode == 0, out + err
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert len({line["delivery_id"] for line in lines}) == 1
    assert stages_of(lines) == [
        "Requested",
        "Scheduled",
        "HeadedToPickup",
        "PickedUp",
        "HeadedToDropoff",
        "Delivered",
    ]
    assert refused.returncode == 1, refused_err
    last = json.loads(refused_out.strip().splitlines()[-1])
    assert last["stage"] == "Rejected"
    assert "tag_refused" in last["reason"]


async def test_murmur_cancel_before_pickup_cancels_the_delivery(broker: TestBroker) -> None:
    far_pickup = "47.3900,8.5600"  # 2 km out: still on its way when cancelled
    async with running_up(broker, "--drones", "1", "--speedup", "20"):
        request = await murmur(
            "request", "--broker", broker.url, "--pickup", far_pickup, "--dropoff", DROPOFF,
            "--weight", "1.0",
        )  # fmt: skip
        out, err = await finished(request)
        assert request.returncode == 0, err
        delivery_id = out.strip()
        async with probing(broker.url, [f"{ROOT}/deliveries/{delivery_id}/status"]) as probe:
            await probe.wait_for(
                DeliveryStatusChanged, lambda s: s.stage == DeliveryStage.HEADED_TO_PICKUP
            )
            cancel = await murmur("cancel", delivery_id, "--broker", broker.url)
            _, err = await finished(cancel)
            assert cancel.returncode == 0, err
            [cancelled] = await probe.wait_for(
                DeliveryStatusChanged, lambda s: s.stage == DeliveryStage.CANCELLED
            )
    assert cancelled.delivery_id == delivery_id


async def test_murmur_up_twice_on_one_broker_sees_only_its_own_deliveries(
    broker: TestBroker,
) -> None:
    for _ in range(2):  # the second run finds the first one's retained statuses and sessions
        proc = await murmur(
            "up", "--broker", broker.url, "--drones", "2", "--deliveries", "2",
            "--speedup", "200", "--until-idle", "--json",
        )  # fmt: skip
        out, err = await finished(proc)
        assert proc.returncode == 0, err
        summary = json.loads(out)
        assert summary["deliveries"] == {"total": 2, "by_stage": {"Delivered": 2}}
        assert summary["latency_s"]["request_to_assigned"]["p50"] > 0


async def test_murmur_up_with_demand_keeps_requesting_and_delivering_until_stopped(
    broker: TestBroker,
) -> None:
    # 120 an hour at a speed-up of 200 is one request every 0.15 s of real time.
    args = ("--drones", "3", "--demand", "120", "--speedup", "200", "--no-ui")
    async with (
        probing(broker.url, [f"{ROOT}/deliveries/+/status"]) as probe,
        running_up(broker, *args),
    ):
        delivered = await probe.wait_for(
            DeliveryStatusChanged, lambda s: s.stage == DeliveryStage.DELIVERED, count=3, timeout=60
        )
    assert len({s.delivery_id for s in delivered}) == 3
