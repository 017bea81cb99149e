"""Settings in layers: a TOML file, overridden by `MURMUR_*` variables, overridden by flags.

Nothing here is written per setting. The settings of a command are its argparse options
(plus the top-level ones such as `--log-level`): option `--telemetry-hz` (dest
`telemetry_hz`) is the TOML key `telemetry_hz` and the variable `MURMUR_TELEMETRY_HZ`.
Values from the file and the environment are converted with the option's `type` and
checked against its `choices`, as argparse does for flags. A command takes part by calling
`add_config_option` after adding its options; that also turns its `required=True` options
into settings required once all layers are applied, so `--broker` may come from the file.

Every layer is checked, even where a higher one overrides it, and every problem is
reported at once, each naming the setting and where its value came from. Checks of what
the values mean (ranges, URLs) stay with the commands, which name the flag
(`--telemetry-hz: ...`); `explain` rewrites such a message to name the file or the
variable when the value came from there.
"""

import argparse
import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from murmur.setting_values import InvalidValueError, from_text, from_toml

ENV_PREFIX = "MURMUR_"
CONFIG_DEST = "config"
_NOT_SETTINGS = frozenset({"help", "version", CONFIG_DEST})


@dataclass(frozen=True)
class ConfigSpec:
    """What `add_config_option` records about a command (as its default `config_spec`)."""

    parser: argparse.ArgumentParser
    example: str
    required: frozenset[str]
    reports: bool


@dataclass(frozen=True)
class Setting:
    """One option of a command, under its three names."""

    action: argparse.Action

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments."""
        return self.action.dest

    @property
    def key(self) -> str:
        """The key in the TOML file."""
        return self.action.dest

    @property
    def env(self) -> str:
        """The environment variable."""
        return ENV_PREFIX + self.action.dest.upper()

    @property
    def flag(self) -> str:
        """The command-line flag (the long one)."""
        options = self.action.option_strings
        return next((o for o in options if o.startswith("--")), options[0])


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from."""

    kind: Literal["default", "file", "env", "flag"]
    where: str = ""

    def describe(self) -> str:
        """`in agent.toml`, `from MURMUR_BROKER`, `from --broker` or `default`."""
        if self.kind == "file":
            return f"in {self.where}"
        if self.kind == "default":
            return "default"
        return f"from {self.where}"


@dataclass
class Layers:
    """The settings of a command after layering, and where each value came from."""

    settings: list[Setting]
    origins: dict[str, Origin] = field(default_factory=dict)
    config_file: Path | None = None
    problems: list[str] = field(default_factory=list)
    """What layering found: unreadable file, unknown keys, wrong types, missing settings."""
    flagged: set[str] = field(default_factory=set)
    """Dests with a problem above; the command's own checks of them would only repeat it."""

    def explain(self, problem: str) -> str:
        """Rewrite `--flag: detail` to name the file or variable the value came from.

        A message about a value given as a flag (or left at its default) is returned as is.
        """
        setting = self._setting_of(problem)
        if setting is None:
            return problem
        origin = self.origins.get(setting.dest)
        if origin is None or origin.kind in {"flag", "default"}:
            return problem
        detail = problem.removeprefix(f"{setting.flag}:").strip()
        return f"{setting.key}: {detail} ({origin.describe()})"

    def report(self, own: list[str]) -> list[str]:
        """Layering problems, then the command's own (explained) about other settings."""
        kept = [p for p in own if (s := self._setting_of(p)) is None or s.dest not in self.flagged]
        return self.problems + [self.explain(problem) for problem in kept]

    def _setting_of(self, problem: str) -> Setting | None:
        return next((s for s in self.settings if problem.startswith(f"{s.flag}:")), None)


# --- declaring settings --------------------------------------------------------------------


