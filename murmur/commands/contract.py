"""`murmur contract`: the published contract as an AsyncAPI 3.0 JSON document."""

import argparse
import json

from contracts import DEFAULT_ROOT
from murmur.commands import Subcommands


def add_parser(commands: Subcommands) -> None:
    """Add `murmur contract`."""
    contract = commands.add_parser(
        "contract", help="print the published contract as an AsyncAPI 3.0 document (JSON)"
    )
    contract.add_argument("--root", default=DEFAULT_ROOT, help="topic root (default %(default)s)")
    contract.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the document."""
    from contracts.asyncapi import asyncapi_document  # noqa: PLC0415 - lazy by design

    print(json.dumps(asyncapi_document(root=args.root), indent=2))
    return 0
