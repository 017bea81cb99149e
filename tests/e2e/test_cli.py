"""The `murmur` command as a user runs it: a real process, real sockets."""

import asyncio
import json
import socket
import sys
from pathlib import Path

import aiomqtt
import pytest

from broker.credentials import add_login

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def murmur(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "murmur",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def connect_with_retry(port: int, **kwargs: str) -> None:
    """Connect once the broker listens (it starts in another process)."""
    async with asyncio.timeout(20):
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", port, **kwargs):  # type: ignore[arg-type]
                    return
            except aiomqtt.MqttError as exc:
                if "Not authorized" in str(exc) or "code:135" in str(exc) or "code:5" in str(exc):
                    raise
                await asyncio.sleep(0.05)


async def test_murmur_broker_on_a_taken_port_says_which_port_and_which_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await murmur("broker", "--port", str(port))
        async with asyncio.timeout(30):
            _, err = await proc.communicate()
    assert proc.returncode == 1
    message = err.decode().strip()
    assert len(message.splitlines()) == 1
    assert f"127.0.0.1:{port}" in message
    assert "--port" in message


async def test_murmur_broker_with_credentials_lets_in_only_known_users(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    add_login(credentials, "ops", role="operator", password="s3cret")
    port = free_port()
    proc = await murmur("broker", "--port", str(port), "--credentials", str(credentials))
    try:
        await connect_with_retry(port, username="ops", password="s3cret", identifier="cli-ok")
        with pytest.raises(aiomqtt.MqttError):
            await connect_with_retry(port, username="ops", password="wrong", identifier="cli-bad")
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()


async def test_murmur_contract_prints_an_asyncapi_document() -> None:
    proc = await murmur("contract")
    async with asyncio.timeout(30):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    document = json.loads(out)
    assert document["asyncapi"] == "3.0.0"
    assert "murmur/v1/deliveries/{delivery_id}/requested" in {
        channel["address"] for channel in document["channels"].values()
    }


async def test_murmur_agent_names_every_invalid_setting_and_starts_nothing() -> None:
    proc = await murmur(
        "agent",
        "--drone-id",
        "a/b",
        "--broker",
        "http://x",
        "--home",
        "91,0",
        "--telemetry-hz",
        "0",
    )
    async with asyncio.timeout(30):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == [
        "--broker",
        "--home",
        "--drone-id",
        "--telemetry-hz",
    ]
