"""The credentials directory: who may log in to the broker, and in which role.

One directory serves both brokers (docs/security.md, "Credentials"):

* `passwd`: the Mosquitto password file (`broker.passwords`), read by Mosquitto's
  `password_file` and by the embedded broker;
* `roles`: one `login role` per line, `#` comments allowed, the source of every right;
* `acl`: the Mosquitto `acl_file`, rendered from `roles` by `broker.acl.mosquitto_acl` and
  rewritten on every change.

Only file logic: no sockets, no processes. Each file is written next to its destination and
renamed over it, mode 0600, so a broker reloading on SIGHUP never reads half a file.
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from broker.acl import ROLES, mosquitto_acl
from broker.passwords import (
    hash_password,
    read_password_file,
    write_password_file,
    write_private_file,
)
from contracts.ids import TopicId

__all__ = [
    "ACL",
    "PASSWD",
    "ROLES_FILE",
    "Credentials",
    "CredentialsError",
    "add_login",
    "check_login",
    "generate_password",
    "login_problems",
    "read_credentials",
    "read_secret",
    "remove_login",
]

PASSWD = "passwd"  # noqa: S105 - a file name, not a password
ROLES_FILE = "roles"
ACL = "acl"

_FORBIDDEN = frozenset("/+#:")
_ROLES_HEADER = (
    "# Logins of the Murmuration broker and their roles (broker/acl.py), one `login role`\n"
    "# per line. Written by `murmur creds`, which renders the acl file from it: edit with it.\n"
)
_DRONE_ID: TypeAdapter[str] = TypeAdapter(TopicId)


class CredentialsError(ValueError):
    """Unusable credentials; `field` names what is wrong (`login`, `role`, a file...)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


@dataclass(frozen=True)
class Credentials:
    """The logins of one credentials directory."""

    directory: Path
    roles: dict[str, str]
    """Login -> role."""
    hashes: dict[str, str] = field(repr=False)
    """Login -> password hash, as in `passwd`."""

    @property
    def password_file(self) -> Path:
        """The Mosquitto password file."""
        return self.directory / PASSWD

    @property
    def acl_file(self) -> Path:
        """The Mosquitto ACL file."""
        return self.directory / ACL


def check_login(login: str, role: str) -> None:
    """Check a login and its role.

    Raises:
        CredentialsError: the first of `login_problems`.
    """
    problems = login_problems(login, role)
    if problems:
        raise problems[0]


def login_problems(login: str, role: str) -> list[CredentialsError]:
    """Everything wrong with a login and its role: errors of field `login` or `role`."""
    problems = []
    bad = sorted({c for c in login if c in _FORBIDDEN or c.isspace() or not c.isprintable()})
    if not login:
        problems.append(CredentialsError("login", "empty; a login is one MQTT topic level"))
    elif bad:
        problems.append(
            CredentialsError(
                "login",
                f"{login!r} contains {', '.join(repr(c) for c in bad)}; a login is one MQTT "
                "topic level, without '/', '+', '#', ':', whitespace or control characters",
            )
        )
    elif role == "drone" and not _is_drone_id(login):
        problems.append(
            CredentialsError(
                "login",
                f"{login!r} is not a drone id (1-64 letters, digits, '-' or '_', starting with "
                "a letter or digit); a drone logs in with its drone id",
            )
        )
    if role not in ROLES:
        problems.append(CredentialsError("role", f"{role!r} is not one of {', '.join(ROLES)}"))
    return problems


def _is_drone_id(login: str) -> bool:
    try:
        _DRONE_ID.validate_python(login)
    except ValidationError:
        return False
    return True


def generate_password() -> str:
    """A new random password: 24 bytes from the OS's CSPRNG, 32 URL-safe characters."""
    return secrets.token_urlsafe(24)


