"""`murmur creds add|list|remove`: the logins of a credentials directory.

The command-line side only; the files are `broker/credentials.py`'s (docs/security.md). A
generated password is the only thing written on stdout, so it can be redirected into the secret
file of whatever logs in; everything else goes to stderr.
"""

import argparse
import sys
from pathlib import Path

from murmur.commands import Subcommands
from murmur.config import Layers, add_config_option, report
from murmur.running import FAILED, INVALID

_FLAGS = {"login": "LOGIN", "role": "--role"}


def add_parser(commands: Subcommands) -> None:
    """Add `murmur creds` and its actions to the `murmur` parser's commands."""
    creds = commands.add_parser(
        "creds", help="manage broker logins: passwords and roles, for Mosquitto and amqtt"
    )
    actions = creds.add_subparsers(dest="creds_action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", help="add a login, or give an existing one a new password and role (rotation)"
    )
    add.add_argument("login", metavar="LOGIN", help="one topic level; a drone's is its drone id")
    add.add_argument(
        "--role",
        required=True,
        help="what it may publish and read: drone, package, scheduler, delivery, client, "
        "operator or monitor (docs/security.md)",
    )
    add.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="the password is this file's first line; without it one is generated and printed "
        "on stdout, once",
    )
    _add_directory(add)
    add.set_defaults(run=run)

    listing = actions.add_parser("list", help="print each login and its role (never a hash)")
    _add_directory(listing)
    listing.set_defaults(run=run)

    remove = actions.add_parser("remove", help="remove a login")
    remove.add_argument("login", metavar="LOGIN")
    _add_directory(remove)
    remove.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Carry out the action: add, list or remove."""
    actions = {"add": _add, "list": _list, "remove": _remove}
    return actions[args.creds_action](args)


def _add_directory(action: argparse.ArgumentParser) -> None:
    action.add_argument(
        "--credentials",
        type=Path,
        default=Path("credentials"),
        metavar="DIR",
        help="the credentials directory: passwd, roles and acl (default %(default)s)",
    )
    add_config_option(action, example="creds.toml")


def _add(args: argparse.Namespace) -> int:
    from broker.credentials import (  # noqa: PLC0415 - lazy by design
        CredentialsError,
        add_login,
        generate_password,
        login_problems,
        read_secret,
    )

    problems: list[str] = []
    password = None
    if args.password_file is not None:
        layers = getattr(args, "config_layers", None)
        origin = layers.origins.get("password_file") if isinstance(layers, Layers) else None
        if origin is not None and origin.kind != "flag":
            problems.append(
                f"password_file: the new login's password comes only from --password-file, "
                f"not {origin.describe()}, which is meant for a connection's own password; "
                "without --password-file a password is generated"
            )
        else:
            try:
                password = read_secret(args.password_file)
            except CredentialsError as exc:
                problems.append(f"--password-file: {exc}")
    problems += [f"{_FLAGS[p.field]}: {p.detail}" for p in login_problems(args.login, args.role)]
    problems = report(args, problems)
    if problems:
        return _say("add", *problems, code=INVALID)

    generated = password is None
    password = password or generate_password()
    try:
        previous = add_login(args.credentials, args.login, role=args.role, password=password)
    except CredentialsError as exc:
        return _say("add", str(exc), code=FAILED)
    if generated:
        print(password, flush=True)
    if previous is None:
        done = f"added {args.login} ({args.role})"
    else:
        done = (
            f"{args.login} existed ({previous}): replaced its password and role, "
            f"now {args.role}; its old password no longer works once the brokers reload"
        )
    return _say("add", done, _reload_hint(args.credentials), code=0)


def _list(args: argparse.Namespace) -> int:
    from broker.credentials import CredentialsError, read_credentials  # noqa: PLC0415

    try:
        roles = read_credentials(args.credentials).roles
    except CredentialsError as exc:
        return _say("list", str(exc), code=FAILED)
    width = max((len(login) for login in roles), default=0)
    for login in sorted(roles):
        print(f"{login:<{width}}  {roles[login]}")
    if not roles:
        return _say("list", f"{args.credentials}: no logins", code=0)
    return 0


def _remove(args: argparse.Namespace) -> int:
    from broker.credentials import CredentialsError, remove_login  # noqa: PLC0415

    try:
        role = remove_login(args.credentials, args.login)
    except CredentialsError as exc:
        return _say("remove", f"{_FLAGS.get(exc.field, exc.field)}: {exc.detail}", code=FAILED)
    done = f"removed {args.login}" + (f" ({role})" if role else "")
    return _say("remove", done, _reload_hint(args.credentials), code=0)


def _reload_hint(directory: Path) -> str:
    return (
        f"Mosquitto rereads {directory / 'passwd'} and {directory / 'acl'} on SIGHUP "
        "(kill -HUP its pid; with docker compose see docs/deployment.md); "
        f"`murmur broker --credentials {directory}` reads them when it starts: restart it"
    )


def _say(action: str, *lines: str, code: int) -> int:
    for line in lines:
        print(f"murmur creds {action}: {line}", file=sys.stderr)
    return code
