"""Settings from a TOML file, `MURMUR_*` variables and flags: precedence and every message."""

import argparse
import asyncio
import logging
import os
import re
import shlex
import shutil
import ssl
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.url import BrokerUrl
from drone_agent.wiring import FleetConfig
from murmur import cli
from murmur.config import add_config_option, layer
from murmur.fleet_options import fleet_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "drone_agent" / "deploy"


def settled(args: argparse.Namespace) -> FleetConfig:
    """The agent's settings from layered `args`, which must be valid."""
    config = fleet_settings(args, [args.drone_id])
    assert config is not None
    return config


@pytest.fixture(autouse=True)
def no_murmur_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own MURMUR_* variables must not leak into these tests."""
    for name in [n for n in os.environ if n.startswith("MURMUR_")]:
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """`murmur.cli.main` configures the root logger; put it back for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def toml(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def layered(*argv: str, env: dict[str, str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """Parse `murmur ARGV` with the real parser and apply the file and `env`."""
    parser = cli.parser()
    args = parser.parse_args(argv)
    return args, layer(parser, argv, args, environ=env or {})


def murmur_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str, **env: str
) -> list[str]:
    """Run `murmur ARGV` in-process with `env`; it must refuse with exit code 2."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(list(argv)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err.strip().splitlines()


AGENT = 'drone_id = "d-1"\nbroker = "mqtt://127.0.0.1:1883"\n'


# --- precedence ----------------------------------------------------------------------------


def test_a_flag_overrides_a_variable_which_overrides_the_file_which_overrides_the_default(
    tmp_path: Path,
) -> None:
    path = toml(tmp_path, AGENT + "telemetry_hz = 2\nstate_dir = 'from-file'\n")
    env = {"MURMUR_TELEMETRY_HZ": "3", "MURMUR_MAX_PAYLOAD_KG": "1.5"}

    args, problems = layered("agent", "--config", str(path), "--telemetry-hz", "4", env=env)
    assert problems == []
    assert (args.telemetry_hz, args.max_payload_kg, args.state_dir) == (4.0, 1.5, Path("from-file"))
    assert args.speedup == 1.0  # the default
    origins = args.config_layers.origins
    assert [origins[d].describe() for d in ("telemetry_hz", "max_payload_kg", "state_dir")] == [
        "from --telemetry-hz",
        "from MURMUR_MAX_PAYLOAD_KG",
        f"in {path}",
    ]
    args, _ = layered("agent", "--config", str(path), env=env)
    assert args.telemetry_hz == 3.0
    args, _ = layered("agent", "--config", str(path))
    assert args.telemetry_hz == 2.0


def test_required_settings_may_come_from_any_layer(tmp_path: Path) -> None:
    path = toml(tmp_path, 'broker = "mqtt://file:1883"\n')
    args, problems = layered("agent", "--config", str(path), env={"MURMUR_DRONE_ID": "d-env"})
    assert problems == []
    assert (args.drone_id, args.broker) == ("d-env", "mqtt://file:1883")
    args, problems = layered("agent", "--drone-id", "d-flag", env={"MURMUR_BROKER": "mqtt://e"})
    assert problems == []
    assert (args.drone_id, args.broker) == ("d-flag", "mqtt://e")


def test_the_file_may_be_named_by_a_variable_and_an_empty_variable_is_unset(
    tmp_path: Path,
) -> None:
    path = toml(tmp_path, AGENT)
    args, problems = layered("agent", env={"MURMUR_CONFIG": str(path), "MURMUR_DRONE_ID": ""})
    assert problems == []
    assert args.drone_id == "d-1"


def test_top_level_settings_such_as_the_log_format_come_from_the_file_too(
    tmp_path: Path,
) -> None:
    path = toml(tmp_path, AGENT + 'log_level = "INFO"\nlog_format = "json"\n')
    args, problems = layered("agent", "--config", str(path), env={"MURMUR_LOG_LEVEL": "DEBUG"})
    assert problems == []
    assert (args.log_level, args.log_format) == ("DEBUG", "json")


def test_commands_without_a_config_option_ignore_files_and_variables() -> None:
    args, problems = layered("contract", env={"MURMUR_ROOT": "other/v9"})
    assert problems == []
    assert args.root == "murmur/v1"


# --- one message per problem ---------------------------------------------------------------


def test_an_unknown_key_names_the_file_and_suggests_the_closest_setting(tmp_path: Path) -> None:
    path = toml(tmp_path, AGENT + "telemetry_rate = 2\ntelemetry-hz = 2\nfrobnicate = 1\n")
    _, problems = layered("agent", "--config", str(path))
    assert problems == [
        f"telemetry_rate: unknown setting (in {path}); did you mean `telemetry_hz`?",
        f"telemetry-hz: unknown setting (in {path}); did you mean `telemetry_hz`?",
        f"frobnicate: unknown setting (in {path})",
    ]


def test_a_value_of_the_wrong_type_names_the_setting_and_where_it_came_from(
    tmp_path: Path,
) -> None:
    path = toml(tmp_path, AGENT + 'telemetry_hz = "fast"\nstate_dir = 3\n')
    _, problems = layered("agent", "--config", str(path), env={"MURMUR_SPEEDUP": "lots"})
    assert problems == [
        "speedup: expected a number, got 'lots' (from MURMUR_SPEEDUP)",
        f"telemetry_hz: expected a number, got 'fast' (in {path})",
        f"state_dir: expected a path, got 3 (in {path})",
    ]


def test_every_layer_is_checked_even_where_a_higher_one_wins(tmp_path: Path) -> None:
    path = toml(tmp_path, AGENT + 'telemetry_hz = "fast"\n')
    _, problems = layered(
        "agent", "--config", str(path), "--telemetry-hz", "2", env={"MURMUR_TELEMETRY_HZ": "x"}
    )
    assert problems == [
        f"telemetry_hz: expected a number, got 'fast' (in {path})",
        "telemetry_hz: expected a number, got 'x' (from MURMUR_TELEMETRY_HZ)",
    ]


def test_a_missing_required_setting_names_all_three_places_it_can_come_from(
    tmp_path: Path,
) -> None:
    _, problems = layered("agent")
    assert problems == [
        "drone_id: missing (--drone-id, MURMUR_DRONE_ID or `drone_id` in a --config agent.toml)",
        "broker: missing (--broker, MURMUR_BROKER or `broker` in a --config agent.toml)",
    ]
    path = toml(tmp_path, 'drone_id = "d-1"\n')
    _, problems = layered("agent", "--config", str(path))
    assert problems == [f"broker: missing (--broker, MURMUR_BROKER or `broker` in {path})"]
    _, problems = layered("sim", "--broker", "mqtt://h")
    assert problems == [
        "drones: missing (--drones, MURMUR_DRONES or `drones` in a --config sim.toml)"
    ]


def test_a_syntax_error_gives_the_line_and_an_unreadable_file_the_reason(tmp_path: Path) -> None:
    path = toml(tmp_path, 'drone_id = "d-1"\nbroker = = "x"\n')
    _, problems = layered("agent", "--config", str(path))
    [problem] = problems  # not also every required setting the broken file would have held
    assert problem.startswith(f"--config: {path} is not valid TOML: ")
    assert "line 2" in problem
    _, problems = layered("agent", env={"MURMUR_CONFIG": str(tmp_path / "nope.toml")})
    assert problems == [
        f"MURMUR_CONFIG: cannot read {tmp_path / 'nope.toml'}: No such file or directory"
    ]


def test_out_of_range_values_name_their_source_and_every_problem_is_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(
        tmp_path,
        'broker = "mqtt://127.0.0.1:1883"\ntelemetry_hz = 100\nhome = "91,0"\nfc = "px4"\n'
        f'password_file = "{tmp_path / "missing-password"}"\n',
    )
    lines = murmur_fails(
        capsys,
        monkeypatch,
        "agent",
        "--config",
        str(path),
        "--drone-id",
        "a/b",
        MURMUR_MAX_PAYLOAD_KG="-1",
    )
    assert lines == [
        f"murmur agent: home: '91,0' is not a position (latitude ±90, longitude ±180) (in {path})",
        (
            "murmur agent: --drone-id: 'a/b' must be 1-64 letters, digits, '-' or '_' "
            "(it is one MQTT topic level)"
        ),
        (
            "murmur agent: max_payload_kg: must be a positive number, got -1.0 "
            "(from MURMUR_MAX_PAYLOAD_KG)"
        ),
        f"murmur agent: telemetry_hz: at most 50, got 100.0 (in {path})",
        f"murmur agent: fc: 'px4' is neither sim nor mavlink:CONNECTION (in {path})",
        (
            f"murmur agent: password_file: cannot read {tmp_path / 'missing-password'}: "
            f"No such file or directory (in {path})"
        ),
    ]


def test_a_cloud_service_reports_its_settings_the_same_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = toml(tmp_path, 'sizes = "small,huge"\noffer_timeout = -1\n', "service.toml")
    lines = murmur_fails(
        capsys, monkeypatch, "service", "scheduler", "--config", str(path), MURMUR_BROKER="x://y"
    )
    assert lines == [
        (
            "murmur service scheduler: broker: broker URL 'x://y': scheme must be mqtt:// or "
            "mqtts:// (from MURMUR_BROKER)"
        ),
        f"murmur service scheduler: db: missing (--db, MURMUR_DB or `db` in {path})",
        f"murmur service scheduler: offer_timeout: must be a positive number, got -1.0 (in {path})",
        f"murmur service scheduler: sizes: 'huge' is not one of small, medium, large (in {path})",
    ]


# --- credentials and TLS -------------------------------------------------------------------


def test_the_password_comes_from_the_first_line_of_its_file_and_the_user_may_be_replaced(
    tmp_path: Path,
) -> None:
    password = tmp_path / "password"
    password.write_text("s3 cr:et\nignored\n")
    path = toml(
        tmp_path,
        f'drone_id = "d-1"\nbroker = "mqtt://url-user:url-pw@h"\npassword_file = "{password}"\n',
    )
    args, problems = layered("agent", "--config", str(path), env={"MURMUR_USERNAME": "ops"})
    assert problems == []
    fleet = settled(args)
    assert (fleet.broker.username, fleet.broker.password) == ("ops", "s3 cr:et")
    assert "s3 cr:et" not in f"{fleet.broker} {fleet.broker!r}"

    args, _ = layered("agent", "--drone-id", "d-1", "--broker", "mqtt://u:pw@h")
    assert settled(args).broker.password == "pw"  # the URL's still works


def test_credential_and_tls_files_that_cannot_be_used_are_each_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    lines = murmur_fails(
        capsys,
        monkeypatch,
        "agent", "--drone-id", "d-1", "--broker", "mqtt://h",
        "--password-file", str(empty), "--ca-file", str(tmp_path / "ca.pem"),
        "--key-file", str(garbage),
    )  # fmt: skip
    assert lines == [
        f"murmur agent: --password-file: {empty}: the first line is empty",
        f"murmur agent: --ca-file: cannot read {tmp_path / 'ca.pem'}: No such file or directory",
        "murmur agent: --key-file: set without --cert-file, the certificate it belongs to",
        "murmur agent: --ca-file: TLS files need an mqtts:// broker URL, got mqtt://h:1883",
    ]
    lines = murmur_fails(
        capsys, monkeypatch, "agent", "--drone-id", "d-1", "--broker", "mqtts://h",
        MURMUR_CA_FILE=str(garbage),
    )  # fmt: skip
    assert len(lines) == 1
    assert lines[0].startswith(f"murmur agent: ca_file: {garbage}: no usable CA certificate (")
    assert lines[0].endswith("(from MURMUR_CA_FILE)")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def handshake(url: BrokerUrl, cert: Path, key: Path) -> None:
    """A TLS handshake on loopback with a server that requires a client certificate."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server_context.verify_mode = ssl.CERT_REQUIRED
    server_context.load_verify_locations(cert)

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    async with server, asyncio.timeout(10):
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=url.ssl_context())
        writer.close()


async def test_the_tls_files_make_the_connection_context(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    args, problems = layered(
        "agent", "--drone-id", "d-1", "--broker", "mqtts://127.0.0.1",
        "--ca-file", str(cert), "--cert-file", str(cert), "--key-file", str(key),
    )  # fmt: skip
    assert problems == []
    url = settled(args).broker
    assert (url.port, url.ca_file, url.cert_file, url.key_file) == (8883, cert, cert, key)
    await handshake(url, cert, key)
    with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs do not know it
        await handshake(BrokerUrl("127.0.0.1", 8883, tls=True), cert, key)
    assert BrokerUrl.parse("mqtt://h").ssl_context() is None


# --- the mechanism, on a parser of its own -------------------------------------------------


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="x")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--mode", choices=["a", "b"], default="a")
    serve.add_argument("--verbose", action="store_true")
    serve.add_argument("--tags", nargs="*", default=[])
    add_config_option(serve, example="serve.toml")
    return parser


def test_options_added_later_such_as_a_port_just_work(tmp_path: Path) -> None:
    parser = serve_parser()
    path = toml(tmp_path, 'port = 8080\nverbose = true\ntags = ["x", "y"]\n', "serve.toml")
    argv = ["serve", "--config", str(path)]
    args = parser.parse_args(argv)
    assert layer(parser, argv, args, environ={"MURMUR_HOST": "localhost", "MURMUR_MODE": "b"}) == []
    assert (args.port, args.host, args.mode, args.verbose, args.tags) == (
        8080, "localhost", "b", True, ["x", "y"],
    )  # fmt: skip

    path = toml(tmp_path, 'port = "80"\nverbose = "yes"\ntags = "x"\n', "serve.toml")
    args = parser.parse_args(argv)
    env = {"MURMUR_VERBOSE": "maybe", "MURMUR_MODE": "c", "MURMUR_PORT": "8.5"}
    assert layer(parser, argv, args, environ=env) == [
        f"port: expected an integer, got '80' (in {path})",
        "port: expected an integer, got '8.5' (from MURMUR_PORT)",
        "mode: must be one of a, b, got 'c' (from MURMUR_MODE)",
        f"verbose: expected true or false, got 'yes' (in {path})",
        "verbose: expected true or false, got 'maybe' (from MURMUR_VERBOSE)",
        f"tags: expected a list, got 'x' (in {path})",
    ]
    args = parser.parse_args(["serve"])
    assert layer(parser, ["serve"], args, environ={"MURMUR_VERBOSE": "on"}) == [
        "port: missing (--port, MURMUR_PORT or `port` in a --config serve.toml)"
    ]
    assert args.verbose is True
    assert parser.parse_args(["serve", "--port", "1"]).verbose is False  # defaults restored


# --- the Raspberry Pi files ----------------------------------------------------------------

EXAMPLE = DEPLOY / "agent.toml.example"


def test_the_example_agent_toml_loads_with_the_real_loader(tmp_path: Path) -> None:
    password = tmp_path / "mqtt-password"
    password.write_text("pi-secret\n")
    args, problems = layered(
        "agent", "--config", str(EXAMPLE), env={"MURMUR_PASSWORD_FILE": str(password)}
    )
    assert problems == []
    fleet = settled(args)
    assert fleet is not None
    assert fleet.broker.tls
    assert (fleet.broker.username, fleet.broker.password) == ("d-001", "pi-secret")
    assert fleet.state_dir == Path("/var/lib/murmur")
    assert (fleet.max_payload_kg, fleet.telemetry_hz) == (2.5, 1.0)


def test_the_example_documents_every_setting_of_the_agent_with_a_valid_value() -> None:
    text = EXAMPLE.read_text()
    uncommented = re.sub(r"(?m)^# (\w+ = )", r"\1", text)
    values = tomllib.loads(uncommented)
    args, problems = layered("agent", "--drone-id", "d-1", "--broker", "mqtt://h")
    assert problems == []
    assert set(values) == {setting.key for setting in args.config_layers.settings}


def test_the_example_with_every_setting_uncommented_is_still_valid(tmp_path: Path) -> None:
    text = re.sub(r"(?m)^# (\w+ = )", r"\1", EXAMPLE.read_text())
    path = toml(tmp_path, text)
    _, problems = layered("agent", "--config", str(path))
    assert problems == []


def unit_settings(path: Path) -> dict[str, list[str]]:
    """The `Key=Value` lines of a systemd unit, each key with all its values."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_systemd_unit_runs_a_valid_murmur_agent_command_as_an_unprivileged_user() -> None:
    unit = unit_settings(DEPLOY / "murmur-agent.service")
    [exec_start] = unit["ExecStart"]
    program, *argv = shlex.split(exec_start)
    assert program == "/opt/murmur/venv/bin/murmur"
    args = cli.parser().parse_args(argv)
    assert args.command == "agent"
    assert args.config == Path("/etc/murmur/agent.toml")

    assert unit["User"] == ["murmur"]
    assert unit["SupplementaryGroups"] == ["dialout"]
    assert unit["EnvironmentFile"] == ["-/etc/murmur/agent.env"]
    # The example's state_dir is the directory systemd creates for the service.
    [state] = unit["StateDirectory"]
    assert tomllib.loads(EXAMPLE.read_text())["state_dir"] == f"/var/lib/{state}"
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"]  # what murmur exits with on bad settings
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert unit[key] == [value], key
    assert "ReadWritePaths" not in unit  # the StateDirectory is the only writable path
