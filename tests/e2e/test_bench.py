"""`murmur bench`: the harness runs its sections on one broker and reports them in one shape.

These check the shape of the results (keys, types, positive figures), never the speed.
"""

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from benchmarks import harness, raw
from bus.url import BrokerUrl
from tests.brokers import TestBroker
from tests.e2e.test_cli import murmur

pytestmark = pytest.mark.e2e


def positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def check_raw(section: dict[str, Any], *, messages: int, rtt_samples: int) -> None:
    assert section["messages"] == messages
    assert section["received"] == messages, "QoS 1 on a healthy broker: every message arrives"
    assert section["publish_failures"] == 0
    assert section["qos"] == 1
    assert section["in_flight_window"] == raw.WINDOW
    assert section["payload_bytes"] == raw.event_payload_bytes()
    assert section["client"].startswith("paho-mqtt ")
    for key in ("throughput_msg_s", "seconds", "publish_acked_s", "topic_bytes"):
        assert positive(section[key]), key
    assert isinstance(section["duplicates"], int)
    rtt = section["rtt_ms"]
    assert rtt["samples"] == rtt_samples
    assert positive(rtt["p50"])
    assert rtt["p50"] <= rtt["p99"] <= rtt["max"]


def check_results(results: dict[str, Any], *, sections: set[str]) -> None:
    machine = results["machine"]
    assert positive(machine["cpus"])
    assert isinstance(machine["python"], str)
    assert isinstance(machine["platform"], str)
    assert isinstance(machine["broker_kind"], str)
    assert machine["broker_version"] is None or isinstance(machine["broker_version"], str)
    assert datetime.fromisoformat(results["started"]).tzinfo is not None
    assert results["quick"] is True
    assert results["broker"].startswith("mqtt://127.0.0.1:")
    assert set(results["sections"]) == sections
    assert set(results["section_elapsed_s"]) == sections
    assert positive(results["elapsed_s"])
    for name, section in results["sections"].items():
        assert isinstance(section, dict), name
        assert "error" not in section, section
    check_raw(
        results["sections"]["raw"],
        messages=raw.QUICK.messages,
        rtt_samples=raw.QUICK.rtt_samples,
    )


def rendered(results: dict[str, Any]) -> str:
    console = Console(record=True, width=200)
    console.print(harness.table(results))
    return console.export_text()


async def test_raw_baseline_gets_every_message_through(broker: TestBroker) -> None:
    url = BrokerUrl.parse(broker.url)
    # In a thread: paho blocks, and the amqtt broker runs on this test's event loop.
    result = await asyncio.to_thread(raw.measure, url, quick=True, messages=300, rtt_samples=30)
    check_raw(result, messages=300, rtt_samples=30)
    assert result["duplicates"] == 0
    json.dumps(result)  # JSON-able as it is


def test_the_raw_payload_is_as_large_as_a_real_event() -> None:
    size = raw.event_payload_bytes()
    assert 300 < size < 2_000  # a DeliveryStatusChanged in its CloudEvents envelope


async def test_harness_main_runs_the_raw_section_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert await harness.main(None, quick=True, json_path=out, only={"raw"}) == 0
    results = json.loads(out.read_text())
    check_results(results, sections={"raw"})
    assert results["machine"]["broker_kind"].startswith("amqtt")
    text = rendered(results)
    assert "throughput" in text
    assert "msg/s" in text


async def test_each_section_gets_the_same_broker_and_choreography_gets_raw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    async def choreography(url: BrokerUrl, *, quick: bool, raw: dict[str, Any]) -> dict[str, Any]:
        seen["choreography"] = (url, raw)
        return {"quick": quick}

    def fleet(url: BrokerUrl, *, quick: bool) -> dict[str, Any]:
        seen["fleet"] = url  # a plain function: the harness runs it in a thread
        return {"quick": quick}

    monkeypatch.setitem(harness.MEASURES, "choreography", choreography)
    monkeypatch.setitem(harness.MEASURES, "fleet", fleet)

    results = await harness.run(None, quick=True)

    check_results(results, sections={"raw", "choreography", "fleet"})
    url, baseline = seen["choreography"]
    assert url == seen["fleet"]
    assert str(url) == results["broker"]
    assert baseline == results["sections"]["raw"]


async def test_a_failing_section_is_recorded_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def choreography(_url: BrokerUrl, *, quick: bool, **_: Any) -> dict[str, Any]:
        msg = f"no drones today (quick={quick})"
        raise RuntimeError(msg)

    monkeypatch.setitem(harness.MEASURES, "choreography", choreography)
    out = tmp_path / "bench.json"

    assert await harness.main(None, quick=True, json_path=out, only={"raw", "choreography"}) == 1

    results = json.loads(out.read_text())
    assert results["sections"]["choreography"] == {
        "error": "RuntimeError: no drones today (quick=True)"
    }
    assert results["sections"]["raw"]["received"] == raw.QUICK.messages
    assert "no drones today" in rendered(results)


async def test_an_unknown_section_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown section"):
        await harness.run(None, quick=True, only={"raw", "speed"})


async def test_murmur_bench_quick_runs_every_section_and_writes_their_figures(
    tmp_path: Path,
) -> None:
    """Test that every section ran and wrote its figures, in their shape.

    Not how fast: how many of a burst were assigned within a window, or how many drones of a
    step connected in time, is a figure of the benchmark (docs/performance.md), and a busy
    machine moves it.
    """
    out = tmp_path / "bench.json"
    proc = await murmur("bench", "--quick", "--json", str(out))
    async with asyncio.timeout(170):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert "events the services handled" in stdout.decode()
    results = json.loads(out.read_text())
    check_results(results, sections=set(harness.SECTIONS))
    burst = results["sections"]["choreography"]["throughput"]
    assert isinstance(burst["all_delivered"], bool)
    assert figure(burst["events_per_s"])
    assert figure(burst["ratio_to_raw"])
    fixed = results["sections"]["choreography"]["latency"]["fixed_rate"]
    assert positive(fixed["offered"])
    assert 0 <= fixed["assigned"] <= fixed["offered"]
    assert fixed["request_to_assigned"]["p99_ms"] is None or figure(
        fixed["request_to_assigned"]["p99_ms"]
    )
    fleet = results["sections"]["fleet"]
    [step] = fleet["steps"]
    assert step["drones"] == 50
    assert 0 <= step["connected"] <= step["drones"]
    assert isinstance(step["messages_received"], int)
    for key in ("lag_p99_ms", "fleet_rss_mib_per_drone"):
        assert step[key] is None or figure(step[key]), key
    assert "memory per drone" in stdout.decode()


def figure(value: object) -> bool:
    """A measured number: finite and not negative (zero when nothing was measured)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e12
