"""`murmur trace`: one delivery's journal as a causal tree. Pure: entries in, rich Tree out."""

from collections.abc import Sequence

from rich.markup import escape
from rich.tree import Tree

from contracts.events import TraceEntry

_PREFIX = "murmur."


def _line(entry: TraceEntry, *, outside: bool) -> str:
    kind = entry.type.removeprefix(_PREFIX).rsplit(".v", 1)[0]
    parts = [
        f"[dim]{entry.time:%H:%M:%S.%f}"[:-3] + "[/]",
        f"[cyan]{escape(entry.source)}[/]",
        f"[bold]{escape(kind)}[/]",
    ]
    if entry.summary:
        parts.append(escape(entry.summary))
    if outside and entry.causationid:
        parts.append(f"[dim](caused by {escape(entry.causationid)}, outside this delivery)[/]")
    return "  ".join(parts)


def causal_tree(delivery_id: str, entries: Sequence[TraceEntry], *, truncated: bool) -> Tree:
    """Each event under the event that caused it, siblings in arrival order.

    An event whose cause is not in the journal (a drone's state change, another delivery's
    event) starts a branch of its own at the top. A cause that arrived after its effect (two
    producers, two paths) still gets the effect under it.
    """
    count = f"{len(entries)} events" + (", the first ones only" if truncated else "")
    tree = Tree(f"[bold]{escape(delivery_id)}[/]  ({count})")
    known = {entry.id for entry in entries}
    effects: dict[str | None, list[TraceEntry]] = {}
    for entry in entries:
        cause = entry.causationid if entry.causationid in known else None
        effects.setdefault(cause, []).append(entry)
    placed: set[str] = set()

    def grow(node: Tree, cause: str | None) -> None:
        for entry in effects.get(cause, []):
            if entry.id in placed:
                continue  # the same id twice: shown once
            placed.add(entry.id)
            outside = entry.causationid is not None and entry.causationid not in known
            grow(node.add(_line(entry, outside=outside)), entry.id)

    grow(tree, None)
    for entry in entries:  # only ids that cause each other in a ring are left: show them anyway
        if entry.id not in placed:
            placed.add(entry.id)
            grow(tree.add(_line(entry, outside=False)), entry.id)
    return tree
