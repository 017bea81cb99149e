"""Mosquitto-compatible password files, shared by Mosquitto and the embedded broker.

A line is ``username:encoded``. Two encodings are understood, both as written by
Mosquitto 2.x ``mosquitto_passwd``:

* ``$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512 (the default, and what we write);
* ``$6$<salt>$<hash>``: ``sha512(password + salt)`` (Mosquitto 1.6 and earlier).

Salt and hash are standard base64 with padding; the salt is decoded before use.
"""

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "ITERATIONS",
    "hash_password",
    "read_password_file",
    "verify_password",
    "write_password_file",
    "write_private_file",
]

ITERATIONS = 101
"""PBKDF2 iterations Mosquitto 2.x uses (`PW_DEFAULT_ITERATIONS`)."""

_SALT_LEN = 12
_KEY_LEN = 64
_PBKDF2_FIELDS = 5  # "", "7", iterations, salt, hash
_SHA512_FIELDS = 4  # "", "6", salt, hash


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Hash a password in Mosquitto 2.x ``$7$`` format.

    Args:
        password: The plaintext password (encoded as UTF-8).
        salt: Salt bytes; a fresh random 12-byte salt when omitted. Pass one only to
            reproduce a known hash.

    Returns:
        ``$7$101$<base64 salt>$<base64 hash>``, accepted by Mosquitto's ``password_file``.
    """
    if salt is None:
        salt = secrets.token_bytes(_SALT_LEN)
    derived = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, _KEY_LEN)
    return f"$7${ITERATIONS}${_b64(salt)}${_b64(derived)}"


def verify_password(password: str, encoded: str) -> bool:
    """Check a password against a ``$7$`` or ``$6$`` Mosquitto hash.

    Args:
        password: The plaintext password a client presented.
        encoded: The encoded hash from a password file.

    Returns:
        True if the password matches. False on a mismatch and on any hash this
        module cannot parse (unknown scheme, bad base64), so a corrupt entry never
        lets anyone in.
    """
    fields = encoded.split("$")
    try:
        if len(fields) == _PBKDF2_FIELDS and fields[1] == "7":
            iterations = int(fields[2])
            if iterations < 1:
                return False
            salt, expected = _unb64(fields[3]), _unb64(fields[4])
            actual = hashlib.pbkdf2_hmac(
                "sha512", password.encode(), salt, iterations, len(expected)
            )
        elif len(fields) == _SHA512_FIELDS and fields[1] == "6":
            salt, expected = _unb64(fields[2]), _unb64(fields[3])
            actual = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except (ValueError, binascii.Error):
        return False
    return bool(expected) and hmac.compare_digest(actual, expected)


def read_password_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a Mosquitto password file.

    Blank lines and lines starting with ``#`` are skipped; a later line for the same
    user wins.

    Args:
        path: The password file.

    Returns:
        Username to encoded hash.

    Raises:
        ValueError: A line is not ``username:hash`` with both parts non-empty; the
            message names the file and the 1-based line number (never the hash).
    """
    users: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, encoded = line.partition(":")
        if not sep or not username or not encoded:
            msg = f"{path}:{lineno}: malformed password line, expected 'username:hash'"
            raise ValueError(msg)
        users[username] = encoded
    return users


def write_password_file(path: str | os.PathLike[str], users: Mapping[str, str]) -> None:
    """Write a password file atomically with mode 0600.

    The file is written next to its destination and renamed over it, so a reader
    (or a broker reloading on SIGHUP) never sees a half-written file.

    Args:
        path: Destination file.
        users: Username to encoded hash (see `hash_password`).

    Raises:
        ValueError: A username is empty or contains ``:`` or a line break, or a hash
            contains a line break.
    """
    lines = []
    for username, encoded in users.items():
        if not username or any(c in username for c in ":\r\n"):
            msg = f"invalid username {username!r}: must be non-empty without ':' or newlines"
            raise ValueError(msg)
        if not encoded or any(c in encoded for c in "\r\n"):
            msg = f"invalid hash for user {username!r}"
            raise ValueError(msg)
        lines.append(f"{username}:{encoded}\n")

    write_private_file(Path(path), "".join(lines))


def write_private_file(target: Path, text: str) -> None:
    """Replace `target` with `text` atomically, readable by its owner only (mode 0600).

    The file is written next to its destination and renamed over it once on disk, so a reader
    (or a broker reloading on SIGHUP) never sees a half-written file.
    """
    # mkstemp creates the file 0600, so secrets are never world-readable, even briefly.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