def read_secret(path: Path) -> str:
    """The password in a secret file: its first line, which must not be empty.

    Raises:
        CredentialsError: field `str(path)`; the file is unreadable or its first line empty.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CredentialsError(str(path), "not UTF-8 text") from None
    password = text.split("\n", 1)[0].removesuffix("\r")
    if not password:
        raise CredentialsError(str(path), "the first line is empty")
    return password


def read_credentials(directory: Path) -> Credentials:
    """Read and check a credentials directory, as a broker starting on it needs it.

    Raises:
        CredentialsError: the directory is missing, a file is malformed, or `passwd` and
            `roles` do not name the same logins.
    """
    roles, hashes = _read(directory)
    mismatched = sorted(roles.keys() ^ hashes.keys())
    if mismatched:
        login = mismatched[0]
        has, lacks = (ROLES_FILE, PASSWD) if login in roles else (PASSWD, ROLES_FILE)
        raise CredentialsError(
            str(directory / lacks),
            f"login {login!r} is in {has} but not in {lacks}; "
            f"`murmur creds add {login}` or `murmur creds remove {login}` repairs it",
        )
    return Credentials(directory=directory, roles=roles, hashes=hashes)


def add_login(directory: Path, login: str, *, role: str, password: str) -> str | None:
    """Add a login, or replace the password and role of an existing one (rotation).

    The directory is created (mode 0700) if missing.

    Returns:
        The login's previous role, or None if it is new.

    Raises:
        CredentialsError: an invalid login, role or password, or a malformed file.
    """
    check_login(login, role)
    if not password or any(c in password for c in "\r\n"):
        raise CredentialsError("password", "must be one non-empty line")
    if directory.exists() and not directory.is_dir():
        raise CredentialsError(str(directory), "not a directory")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    roles, hashes = _read(directory, missing_ok=True)
    previous = roles.get(login)
    roles[login] = role
    hashes[login] = hash_password(password)
    _write(directory, roles, hashes)
    return previous


def remove_login(directory: Path, login: str) -> str | None:
    """Remove a login from every file.

    Returns:
        Its role (None if only `passwd` named it).

    Raises:
        CredentialsError: field `login` if no file names it.
    """
    roles, hashes = _read(directory, missing_ok=True)
    if login not in roles and login not in hashes:
        raise CredentialsError("login", f"no login {login!r} in {directory}")
    role = roles.pop(login, None)
    hashes.pop(login, None)
    _write(directory, roles, hashes)
    return role


def _read(directory: Path, *, missing_ok: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    if not directory.is_dir():
        if missing_ok and not directory.exists():
            return {}, {}
        raise CredentialsError(
            str(directory),
            "no such directory; create logins with `murmur creds add LOGIN --role ROLE`",
        )
    roles_file, passwd = directory / ROLES_FILE, directory / PASSWD
    roles = _read_roles(roles_file) if roles_file.exists() else {}
    try:
        hashes = read_password_file(passwd) if passwd.exists() else {}
    except (OSError, ValueError) as exc:
        raise CredentialsError(str(passwd), str(exc)) from None
    return roles, hashes


def _read_roles(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(str(path), f"cannot read: {exc}") from None
    roles: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if len(words) != 2:  # noqa: PLR2004 - login and role
            raise CredentialsError(f"{path}:{lineno}", "expected `login role`")
        login, role = words
        try:
            check_login(login, role)
        except CredentialsError as exc:
            raise CredentialsError(f"{path}:{lineno}", str(exc)) from None
        roles[login] = role
    return roles


def _write(directory: Path, roles: Mapping[str, str], hashes: Mapping[str, str]) -> None:
    # The roles first: a crash before the password file leaves a login that cannot log in,
    # never one that logs in without the rights its role gives.
    body = "".join(f"{login} {roles[login]}\n" for login in sorted(roles))
    write_private_file(directory / ROLES_FILE, _ROLES_HEADER + body)
    write_password_file(directory / PASSWD, {login: hashes[login] for login in sorted(hashes)})
    write_private_file(directory / ACL, mosquitto_acl(roles))
