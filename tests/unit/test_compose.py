"""docker-compose.yml without a Docker engine: commands, files and wiring checked statically.

Each murmur container's command is parsed by the real `murmur` parser, with the settings it
gets in the container (its MURMUR_* variables and the TOML files mounted into it, read from
the repository) applied by the real config loader.
"""

import re
import shutil
import subprocess
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

# Written by deploy/credentials.sh, never committed: the compose file refers to them all the same.
GENERATED = ("deploy/credentials", "deploy/secrets/")
SCRIPT = REPO / "deploy/credentials.sh"


def test_the_system_has_its_parts() -> None:
    assert set(MURMUR) == {"package", "scheduler", "delivery", "ingestion", "fleet", "monitor"}
    assert SERVICES["mosquitto"]["image"] == "eclipse-mosquitto:2"


def volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """Source and target of each volume, short (`source:target[:ro]`) or long syntax."""
    pairs = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            pairs.append((str(volume["source"]), str(volume["target"])))
        else:
            source, target, *_ = volume.split(":")
            pairs.append((source, target))
    return pairs


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path to repository path of each bind mount."""
    return {
        target: (REPO / source).resolve()
        for source, target in volumes(service)
        if source.startswith((".", "/"))
    }


def generated(path: Path) -> bool:
    relative = path.resolve().relative_to(REPO).as_posix()
    return relative.startswith(GENERATED)


def script_logins() -> dict[str, tuple[str, str]]:
    """Login -> (role, secret file under deploy/secrets/) of each `add` in the script."""
    adds = re.findall(r"(?m)^add ([\w-]+) (\w+) ([\w/-]+)$", SCRIPT.read_text())
    return {login: (role, secret) for login, role, secret in adds}


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
    parser = cli.parser()
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
            if not generated(source):
                assert source.exists(), f"{name}: {source} (mounted on {target}) is missing"
        for env_file in service.get("env_file", []):
            assert (REPO / env_file).is_file(), f"{name}: env_file {env_file} is missing"
    for secret in COMPOSE["secrets"].values():
        assert generated(REPO / secret["file"]), f"{secret['file']}: a committed password"


def test_no_password_is_committed_and_the_generated_ones_are_ignored() -> None:
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        [git, "ls-files", "deploy/secrets", "deploy/credentials"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert [f for f in tracked if (REPO / f).exists()] == ["deploy/secrets/README.md"]
    paths = [secret["file"] for secret in COMPOSE["secrets"].values()]
    paths += [str(p) for s in SERVICES.values() for p in bind_mounts(s).values() if generated(p)]
    paths += ["deploy/secrets/drones/d-001", "credentials/passwd"]  # `murmur creds`' default dir
    for path in paths:
        ignored = subprocess.run(
            [git, "check-ignore", "--no-index", "-q", path], cwd=REPO, check=False
        )
        assert ignored.returncode == 0, f"{path} is not git-ignored"


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
    named_volumes = set(COMPOSE["volumes"])
    seen: set[str] = set()
    for name in ("package", "scheduler", "delivery", "fleet"):
        named = [(s, t) for s, t in volumes(SERVICES[name]) if s in named_volumes]
        assert len(named) == 1, name
        [(volume, mounted_on)] = named
        assert volume not in seen, f"{name} shares {volume}"
        seen.add(volume)
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
    mosquitto, copier = SERVICES["mosquitto"], SERVICES["mosquitto-credentials"]
    # The one-shot service copies both files of the credentials directory to where Mosquitto
    # reads them, a volume both mount.
    auth = str(Path(conf["password_file"]).parent)
    assert Path(conf["acl_file"]).parent == Path(auth)
    script = " ".join(copier["command"])
    assert "for file in passwd acl" in script
    assert f"mv {auth}/.$$file.new {auth}/$$file" in script
    assert ("mosquitto-auth", auth) in volumes(copier)
    assert ("mosquitto-auth", auth) in volumes(mosquitto)
    [credentials] = [v for v in copier["volumes"] if isinstance(v, dict)]
    assert credentials["source"] == "./deploy/credentials"
    assert f"{credentials['target']}/$$file" in script
    assert credentials["read_only"] is True
    assert credentials["bind"]["create_host_path"] is False  # missing: fail, not an empty dir
    assert ("mosquitto-data", conf["persistence_location"].rstrip("/")) in volumes(mosquitto)
    assert mosquitto["depends_on"]["mosquitto-credentials"]["condition"] == (
        "service_completed_successfully"
    )
    assert mosquitto["ports"] == ["127.0.0.1:1883:1883"]  # not on every interface
    for name in MURMUR:
        assert SERVICES[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
        environment = SERVICES[name]["environment"]
        assert environment["MURMUR_BROKER"] == f"mqtt://mosquitto:{conf['listener']}"


def test_the_broker_is_healthy_once_a_login_of_the_script_gets_in() -> None:
    mosquitto = SERVICES["mosquitto"]
    check = " ".join(mosquitto["healthcheck"]["test"][1:])
    login = re.search(r"-u (\S+) -P \"\$\$\(head -n 1 /run/secrets/(\w+)\)\"", check)
    assert login is not None
    assert login[1] in script_logins()
    assert login[2] in mosquitto["secrets"]
    assert (
        COMPOSE["secrets"][login[2]]["file"] == f"./deploy/secrets/{script_logins()[login[1]][1]}"
    )


def test_each_container_logs_in_as_itself_with_its_own_secret() -> None:
    logins = script_logins()
    roles = {"package": "package", "scheduler": "scheduler", "delivery": "delivery"}
    roles |= {"ingestion": "client", "monitor": "monitor"}
    seen = set()
    for name in set(MURMUR) - {"fleet"}:
        environment = SERVICES[name]["environment"]
        login = environment["MURMUR_USERNAME"]
        assert logins[login][0] == roles[name], name
        [secret] = SERVICES[name]["secrets"]
        assert environment["MURMUR_PASSWORD_FILE"] == f"/run/secrets/{secret}"
        assert COMPOSE["secrets"][secret]["file"] == f"./deploy/secrets/{logins[login][1]}"
        assert secret not in seen, f"{name} shares {secret}"
        seen.add(secret)


def test_the_fleets_drones_log_in_as_themselves_with_the_scripts_secrets() -> None:
    fleet = SERVICES["fleet"]
    assert "MURMUR_USERNAME" not in fleet["environment"]
    assert "MURMUR_PASSWORD_FILE" not in fleet["environment"]
    assert "secrets" not in fleet
    command = command_of("fleet")
    password_dir = command[command.index("--password-dir") + 1]
    [drones] = [v for v in fleet["volumes"] if isinstance(v, dict)]
    assert (drones["source"], drones["target"]) == ("./deploy/secrets/drones", password_dir)
    assert drones["read_only"] is True
    assert drones["bind"]["create_host_path"] is False
    # The script creates one drone login per drone of sim.toml, its secret in that directory.
    assert 'add "$id" drone "drones/$id"' in SCRIPT.read_text()
    assert "deploy/murmur/sim.toml" in SCRIPT.read_text()


def test_ingestion_listens_on_the_published_port() -> None:
    command = command_of("ingestion")
    port = command[command.index("--port") + 1]
    assert SERVICES["ingestion"]["ports"] == [f"{port}:{port}"]
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104 - inside its container
