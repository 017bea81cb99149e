"""The chaos run, small: every kind of fault once, and every promise kept (docs/reliability.md).

On Mosquitto only: the run restarts the broker and expects its persistence to keep every
queued message, which amqtt (all in memory) cannot. `./scripts/chaos` runs the full size.
"""

from pathlib import Path

import pytest

from tests.brokers import require_mosquitto
from tests.chaos import ChaosPlan, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.mosquitto]

SMALL = ChaosPlan(
    deliveries=30,
    drones=8,
    kills_per_service=1,
    cut_links=1,
    seed=7,
    request_window_s=10.0,
    timeout_s=120.0,
)


async def test_killing_services_the_broker_a_link_and_an_agent_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    require_mosquitto()

    report = await run_chaos(SMALL, tmp_path)

    assert report.verdict.problems == [], f"logs and trace.jsonl in {tmp_path}"
    # Every fault happened: three service kills, the broker restart, a cut link, an agent kill.
    assert len(report.faults_done) == 6, report.faults_done
    assert not [f for f in report.faults_done if "skipped" in f]
    assert sum(report.stages.values()) == SMALL.deliveries
    assert report.stages.get("Delivered", 0) > 0
