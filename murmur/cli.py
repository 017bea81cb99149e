"""Command-line entry point: the root parser, one subcommand per `murmur.commands` module.

Each command's module adds its own parser and runs it (`add_parser`, `run`); a command imports
what it runs only when it runs, so `murmur agent` on a Raspberry Pi never imports the embedded
broker or the console.
"""

import argparse
from collections.abc import Callable, Sequence

from murmur.commands import (
    agent,
    bench,
    broker,
    cancel,
    contract,
    creds,
    monitor,
    request,
    service,
    sim,
    trace,
    up,
)
from murmur.config import deferred, layer
from murmur.logs import LEVELS, configure
from murmur.running import problems_reported

Command = Callable[[argparse.Namespace], int]

# In the order `murmur --help` lists them.
COMMANDS = (
    contract,
    broker,
    agent,
    sim,
    service,
    request,
    cancel,
    up,
    monitor,
    bench,
    trace,
    creds,
)


def parser() -> argparse.ArgumentParser:
    """The `murmur` parser, with every command."""
    root = argparse.ArgumentParser(
        prog="murmur", description="Drone delivery by choreography over MQTT."
    )
    root.add_argument("--log-level", default="WARNING", choices=LEVELS)
    root.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one object per line with time, level, logger, message, delivery_id",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `murmur` command; returns the process exit code.

    Settings of commands with `--config` are layered first (file, then `MURMUR_*`
    variables, then flags; see murmur/config.py): every problem is printed, exit code 2.
    """
    root = parser()
    args = root.parse_args(argv)
    problems = layer(root, argv, args)
    if problems and not deferred(args):  # a command that reports them checks its own too
        return problems_reported(args.command, problems)
    configure(args.log_level, args.log_format)
    run: Command = args.run
    return run(args)
