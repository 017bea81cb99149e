"""`murmur agent --config FILE` as systemd runs it: a real process, settings from the file."""

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bus.url import BrokerUrl
from contracts.events import DroneStatus, Link
from tests.brokers import TestBroker
from tests.probe import probing

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ROOT = "murmur/v1"


@asynccontextmanager
async def murmur(*args: str, env: Mapping[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """`murmur ARGS` with only `env` as its MURMUR_* variables; SIGTERM at the end."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MURMUR_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "murmur", *args,
        cwd=REPO, env={**clean, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await proc.communicate()


def agent_toml(broker: TestBroker, tmp_path: Path, drone_id: str) -> Path:
    """Everything in the file: no credentials on the command line or in the URL."""
    password = tmp_path / "mqtt-password"
    password.write_text(f"{broker.password}\n")
    url = BrokerUrl.parse(broker.url)
    path = tmp_path / "agent.toml"
    path.write_text(
        f'drone_id = "{drone_id}"\n'
        f'broker = "mqtt://{url.host}:{url.port}"\n'
        f'username = "{broker.username}"\n'
        f'password_file = "{password}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        'log_level = "INFO"\n'
        'log_format = "json"\n'
    )
    return path


async def json_log_until(
    stream: asyncio.StreamReader, message_part: str, timeout: float = 20
) -> dict[str, Any]:
    """Read JSON log lines until one whose message contains `message_part`."""
    async with asyncio.timeout(timeout):
        while line := await stream.readline():
            entry: dict[str, Any] = json.loads(line)
            if message_part in entry["message"]:
                return entry
    pytest.fail(f"the process ended before logging {message_part!r}")


async def test_an_agent_configured_by_a_file_connects_and_announces_itself(
    broker: TestBroker, tmp_path: Path
) -> None:
    config = agent_toml(broker, tmp_path, "d-file")
    async with (
        probing(broker.url, [f"{ROOT}/drones/+/status"]) as probe,
        murmur("agent", "--config", str(config), env={}) as agent,
    ):
        [status] = await probe.wait_for(DroneStatus, lambda s: s.link == Link.ONLINE)
        assert status.drone_id == "d-file"
        assert agent.stderr is not None
        connected = await json_log_until(agent.stderr, "connected to")
        assert connected["level"] == "INFO"
        assert connected["component"] == "d-file"
        assert broker.password not in json.dumps(connected)
    assert (tmp_path / "state" / "d-file.db").is_file()


async def test_a_variable_overrides_the_file_and_a_flag_overrides_the_variable(
    broker: TestBroker, tmp_path: Path
) -> None:
    config = agent_toml(broker, tmp_path, "d-file")
    env = {"MURMUR_DRONE_ID": "d-env", "MURMUR_LOG_FORMAT": "text"}
    async with probing(broker.url, [f"{ROOT}/drones/+/status"]) as probe:
        async with murmur("agent", "--config", str(config), env=env):
            await probe.wait_for(DroneStatus, lambda s: s.drone_id == "d-env")
        async with murmur("agent", "--config", str(config), "--drone-id", "d-flag", env=env):
            await probe.wait_for(DroneStatus, lambda s: s.drone_id == "d-flag")
    assert not probe.of(DroneStatus, lambda s: s.drone_id == "d-file")


async def test_an_invalid_file_is_refused_with_every_problem_and_exit_code_2(
    tmp_path: Path,
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('drone_id = "d-1"\ntelemetry_hz = "fast"\ntelemetry_rate = 2\n')
    async with murmur("agent", "--config", str(config), env={}) as agent:
        async with asyncio.timeout(30):
            out, err = await agent.communicate()
    assert agent.returncode == 2
    assert out == b""
    assert err.decode().splitlines() == [
        (
            f"murmur agent: telemetry_rate: unknown setting (in {config}); did you mean "
            "`telemetry_hz`?"
        ),
        f"murmur agent: telemetry_hz: expected a number, got 'fast' (in {config})",
        f"murmur agent: broker: missing (--broker, MURMUR_BROKER or `broker` in {config})",
    ]
