"""One module per `murmur` command, each with `add_parser(commands)` and `run(args)`.

A command's module imports only what building its parser needs; what it runs is imported in
`run`, so `murmur agent` on a Raspberry Pi never loads the embedded broker or the console.
"""

import argparse
from typing import Any, Protocol


class Subcommands(Protocol):
    """The `murmur` parser's subcommands (what `add_subparsers` returns)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:  # noqa: ANN401
        """Add one command's parser."""
        ...
