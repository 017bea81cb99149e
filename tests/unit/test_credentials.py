"""The credentials directory (`broker/credentials.py`) and the drones' logins."""

import os
import stat
from pathlib import Path

import pytest

from broker.acl import mosquitto_acl
from broker.amqtt_server import EmbeddedBroker, InsecureBrokerError, is_loopback
from broker.credentials import (
    CredentialsError,
    add_login,
    check_login,
    generate_password,
    login_problems,
    read_credentials,
    read_secret,
    remove_login,
)
from broker.passwords import read_password_file, verify_password
from bus.url import BrokerUrl
from contracts.ids import Location
from drone_agent.wiring import FleetConfig, drone_login
from murmur import cli


def fleet(url: str, passwords: dict[str, str] | None = None) -> FleetConfig:
    return FleetConfig(
        broker=BrokerUrl.parse(url),
        home=Location(latitude=47.0, longitude=8.0),
        state_dir=Path("unused"),
        passwords=passwords or {},
    )


def test_logins_round_trip_with_their_roles_and_passwords(tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    assert add_login(directory, "d-001", role="drone", password="pw-drone") is None
    assert add_login(directory, "scheduler", role="scheduler", password="pw-s") is None
    credentials = read_credentials(directory)
    assert credentials.roles == {"d-001": "drone", "scheduler": "scheduler"}
    assert credentials.password_file == directory / "passwd"
    hashes = read_password_file(credentials.password_file)
    assert hashes == credentials.hashes
    assert verify_password("pw-drone", hashes["d-001"])
    assert not verify_password("pw-s", hashes["d-001"])
    assert "pw-drone" not in (directory / "passwd").read_text()
    assert "$7$" not in repr(credentials)


def test_the_acl_is_rendered_from_the_roles_after_every_change(tmp_path: Path) -> None:
    add_login(tmp_path, "d-001", role="drone", password="a")
    add_login(tmp_path, "ops", role="operator", password="b")
    assert (tmp_path / "acl").read_text() == mosquitto_acl({"d-001": "drone", "ops": "operator"})
    remove_login(tmp_path, "d-001")
    assert (tmp_path / "acl").read_text() == mosquitto_acl({"ops": "operator"})


def test_the_roles_file_is_one_login_and_role_per_line_with_comments(tmp_path: Path) -> None:
    add_login(tmp_path, "shop", role="client", password="a")
    add_login(tmp_path, "d-7", role="drone", password="b")
    lines = (tmp_path / "roles").read_text().splitlines()
    assert all(line.startswith("#") for line in lines[:-2])
    assert lines[-2:] == ["d-7 drone", "shop client"]
    (tmp_path / "roles").write_text("# by hand\n\n  d-7   drone  \nshop client # no\n")
    with pytest.raises(CredentialsError, match=r"roles:4: expected `login role`"):
        read_credentials(tmp_path)


def test_adding_an_existing_login_replaces_its_password_and_role(tmp_path: Path) -> None:
    add_login(tmp_path, "ops", role="monitor", password="old")
    assert add_login(tmp_path, "ops", role="operator", password="new") == "monitor"
    credentials = read_credentials(tmp_path)
    assert credentials.roles == {"ops": "operator"}
    assert verify_password("new", credentials.hashes["ops"])
    assert not verify_password("old", credentials.hashes["ops"])


def test_removing_a_login_takes_it_out_of_every_file(tmp_path: Path) -> None:
    add_login(tmp_path, "d-1", role="drone", password="a")
    add_login(tmp_path, "d-2", role="drone", password="b")
    assert remove_login(tmp_path, "d-1") == "drone"
    assert read_credentials(tmp_path).roles == {"d-2": "drone"}
    assert set(read_password_file(tmp_path / "passwd")) == {"d-2"}
    assert "d-1" not in (tmp_path / "acl").read_text()
    with pytest.raises(CredentialsError, match="no login 'd-1'") as refused:
        remove_login(tmp_path, "d-1")
    assert refused.value.field == "login"


def test_secrets_are_written_0600_in_a_new_directory_of_0700(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "credentials"
    add_login(directory, "d-1", role="drone", password="a")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("passwd", "roles", "acl"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    assert sorted(p.name for p in directory.iterdir()) == ["acl", "passwd", "roles"]  # no temps


@pytest.mark.parametrize(
    ("login", "role", "field", "says"),
    [
        ("", "monitor", "login", "empty"),
        ("a/b", "client", "login", "contains '/'"),
        ("ops+", "operator", "login", "contains '+'"),
        ("#", "monitor", "login", "contains '#'"),
        ("ops:1", "monitor", "login", "contains ':'"),
        ("two words", "monitor", "login", "contains ' '"),
        ("tab\there", "monitor", "login", "contains '\\t'"),
        ("d.1", "drone", "login", "not a drone id"),
        ("-d1", "drone", "login", "not a drone id"),
        ("d" * 65, "drone", "login", "not a drone id"),
        ("ops", "admin", "role", "'admin' is not one of drone, package,"),
    ],
)
def test_invalid_logins_and_roles_are_refused_naming_the_field(
    tmp_path: Path, login: str, role: str, field: str, says: str
) -> None:
    with pytest.raises(CredentialsError, match=r"^\w+: ") as refused:
        add_login(tmp_path, login, role=role, password="pw")
    assert refused.value.field == field
    assert says in refused.value.detail
    assert not (tmp_path / "passwd").exists()


def test_every_problem_of_a_login_is_named() -> None:
    assert [p.field for p in login_problems("a/b", "admin")] == ["login", "role"]
    assert login_problems("d.1", "monitor") == []  # only a drone's login must be a drone id
    check_login("d-001", "drone")


def test_a_directory_whose_files_disagree_is_refused_saying_how_to_repair(tmp_path: Path) -> None:
    add_login(tmp_path, "d-1", role="drone", password="a")
    (tmp_path / "roles").write_text("d-1 drone\nd-2 drone\n")
    with pytest.raises(CredentialsError, match="'d-2' is in roles but not in passwd") as refused:
        read_credentials(tmp_path)
    assert "murmur creds remove d-2" in str(refused.value)
    remove_login(tmp_path, "d-2")
    assert read_credentials(tmp_path).roles == {"d-1": "drone"}


def test_a_missing_directory_says_how_to_create_logins(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="no such directory; create logins with"):
        read_credentials(tmp_path / "nowhere")


def test_generated_passwords_are_long_random_and_one_line() -> None:
    passwords = {generate_password() for _ in range(100)}
    assert len(passwords) == 100
    assert all(len(p) == 32 and p.isprintable() and p.strip() == p for p in passwords)


def test_a_secret_is_the_first_line_of_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "d-1"
    secret.write_text("s3 cr:et\r\nignored\n")
    assert read_secret(secret) == "s3 cr:et"
    secret.write_text("\nsecond\n")
    with pytest.raises(CredentialsError, match="the first line is empty"):
        read_secret(secret)
    with pytest.raises(CredentialsError, match="cannot read"):
        read_secret(tmp_path / "missing")


def test_a_drone_logs_in_as_itself_unless_the_url_names_a_user() -> None:
    assert drone_login(fleet("mqtt://h"), "d-1").username == "d-1"
    assert drone_login(fleet("mqtt://ops:pw@h"), "d-1").username == "ops"
    own = drone_login(fleet("mqtt://h", {"d-1": "pw-1", "d-2": "pw-2"}), "d-2")
    assert (own.username, own.password) == ("d-2", "pw-2")
    assert "pw-" not in repr(fleet("mqtt://h", {"d-1": "pw-1"}))


def sim_fails(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str
) -> list[str]:
    for name in [n for n in os.environ if n.startswith("MURMUR_")]:
        monkeypatch.delenv(name)
    assert cli.main(["sim", "--drones", "2", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    return err.strip().splitlines()


def test_sim_reads_each_drones_password_from_its_file_and_refuses_a_shared_login(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d-001").write_text("pw-1\n")
    lines = sim_fails(
        capsys, monkeypatch, "--broker", "mqtt://fleet:pw@h", "--password-dir", str(tmp_path)
    )
    assert [line.split("; ")[-1] for line in lines] == [
        "drop --username and the broker URL's user name",
        "drop --password-file and the broker URL's password",
        f"murmur sim: --password-dir: {tmp_path / 'd-002'}: cannot read: No such file or directory",
    ]
    lines = sim_fails(capsys, monkeypatch, "--broker", "mqtt://h", "--password-dir", "nowhere")
    assert lines == ["murmur sim: --password-dir: nowhere: no such directory"]


async def test_the_embedded_broker_off_loopback_needs_passwords_and_roles(tmp_path: Path) -> None:
    add_login(tmp_path, "ops", role="operator", password="pw")
    for password_file, roles in ((None, None), (tmp_path / "passwd", None), (None, {"ops": "x"})):
        broker = EmbeddedBroker(host="0.0.0.0", port=1, password_file=password_file, roles=roles)  # noqa: S104
        with pytest.raises(InsecureBrokerError, match="reachable from other machines"):
            await broker.start()
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost")] == [True, True, True]
    assert [is_loopback(h) for h in ("192.0.2.1", "::", "broker.example")] == [False] * 3
