"""Checks of values that several commands share; each problem names the flag."""

import argparse
import math
from collections.abc import Sequence

MAX_PORT = 65535


def positive(args: argparse.Namespace, names: Sequence[str], problems: list[str]) -> None:
    """Each of the flags `names` must be a finite number above zero."""
    for name in names:
        value = getattr(args, name.lstrip("-").replace("-", "_"))
        if not (math.isfinite(value) and value > 0):
            problems.append(f"{name}: must be a positive number, got {value}")


def delivery_id(value: str, problems: list[str]) -> None:
    """`DELIVERY_ID` must be one topic level (the contract's id rule)."""
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415 - pydantic is slow to load

    from contracts.ids import TopicId  # noqa: PLC0415

    try:
        TypeAdapter(TopicId).validate_python(value)
    except ValidationError:
        problems.append(f"DELIVERY_ID: {value!r} is not a delivery id")
