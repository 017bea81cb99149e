"""docker-compose.yml without a Docker engine: commands, files and wiring checked statically.

Each murmur container's command is parsed by the real `murmur` parser, with the settings it
gets in the container (its MURMUR_* variables and the TOML files mounted into it, read from
the repository) applied by the real config loader.
"""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from murmur import cli
from murmur.config import layer

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = "deploy/Dockerfile"

MURMUR = sorted(
    name
    for name, service in SERVICES.items()
    if service.get("build", {}).get("dockerfile") == DOCKERFILE
)

# Commands the lead's branch adds; strict xfail turns red once they parse: then drop the entry.


def test_the_system_has_its_parts() -> None:
    assert set(MURMUR) == {"package", "scheduler", "delivery", "ingestion", "fleet", "monitor"}
    assert SERVICES["mosquitto"]["image"] == "eclipse-mosquitto:2"


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path to repository file of each bind mount (`./host:/container[:ro]`)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):
            mounts[target] = (REPO / source).resolve()
    return mounts


def command_of(name: str) -> list[str]:
    command = SERVICES[name]["command"]
    assert isinstance(command, list), f"{name}: use the exec form, a list of arguments"
    return [str(arg) for arg in command]


@pytest.mark.parametrize("name", MURMUR)
def test_each_murmur_container_runs_a_valid_murmur_command_with_its_settings(name: str) -> None:
    service = SERVICES[name]
    mounts = bind_mounts(service)
    # The mounted config files, read from the repository instead of the container.
    argv = [str(mounts.get(arg, arg)) for arg in command_of(name)]
    parser = cli._parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{name}: `murmur {' '.join(command_of(name))}` does not parse")
    environment = {str(k): str(v) for k, v in service.get("environment", {}).items()}
    assert layer(parser, argv, args, environ=environment) == []
    if args.config is not None:
        assert args.config in mounts.values(), f"{name}: --config is not a mounted file"


def test_every_file_the_compose_file_refers_to_exists() -> None:
    for name, service in SERVICES.items():
        build = service.get("build")
        if build is not None:
            context = REPO / build["context"]
            assert (context / build["dockerfile"]).is_file(), name
        for target, source in bind_mounts(service).items():
            assert source.is_file(), f"{name}: {source} (mounted on {target}) is missing"
        for env_file in service.get("env_file", []):
            assert (REPO / env_file).is_file(), f"{name}: env_file {env_file} is missing"
    for secret in COMPOSE.get("secrets", {}).values():
        assert (REPO / secret["file"]).is_file()


def test_the_dockerfile_copies_only_what_exists_and_installs_the_package() -> None:
    dockerfile = (REPO / DOCKERFILE).read_text()
    copies = re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", dockerfile)
    sources = [source for line in copies for source in line.split()]
    assert sources, "no COPY in the Dockerfile"
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    assert "FROM python:3.11-slim" in dockerfile
    assert 'ENTRYPOINT ["murmur"]' in dockerfile
    # Every package the wheel ships is copied into the build.
    packages = re.search(r"packages = \[(.*?)\]", (REPO / "pyproject.toml").read_text())
    assert packages is not None
    assert set(re.findall(r'"(\w+)"', packages.group(1))) <= set(sources)


def test_each_cloud_service_keeps_its_sqlite_file_on_a_volume_of_its_own() -> None:
    volumes = set(COMPOSE["volumes"])
    seen: set[str] = set()
    for name in ("package", "scheduler", "delivery", "fleet"):
        named = [v.split(":")[0] for v in SERVICES[name]["volumes"] if v.split(":")[0] in volumes]
        assert len(named) == 1, name
        assert named[0] not in seen, f"{name} shares {named[0]}"
        seen.add(named[0])
        [mounted_on] = [
            v.split(":")[1] for v in SERVICES[name]["volumes"] if v.startswith(named[0])
        ]
        command = command_of(name)
        if "--db" in command:
            assert command[command.index("--db") + 1].startswith(mounted_on + "/"), name


def test_the_broker_wiring_agrees_with_mosquitto_conf() -> None:
    conf = dict(
        line.split(maxsplit=1)
        for line in (REPO / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert conf["allow_anonymous"] == "false"
    assert conf["persistence"] == "true"
    assert conf["listener"] == "1883"
    mosquitto, passwd = SERVICES["mosquitto"], SERVICES["mosquitto-passwd"]
    # The password file the one-shot service writes is the one Mosquitto reads.
    assert conf["password_file"] in " ".join(passwd["command"])
    auth = str(Path(conf["password_file"]).parent)
    assert any(v.endswith(f":{auth}") for v in passwd["volumes"])
    assert any(v.endswith(f":{auth}") for v in mosquitto["volumes"])
    assert any(
        v.endswith(f":{conf['persistence_location'].rstrip('/')}") for v in mosquitto["volumes"]
    )
    assert mosquitto["depends_on"]["mosquitto-passwd"]["condition"] == (
        "service_completed_successfully"
    )
    assert mosquitto["ports"] == ["127.0.0.1:1883:1883"]  # not on every interface
    for name in MURMUR:
        assert SERVICES[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
        environment = SERVICES[name]["environment"]
        assert environment["MURMUR_BROKER"] == f"mqtt://mosquitto:{conf['listener']}"
        assert environment["MURMUR_PASSWORD_FILE"] == "/run/secrets/mqtt_password"
        assert "mqtt_password" in SERVICES[name]["secrets"]


def test_ingestion_listens_on_the_published_port() -> None:
    command = command_of("ingestion")
    port = command[command.index("--port") + 1]
    assert SERVICES["ingestion"]["ports"] == [f"{port}:{port}"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - inside its container
