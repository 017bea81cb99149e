"""The broker connection of a command: its URL completed with credentials and TLS files.

`add_connection_options` adds the settings (which `murmur.config` layers like any other);
`broker_url` checks them all and builds the `BrokerUrl` every MQTT connection is made from.
Problems name the flag, as the commands' own checks do.
"""

import argparse
import ssl
from dataclasses import replace
from pathlib import Path

from bus.url import BrokerUrl, BrokerUrlError
from contracts import DEFAULT_ROOT


def add_broker_options(command: argparse.ArgumentParser) -> None:
    """`--broker` (required), the credentials and TLS files that complete it, and `--root`."""
    command.add_argument("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port]")
    add_connection_options(command)
    command.add_argument("--root", default=DEFAULT_ROOT, help="topic root (default %(default)s)")


def add_connection_options(command: argparse.ArgumentParser) -> None:
    """Options that complete the broker URL: credentials and TLS files (see `connection`)."""
    command.add_argument("--username", help="MQTT user name (instead of the broker URL's)")
    command.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="file whose first line is the MQTT password (instead of one in the broker URL)",
    )
    command.add_argument(
        "--ca-file",
        type=Path,
        metavar="PEM",
        help="CA certificates the broker's certificate must chain to (mqtts://; default: "
        "the system's)",
    )
    command.add_argument(
        "--cert-file", type=Path, metavar="PEM", help="client certificate for TLS (mqtts://)"
    )
    command.add_argument(
        "--key-file", type=Path, metavar="PEM", help="private key of --cert-file, if separate"
    )


_TLS = (("ca_file", "--ca-file"), ("cert_file", "--cert-file"), ("key_file", "--key-file"))


def broker_url(args: argparse.Namespace, problems: list[str]) -> BrokerUrl | None:
    """`args.broker` parsed and completed by `connection`; None (and problems) if invalid."""
    url = None
    if args.broker is not None:  # None: missing, which layering reported
        try:
            url = BrokerUrl.parse(args.broker)
        except BrokerUrlError as exc:
            problems.append(f"--broker: {exc}")
    return connection(args, problems, url)


def connection(
    args: argparse.Namespace, problems: list[str], url: BrokerUrl | None
) -> BrokerUrl | None:
    """Complete `url` with the credentials and TLS files of `args` (`add_connection_options`).

    `--username` replaces the URL's user name and the first line of `--password-file` its
    password; the TLS files need an `mqtts://` URL and must be readable PEM files. Problems
    name the flag (see `explain`). With `url` None the files are still checked.
    """
    password = None
    password_file: Path | None = getattr(args, "password_file", None)
    if password_file is not None:
        password = _read_password(password_file, problems)
    tls: dict[str, Path | None] = {dest: getattr(args, dest, None) for dest, _ in _TLS}
    readable = {
        dest: path is not None and _readable(path, flag, problems)
        for (dest, flag), path in zip(_TLS, tls.values(), strict=True)
    }
    if tls["key_file"] is not None and tls["cert_file"] is None:
        problems.append("--key-file: set without --cert-file, the certificate it belongs to")
    if url is None:
        return None
    given = [flag for dest, flag in _TLS if tls[dest] is not None]
    if given and not url.tls:
        problems.append(f"{given[0]}: TLS files need an mqtts:// broker URL, got {url}")
    username: str | None = getattr(args, "username", None)
    completed = replace(
        url,
        username=username or url.username,
        password=password if password_file is not None else url.password,
        ca_file=tls["ca_file"],
        cert_file=tls["cert_file"],
        key_file=tls["key_file"],
    )
    if completed.tls and all(readable[dest] for dest, path in tls.items() if path is not None):
        _check_tls(completed, problems)
    return completed


def _read_password(path: Path, problems: list[str]) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"--password-file: cannot read {path}: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        problems.append(f"--password-file: {path} is not UTF-8 text")
        return None
    password = text.split("\n", 1)[0].removesuffix("\r")
    if not password:
        problems.append(f"--password-file: {path}: the first line is empty")
        return None
    return password


def _readable(path: Path, flag: str, problems: list[str]) -> bool:
    try:
        with path.open("rb"):
            return True
    except OSError as exc:
        problems.append(f"{flag}: cannot read {path}: {exc.strerror or exc}")
        return False


def _check_tls(url: BrokerUrl, problems: list[str]) -> None:
    """Load the TLS files the way the connection will, so a bad one is named now."""
    try:
        context = ssl.create_default_context(
            cafile=str(url.ca_file) if url.ca_file is not None else None
        )
    except ssl.SSLError as exc:
        problems.append(f"--ca-file: {url.ca_file}: no usable CA certificate ({exc.reason})")
        return
    if url.cert_file is not None:
        try:
            context.load_cert_chain(url.cert_file, url.key_file)
        except ssl.SSLError as exc:
            flag = "--key-file" if url.key_file is not None else "--cert-file"
            problems.append(
                f"{flag}: {url.cert_file} and its key do not load as a PEM certificate and "
                f"private key ({exc.reason})"
            )
