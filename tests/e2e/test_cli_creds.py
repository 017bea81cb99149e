"""`murmur creds` and a credentials directory in use: real processes, real brokers, real sockets.

A refused publish is dropped silently, so each rights test sends the forbidden message and then
an allowed one on the same connection: a broker keeps one connection's order, so once the
allowed one has arrived, the forbidden one never will.
"""

import asyncio
import os
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from broker.credentials import add_login, read_credentials
from broker.mosquitto import Mosquitto
from broker.passwords import verify_password
from tests.brokers import require_mosquitto

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ROOT = "murmur/v1"
PASSWORDS = {"d-001": "pw-d-001", "d-002": "pw-d-002", "watcher": "pw-watcher"}
ROLES = {"d-001": "drone", "d-002": "drone", "watcher": "monitor"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(**extra: str) -> dict[str, str]:
    """This environment without MURMUR_* settings, plus `extra`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MURMUR_")} | extra


async def murmur(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `murmur ARGS` to its end: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "murmur", *args,
        cwd=REPO, env=env or environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def credentials_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "credentials"
    for login, role in ROLES.items():
        add_login(directory, login, role=role, password=PASSWORDS[login])
    return directory


@asynccontextmanager
async def murmur_broker(credentials: Path) -> AsyncIterator[int]:
    """`murmur broker --credentials` on a free loopback port, once it listens; yields the port."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "murmur", "--log-level", "INFO",
        "broker", "--port", str(port), "--credentials", str(credentials),
        cwd=REPO, env=environment(),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    listening = asyncio.Event()
    logged: list[str] = []

    async def read_log() -> None:  # to the end, so the broker never blocks on a full pipe
        assert proc.stderr is not None
        async for line in proc.stderr:
            logged.append(line.decode())
            if "embedded broker listening on" in logged[-1]:
                listening.set()

    reader = asyncio.create_task(read_log())
    try:
        async with asyncio.timeout(30):
            await asyncio.wait(
                [reader, asyncio.create_task(listening.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
        if not listening.is_set():
            pytest.fail("murmur broker exited:\n" + "".join(logged))
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
        async with asyncio.timeout(10):
            await proc.wait()
        reader.cancel()


@pytest.fixture(
    params=[
        "murmur broker",
        pytest.param("mosquitto", marks=pytest.mark.mosquitto),
    ]
)
async def served(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[int]:
    """One credentials directory served by `murmur broker` or by Mosquitto; yields the port."""
    directory = credentials_dir(tmp_path)
    if request.param == "murmur broker":
        async with murmur_broker(directory) as port:
            yield port
    else:
        require_mosquitto()
        async with Mosquitto(tmp_path / "mosquitto", users={}, credentials=directory) as mosq:
            yield mosq.port


def login(port: int, user: str, password: str | None = None, **options: Any) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        username=user,
        password=PASSWORDS[user] if password is None else password,
        identifier=f"creds-{user}-{options.pop('n', 0)}",
        **options,
    )


# --- murmur creds ----------------------------------------------------------------------------


async def test_creds_add_prints_only_a_new_password_which_then_logs_in(tmp_path: Path) -> None:
    directory = tmp_path / "creds"
    code, out, err = await murmur("creds", "add", "d-001", "--role", "drone",
                                  "--credentials", str(directory))  # fmt: skip
    assert code == 0
    [password] = out.splitlines()
    assert len(password) == 32
    assert verify_password(password, read_credentials(directory).hashes["d-001"])
    assert "added d-001 (drone)" in err
    assert "SIGHUP" in err
    assert password not in err


async def test_creds_add_again_rotates_and_says_so(tmp_path: Path) -> None:
    directory = tmp_path / "creds"
    secret = tmp_path / "secret"
    secret.write_text("first\n")
    args = ["creds", "add", "ops", "--credentials", str(directory), "--password-file", str(secret)]
    code, out, _ = await murmur(*args, "--role", "monitor")
    assert (code, out) == (0, "")
    secret.write_text("second\n")
    code, out, err = await murmur(*args, "--role", "operator")
    assert (code, out) == (0, "")
    assert "ops existed (monitor): replaced its password and role, now operator" in err
    credentials = read_credentials(directory)
    assert credentials.roles == {"ops": "operator"}
    assert verify_password("second", credentials.hashes["ops"])
    assert not verify_password("first", credentials.hashes["ops"])


async def test_creds_list_and_remove_take_the_directory_from_the_environment(
    tmp_path: Path,
) -> None:
    directory = credentials_dir(tmp_path)
    env = environment(MURMUR_CREDENTIALS=str(directory))
    code, out, _ = await murmur("creds", "list", env=env)
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["d-001", "drone"], ["d-002", "drone"], ["watcher", "monitor"],
    ]  # fmt: skip
    assert "$7$" not in out
    code, _, err = await murmur("creds", "remove", "d-002", env=env)
    assert code == 0
    assert "removed d-002 (drone)" in err
    assert set(read_credentials(directory).roles) == {"d-001", "watcher"}
    code, out, err = await murmur("creds", "remove", "d-002", env=env)
    assert (code, out) == (1, "")
    assert err.strip() == f"murmur creds remove: LOGIN: no login 'd-002' in {directory}"


async def test_creds_add_names_every_invalid_field_and_writes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "creds"
    code, out, err = await murmur("creds", "add", "a/b", "--role", "admin",
                                  "--credentials", str(directory))  # fmt: skip
    assert (code, out) == (2, "")
    assert [line.split(":")[1].strip() for line in err.splitlines()] == ["LOGIN", "--role"]
    assert not directory.exists()
    code, out, err = await murmur(
        "creds", "add", "ops", "--role", "operator", "--credentials", str(directory),
        env=environment(MURMUR_PASSWORD_FILE=str(tmp_path / "someone-elses")),
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert "from MURMUR_PASSWORD_FILE" in err
    assert not directory.exists()


# --- a credentials directory served --------------------------------------------------------


async def test_the_right_password_is_let_in_and_a_wrong_one_or_a_stranger_is_not(
    served: int,
) -> None:
    async with login(served, "d-001"):
        pass
    for user, password in (("d-001", "pw-d-002"), ("d-001", ""), ("stranger", "pw-d-001")):
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                "127.0.0.1", served, username=user, password=password, identifier="creds-bad"
            ):
                pass


async def test_a_drone_cannot_publish_another_drones_telemetry(served: int) -> None:
    async with login(served, "watcher") as watcher:
        await watcher.subscribe(f"{ROOT}/drones/+/telemetry", qos=1)
        async with login(served, "d-001") as drone:
            await drone.publish(f"{ROOT}/drones/d-002/telemetry", b"forged", qos=1)
            await drone.publish(f"{ROOT}/drones/d-001/telemetry", b"own", qos=1)
        async with asyncio.timeout(10):
            first = await anext(aiter(watcher.messages))
    assert (str(first.topic), first.payload) == (f"{ROOT}/drones/d-001/telemetry", b"own")


async def test_murmur_broker_off_loopback_without_credentials_is_refused() -> None:
    code, out, err = await murmur("broker", "--host", "0.0.0.0", "--port", str(free_port()))  # noqa: S104
    assert (code, out) == (2, "")
    assert "--host 0.0.0.0: other machines could connect, so it needs --credentials DIR" in err
    assert "murmur creds add LOGIN --role ROLE" in err


async def test_murmur_broker_refuses_a_directory_that_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _, err = await murmur("broker", "--port", "1", "--credentials", str(tmp_path / "empty"))
    assert code == 2
    assert "no logins; create logins with `murmur creds add" in err
    code, _, err = await murmur("broker", "--port", "1", "--credentials", str(tmp_path / "none"))
    assert code == 2
    assert "no such directory" in err


async def test_simulated_drones_log_in_as_themselves_with_their_own_passwords(
    tmp_path: Path,
) -> None:
    directory = credentials_dir(tmp_path)
    passwords = tmp_path / "drones"
    passwords.mkdir()
    (passwords / "d-001").write_text(PASSWORDS["d-001"] + "\n")
    async with murmur_broker(directory) as port, login(port, "watcher") as watcher:
        await watcher.subscribe(f"{ROOT}/drones/d-001/status", qos=1)
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "murmur", "sim", "--drones", "1",
            "--broker", f"mqtt://127.0.0.1:{port}", "--password-dir", str(passwords),
            "--state-dir", str(tmp_path / "state"),
            cwd=REPO, env=environment(), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            async with asyncio.timeout(30):
                status = await anext(aiter(watcher.messages))
        finally:
            sim.terminate()
            async with asyncio.timeout(20):
                await sim.wait()
    assert str(status.topic) == f"{ROOT}/drones/d-001/status"


# --- the compose file's logins -------------------------------------------------------------


async def test_the_compose_script_creates_every_login_the_compose_file_uses(
    tmp_path: Path,
) -> None:
    script = REPO / "deploy/credentials.sh"
    env = environment(MURMUR=f"{sys.executable} -m murmur")
    proc = await asyncio.create_subprocess_exec(
        script, str(tmp_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    credentials = read_credentials(tmp_path / "credentials")
    secrets = tmp_path / "secrets"

    def password_of(login: str, secret: Path) -> str:
        password = secret.read_text().strip()
        assert verify_password(password, credentials.hashes[login]), login
        return password

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        user = service.get("environment", {}).get("MURMUR_USERNAME")
        if user is not None:
            [secret] = service["secrets"]
            path = compose["secrets"][secret]["file"].removeprefix("./deploy/secrets/")
            password_of(user, secrets / path)
            expected = {"ingestion": "client"}.get(name, name)
            assert credentials.roles[user] == expected, name
    drones = sorted(p.name for p in (secrets / "drones").iterdir())
    assert drones == [f"d-{i:03d}" for i in range(1, 11)]
    for drone in drones:
        password_of(drone, secrets / "drones" / drone)
        assert credentials.roles[drone] == "drone"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700  # nobody else gets in
    assert stat.S_IMODE((secrets / "monitor").stat().st_mode) == 0o644  # containers read it

    # Run again: every login is kept, passwords and all.
    before = {p: p.read_text() for p in secrets.rglob("*") if p.is_file()}
    proc = await asyncio.create_subprocess_exec(
        script, str(tmp_path), env=env, stdout=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert "created" not in out.decode()
    assert before == {p: p.read_text() for p in secrets.rglob("*") if p.is_file()}


@pytest.mark.mosquitto
async def test_mosquittos_healthcheck_lets_in_the_monitor_of_the_compose_script(
    tmp_path: Path,
) -> None:
    require_mosquitto()
    credentials = tmp_path / "credentials"
    code, out, err = await murmur(
        "creds", "add", "monitor", "--role", "monitor", "--credentials", str(credentials)
    )
    assert code == 0, err
    secret = tmp_path / "mqtt_monitor"
    secret.write_text(out)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    check = " ".join(compose["services"]["mosquitto"]["healthcheck"]["test"][1:])
    async with Mosquitto(tmp_path / "mosquitto", users={}, credentials=credentials) as m:
        command = (
            check.replace("$$", "$")
            .replace("-p 1883", f"-p {m.port}")
            .replace("/run/secrets/mqtt_monitor", str(secret))
        )
        proc = await asyncio.create_subprocess_shell(command)
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
        secret.write_text("wrong\n")
        proc = await asyncio.create_subprocess_shell(command, stderr=asyncio.subprocess.DEVNULL)
        async with asyncio.timeout(20):
            assert await proc.wait() != 0


@pytest.mark.mosquitto
async def test_mosquitto_rereads_the_directory_on_sighup_and_drops_a_rotated_login(
    tmp_path: Path,
) -> None:
    require_mosquitto()
    directory = credentials_dir(tmp_path)
    async with Mosquitto(tmp_path / "mosquitto", users={}, credentials=directory) as mosquitto:
        async with login(mosquitto.port, "d-001") as drone:
            await drone.subscribe(f"{ROOT}/drones/d-001/cmd/+", qos=1)
            add_login(directory, "d-001", role="drone", password="rotated")
            add_login(directory, "d-003", role="drone", password="pw-d-003")
            assert mosquitto._process is not None
            mosquitto._process.send_signal(signal.SIGHUP)
            # Mosquitto disconnects the old password's connection while it reloads.
            with pytest.raises(aiomqtt.MqttError):
                async with asyncio.timeout(10):
                    await anext(aiter(drone.messages))
        async with login(mosquitto.port, "d-003", "pw-d-003"):
            pass
        with pytest.raises(aiomqtt.MqttError):
            async with login(mosquitto.port, "d-001", n=1):
                pass
        async with login(mosquitto.port, "d-001", "rotated", n=2):
            pass