def add_config_option(
    command: argparse.ArgumentParser, *, example: str, reports: bool = False
) -> None:
    """Let `command` read its settings from a TOML file and `MURMUR_*` variables.

    Call it after adding the command's options: each `required=True` option becomes
    optional for argparse and required after layering instead.

    Args:
        command: The subcommand's parser.
        example: The file name used in help and messages (e.g. `agent.toml`).
        reports: False: `murmur` prints the layering problems and exits 2 before the
            command runs. True: the command runs anyway (a missing required setting is
            None) and prints `report(args, its_own_problems)` itself, so one run shows
            every problem.
    """
    required = set()
    for action in command._actions:  # noqa: SLF001 - argparse has no public list of actions
        if action.option_strings and action.required:
            action.required = False
            required.add(action.dest)
            setting = Setting(action)
            action.help = (
                f"{action.help + '; ' if action.help else ''}required: this flag, "
                f"{setting.env} or `{setting.key}` in --config"
            )
    command.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"TOML file ({example}) with any of these settings, keyed by the flag's name with "
        "'_' for '-'; MURMUR_<NAME> variables override it and flags override both "
        "(also from MURMUR_CONFIG)",
    )
    command.set_defaults(
        config_spec=ConfigSpec(
            parser=command, example=example, required=frozenset(required), reports=reports
        )
    )


# --- layering ------------------------------------------------------------------------------


