import base64
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.passwords import (
    hash_password,
    read_password_file,
    verify_password,
    write_password_file,
)

# Produced by Mosquitto 2.0.11: `mosquitto_passwd -c -b FILE murmur s3cret`.
MOSQUITTO_PBKDF2 = (
    "$7$101$ACM7YemB0ksPEElm$NRVWBzY3uNjT4Qr4XVPKJEJ3LgI4TfYtoSJPJKv9rhnWT7+Ef9QT6hUWc"
    "/dpyFZcKCwzi75Rew7cNj49mr9OGA=="
)
# Produced by `mosquitto_passwd -H sha512 -c -b FILE old oldpw` (the Mosquitto 1.6 format).
MOSQUITTO_SHA512 = (
    "$6$PxvxyFBf5JBh6sp1$ccMVDRLXoq5/H3ldgjDHwVlrzqJIPwLzy9E56T1MZNbKN7YHaRVSyC8vSrBqk5km"
    "A1H0X4w4W8ydQnip6fUVLQ=="
)
PBKDF2_SHAPE = re.compile(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==")


def test_hash_has_mosquitto_shape_and_fresh_salt() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert PBKDF2_SHAPE.fullmatch(first)
    assert first != second


def test_hash_roundtrip() -> None:
    encoded = hash_password("correct horse")
    assert verify_password("correct horse", encoded)
    assert not verify_password("correct horsE", encoded)
    assert not verify_password("", encoded)


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_hash_roundtrip_any_text(password: str) -> None:
    assert verify_password(password, hash_password(password))


def test_same_salt_reproduces_mosquitto_hash() -> None:
    salt = base64.b64decode(MOSQUITTO_PBKDF2.split("$")[3])
    assert hash_password("s3cret", salt=salt) == MOSQUITTO_PBKDF2


def test_verifies_mosquitto_vectors() -> None:
    assert verify_password("s3cret", MOSQUITTO_PBKDF2)
    assert not verify_password("s3cret ", MOSQUITTO_PBKDF2)
    assert verify_password("oldpw", MOSQUITTO_SHA512)
    assert not verify_password("oldpw2", MOSQUITTO_SHA512)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext",
        "$7$101$",
        "$7$abc$AAAA$AAAA",
        "$7$0$ACM7YemB0ksPEElm$AAAA",
        "$7$101$not*base64$AAAA",
        "$7$101$ACM7YemB0ksPEElm$",
        "$6$salt",
        "$5$ACM7YemB0ksPEElm$AAAA",
    ],
)
def test_unparseable_hash_never_verifies(encoded: str) -> None:
    assert not verify_password("", encoded)
    assert not verify_password("s3cret", encoded)


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd missing")
def test_reads_file_written_by_mosquitto_passwd(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    tool = shutil.which("mosquitto_passwd")
    assert tool is not None
    subprocess.run([tool, "-c", "-b", path, "alice", "pä ss:w0rd"], check=True)
    subprocess.run([tool, "-b", path, "bob", "hunter2"], check=True)

    users = read_password_file(path)

    assert sorted(users) == ["alice", "bob"]
    assert verify_password("pä ss:w0rd", users["alice"])
    assert verify_password("hunter2", users["bob"])
    assert not verify_password("hunter2", users["alice"])


def test_read_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"# users\n\n  \nalice:{MOSQUITTO_PBKDF2}\n# bob:x\n", encoding="utf-8")
    assert read_password_file(path) == {"alice": MOSQUITTO_PBKDF2}


@pytest.mark.parametrize("bad_line", ["alice", ":$7$x", "alice:"])
def test_malformed_line_names_its_number(tmp_path: Path, bad_line: str) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"# header\nbob:{MOSQUITTO_PBKDF2}\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r":3: malformed password line"):
        read_password_file(path)


def test_write_is_private_and_roundtrips(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("stale:entry\n", encoding="utf-8")
    users = {"alice": hash_password("a"), "bob": MOSQUITTO_SHA512}

    write_password_file(path, users)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_password_file(path) == users
    assert [p.name for p in tmp_path.iterdir()] == ["passwd"]  # no temp file left behind


@pytest.mark.parametrize("username", ["", "a:b", "a\nb"])
def test_write_rejects_unrepresentable_usernames(tmp_path: Path, username: str) -> None:
    path = tmp_path / "passwd"
    with pytest.raises(ValueError, match="invalid username"):
        write_password_file(path, {username: MOSQUITTO_PBKDF2})
    assert not path.exists()
