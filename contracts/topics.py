"""The topic tree: templates under a configurable root, turned into filters and matched."""

import re
from collections.abc import Mapping

DEFAULT_ROOT = "murmur/v1"

_PARAM = re.compile(r"^\{([a-z_]+)\}$")


def template_params(template: str) -> tuple[str, ...]:
    """The `{name}` parameters of a template, in order; each must fill a whole level."""
    names: list[str] = []
    for level in template.split("/"):
        match = _PARAM.match(level)
        if match:
            names.append(match.group(1))
        elif "{" in level or "}" in level or "+" in level or "#" in level or not level:
            msg = f"topic template {template!r}: level {level!r} must be a literal or one {{name}}"
            raise ValueError(msg)
    return tuple(names)


def join(root: str, relative: str) -> str:
    """Put a relative topic under the root."""
    return f"{root}/{relative}" if root else relative


def to_filter(template: str, *, root: str = DEFAULT_ROOT, **params: str) -> str:
    """A subscription filter: given parameters fill their level, the others become `+`."""
    levels = []
    for level in template.split("/"):
        match = _PARAM.match(level)
        levels.append(params.get(match.group(1), "+") if match else level)
    return join(root, "/".join(levels))


def fill(template: str, values: Mapping[str, object]) -> str:
    """A concrete relative topic from a template and the event's field values."""
    return "/".join(
        str(values[m.group(1)]) if (m := _PARAM.match(level)) else level
        for level in template.split("/")
    )


def match(template: str, topic: str, *, root: str = DEFAULT_ROOT) -> dict[str, str] | None:
    """The parameters of `topic` if it is an instance of `template` under `root`, else None."""
    prefix = f"{root}/" if root else ""
    if not topic.startswith(prefix):
        return None
    levels = topic[len(prefix) :].split("/")
    parts = template.split("/")
    if len(levels) != len(parts):
        return None
    params: dict[str, str] = {}
    for part, level in zip(parts, levels, strict=True):
        m = _PARAM.match(part)
        if m:
            params[m.group(1)] = level
        elif part != level:
            return None
    return params


def filter_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter semantics (`+` one level, trailing `#` the rest); `$share/g/` is ignored.

    As MQTT requires, a filter starting with a wildcard does not match a `$` topic (`$SYS/...`).
    """
    if topic_filter.startswith("$share/"):
        _group, slash, topic_filter = topic_filter.removeprefix("$share/").partition("/")
        if not slash:
            return False
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels, t_levels = topic_filter.split("/"), topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels) or (f not in ("+", t_levels[i])):
            return False
    return len(f_levels) == len(t_levels)
