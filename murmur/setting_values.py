"""A setting's value from a TOML file or an environment variable, converted as argparse would.

The option's own `type`, `nargs` and `choices` decide: TOML must type a number as a number, a
variable is text as on the command line; a flag without arguments takes true or false.
"""

import argparse
import shlex
from datetime import datetime
from pathlib import Path
from typing import Any


class InvalidValueError(ValueError):
    """A value of the wrong type or not among the choices; the message says which."""


def instant(text: str) -> datetime:
    """An option's type: an ISO 8601 time with its zone (`2026-01-01T00:00:00Z`)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        msg = f"{text!r} has no time zone"
        raise ValueError(msg)
    return value


_KINDS: dict[Any, str] = {
    float: "a number",
    int: "an integer",
    Path: "a path",
    str: "a string",
    instant: "an ISO 8601 time with a zone, like 2026-01-01T00:00:00Z",
}


def _expected(action: argparse.Action) -> str:
    if action.nargs == 0:
        return "true or false"
    return _KINDS.get(action.type, "a string" if action.type is None else "a valid value")


def _is_list(action: argparse.Action) -> bool:
    return action.nargs in {"*", "+"} or (isinstance(action.nargs, int) and action.nargs > 0)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _switch(action: argparse.Action, on: bool) -> object:  # noqa: FBT001 - a value, not a mode
    """The value a flag without arguments (store_true, store_const...) gives when on/off."""
    if action.const is None or isinstance(action.const, bool):
        return on
    return action.const if on else action.default


def _checked(action: argparse.Action, value: Any) -> Any:  # noqa: ANN401 - any option's type
    if action.choices is not None:
        for item in value if _is_list(action) else [value]:
            if item not in action.choices:
                choices = ", ".join(str(c) for c in action.choices)
                msg = f"must be one of {choices}, got {item!r}"
                raise InvalidValueError(msg)
    return value


def from_text(action: argparse.Action, text: str) -> Any:  # noqa: ANN401
    """A value as a command line or an environment variable spells it."""
    if action.nargs == 0:
        word = text.strip().lower()
        if word not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise InvalidValueError(f"expected true or false, got {text!r}")
        return _switch(action, on=word in {"1", "true", "yes", "on"})
    if _is_list(action):
        return _checked(action, [_scalar_from_text(action, part) for part in shlex.split(text)])
    return _checked(action, _scalar_from_text(action, text))


def _scalar_from_text(action: argparse.Action, text: str) -> Any:  # noqa: ANN401
    if action.type is None:
        return text
    convert: Any = action.type
    try:
        return convert(text)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        raise InvalidValueError(f"expected {_expected(action)}, got {text!r}") from None


def from_toml(action: argparse.Action, value: object) -> Any:  # noqa: ANN401
    """A value as TOML types it: numbers must be numbers, paths and names strings."""
    if action.nargs == 0:
        if not isinstance(value, bool):
            raise InvalidValueError(f"expected true or false, got {_show(value)}")
        return _switch(action, on=value)
    if _is_list(action):
        if not isinstance(value, list):
            raise InvalidValueError(f"expected a list, got {_show(value)}")
        return _checked(action, [_scalar_from_toml(action, item) for item in value])
    return _checked(action, _scalar_from_toml(action, value))


def _scalar_from_toml(action: argparse.Action, value: object) -> Any:  # noqa: ANN401
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if action.type is float and number:
        return float(value)  # type: ignore[arg-type]
    if action.type is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and action.type not in {float, int}:
        return _scalar_from_text(action, value)
    raise InvalidValueError(f"expected {_expected(action)}, got {_show(value)}")