def layer(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Apply the file and the environment under the flags of `args`, parsed from `argv`.

    Does nothing for a command without `add_config_option`. Leaves `args.config_layers`
    (see `explain` and `report`) and returns the problems, each naming a setting and its
    source.
    """
    spec = getattr(args, "config_spec", None)
    if not isinstance(spec, ConfigSpec):
        return []
    environ = os.environ if environ is None else environ
    settings = _settings(parser) + _settings(spec.parser)
    explicit = _explicit(parser, spec.parser, argv)
    problems: list[str] = []

    config_file, values = _config_file(args, explicit, environ, problems)
    file_failed = bool(problems)
    keys = {setting.key for setting in settings}
    problems.extend(_unknown_key(key, keys, config_file) for key in values if key not in keys)

    layers = Layers(settings=settings, config_file=config_file)
    for setting in settings:
        candidates: list[tuple[Origin, Any]] = []
        if setting.key in values and config_file is not None:
            candidates.append((Origin("file", str(config_file)), values[setting.key]))
        if environ.get(setting.env):
            candidates.append((Origin("env", setting.env), environ[setting.env]))
        checked = _convert(setting, candidates, problems)
        if len(checked) < len(candidates):
            layers.flagged.add(setting.dest)
        if setting.dest in explicit:
            layers.origins[setting.dest] = Origin("flag", setting.flag)
        elif checked:
            origin, value = checked[-1]
            setattr(args, setting.dest, value)
            layers.origins[setting.dest] = origin
        else:
            layers.origins[setting.dest] = Origin("default")

    _check_required(args, spec, layers, problems, report_missing=not file_failed)
    layers.problems = problems
    args.config_layers = layers
    return problems


def missing(args: argparse.Namespace, dest: str) -> str:
    """The message for a setting a command needs but no layer set, naming all three sources.

    For settings required only in some cases (`--db` for some services); the always
    required ones are checked by `layer`.
    """
    layers = getattr(args, "config_layers", None)
    spec = getattr(args, "config_spec", None)
    settings = layers.settings if isinstance(layers, Layers) else []
    setting = next((s for s in settings if s.dest == dest), None)
    if setting is None or not isinstance(spec, ConfigSpec) or not isinstance(layers, Layers):
        return f"--{dest.replace('_', '-')}: missing"
    return _missing(setting, layers.config_file, spec.example)


def _missing(setting: Setting, config_file: Path | None, example: str) -> str:
    where = f"in {config_file}" if config_file is not None else f"in a --config {example}"
    return f"{setting.key}: missing ({setting.flag}, {setting.env} or `{setting.key}` {where})"


def _check_required(
    args: argparse.Namespace,
    spec: ConfigSpec,
    layers: Layers,
    problems: list[str],
    *,
    report_missing: bool,
) -> None:
    """A problem for each required setting no layer set (unless its value was invalid)."""
    for setting in layers.settings:
        if setting.dest not in spec.required or getattr(args, setting.dest, None) is not None:
            continue
        # An invalid value was reported already, and an unreadable file once, not per setting.
        if setting.dest not in layers.flagged and report_missing:
            problems.append(_missing(setting, layers.config_file, spec.example))
        layers.flagged.add(setting.dest)


def deferred(args: argparse.Namespace) -> bool:
    """Whether the command reports layering problems itself (`add_config_option(reports=)`)."""
    spec = getattr(args, "config_spec", None)
    return isinstance(spec, ConfigSpec) and spec.reports


def report(args: argparse.Namespace, own: list[str]) -> list[str]:
    """Every problem of the command: layering's, then its own checks' (see `Layers.report`)."""
    layers = getattr(args, "config_layers", None)
    return layers.report(own) if isinstance(layers, Layers) else own


def explain(args: argparse.Namespace, problem: str) -> str:
    """`problem` (`--flag: detail`) naming where the value came from (see `Layers.explain`)."""
    layers = getattr(args, "config_layers", None)
    return layers.explain(problem) if isinstance(layers, Layers) else problem


def _config_file(
    args: argparse.Namespace,
    explicit: set[str],
    environ: Mapping[str, str],
    problems: list[str],
) -> tuple[Path | None, dict[str, Any]]:
    """The config file named by `--config` (or else `MURMUR_CONFIG`) and its table."""
    variable = ENV_PREFIX + CONFIG_DEST.upper()
    if CONFIG_DEST in explicit:
        path, source = args.config, "--config"
    elif environ.get(variable):
        path, source = Path(environ[variable]), variable
    else:
        return None, {}
    return path, _read_toml(path, source, problems)


def _convert(
    setting: Setting, candidates: list[tuple[Origin, Any]], problems: list[str]
) -> list[tuple[Origin, Any]]:
    """Each candidate value converted and checked; a problem for each that is not valid."""
    checked = []
    for origin, raw in candidates:
        try:
            if origin.kind == "file":
                value = from_toml(setting.action, raw)
            else:
                value = from_text(setting.action, raw)
        except InvalidValueError as exc:
            problems.append(f"{setting.key}: {exc} ({origin.describe()})")
        else:
            checked.append((origin, value))
    return checked


def _settings(parser: argparse.ArgumentParser) -> list[Setting]:
    return [
        Setting(action)
        for action in parser._actions  # noqa: SLF001 - argparse has no public list
        if action.option_strings and action.dest not in _NOT_SETTINGS
    ]


def _explicit(
    parser: argparse.ArgumentParser,
    command: argparse.ArgumentParser,
    argv: Sequence[str] | None,
) -> set[str]:
    """The dests given on the command line: parse again with every default suppressed."""
    saved_actions = []
    saved_defaults = []
    for each in (parser, command):
        saved_defaults.append((each, dict(each._defaults)))  # noqa: SLF001
        each._defaults.clear()  # noqa: SLF001 - else set_defaults values look given
        for action in each._actions:  # noqa: SLF001
            saved_actions.append((action, action.default, action.required))
            action.default = argparse.SUPPRESS
            if action.option_strings:
                action.required = False
    try:
        given = parser.parse_args(argv)
    finally:
        for action, default, required in saved_actions:
            action.default, action.required = default, required
        for each, defaults in saved_defaults:
            each._defaults.update(defaults)  # noqa: SLF001
    return set(vars(given))


def _read_toml(path: Path, source: str, problems: list[str]) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        problems.append(f"{source}: cannot read {path}: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{source}: {path} is not valid TOML: {exc}")
    except UnicodeDecodeError as exc:
        problems.append(f"{source}: {path} is not UTF-8 text: {exc.reason}")
    return {}


def _unknown_key(key: str, keys: set[str], config_file: Path | None) -> str:
    message = f"{key}: unknown setting (in {config_file})"
    close = difflib.get_close_matches(key.replace("-", "_").lower(), sorted(keys), n=1)
    return f"{message}; did you mean `{close[0]}`?" if close else message
