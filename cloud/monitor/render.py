"""One frame of the console, drawn from a FleetView with rich. Pure: no I/O, no clock.

Every table keeps one line per row (no wrapping, ellipsis instead) and a row cap with an
"… N more" line, so a frame fits an 80 to 120 column terminal with 1 drone or 100.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rich import box
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cloud.monitor.view import (
    Alert,
    Batch,
    DeliveryView,
    DroneView,
    FleetView,
    Liveness,
    Severity,
)
from contracts.events import Availability, Link
from contracts.ids import Location
from contracts.states import DeliveryStage

DEFAULT_MAX_ROWS = 20
MAP_WIDTH = 40
MAP_HEIGHT = 12
MIN_METRES_PER_COLUMN = 10.0
ALERTS_SHOWN = 8
RATES_SHOWN = 6
BATTERY_CELLS = 8

_LIVENESS_STYLE = {
    Liveness.ONLINE: "green",
    Liveness.STALE: "yellow",
    Liveness.OFFLINE: "red",
    Liveness.UNKNOWN: "dim",
}
# Which drones to show first when the table is truncated: the ones needing attention.
_LIVENESS_ORDER = {Liveness.OFFLINE: 0, Liveness.STALE: 1, Liveness.ONLINE: 2, Liveness.UNKNOWN: 3}
_AVAILABILITY_ORDER = {Availability.BUSY: 0, Availability.UNAVAILABLE: 1, Availability.IDLE: 2}
_AVAILABILITY_STYLE = {
    Availability.IDLE: "green",
    Availability.BUSY: "cyan",
    Availability.UNAVAILABLE: "yellow",
}
_S = DeliveryStage
_STAGE_STYLE = {
    _S.DELIVERED: "green",
    _S.FAILED: "bold red",
    _S.REJECTED: "red",
    _S.UNASSIGNABLE: "red",
    _S.CANCELLED: "magenta",
    _S.RESCHEDULED: "yellow",
    _S.PICKED_UP: "cyan",
    _S.HEADED_TO_DROPOFF: "cyan",
    _S.HEADED_TO_PICKUP: "blue",
}
_SEVERITY_MARK = {
    Severity.INFO: Text("i", style="blue"),
    Severity.WARN: Text("!", style="yellow"),
    Severity.CRITICAL: Text("‼", style="bold red"),
}


def render(
    view: FleetView,
    now: float,
    *,
    batch: Batch | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> RenderableType:
    """The whole console at `now` (the view's time scale).

    Args:
        view: what is known.
        now: the time of the frame, on the scale the view was fed.
        batch: the deliveries expected; shows a progress bar of the finished ones.
        max_rows: rows per table before "… N more"; the watcher sizes it to the terminal.
    """
    parts: list[RenderableType] = [_header(view, now)]
    if batch is not None:
        parts.append(_progress(view, batch))
    parts += [
        _fleet(view, now, max_rows),
        _deliveries(view, now, max_rows),
        _bottom(view, now),
    ]
    return Group(*parts)


# --- formatting helpers ---------------------------------------------------------------------


def ago(seconds: float) -> str:
    """A short duration: 4s, 3m, 2h."""
    seconds = max(0.0, seconds)
    if seconds < 60:  # noqa: PLR2004
        return f"{seconds:.0f}s"
    if seconds < 3600:  # noqa: PLR2004
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def duration(seconds: float) -> str:
    """An ETA in the producer's seconds: 45s, 4m05s, 1h02m."""
    total = round(seconds)
    if total < 60:  # noqa: PLR2004
        return f"{total}s"
    if total < 3600:  # noqa: PLR2004
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def battery_bar(pct: float | None) -> Text:
    """`██████░░ 76%`, red under 25 %, yellow under 50 %."""
    if pct is None:
        return Text("—", style="dim")
    filled = round(BATTERY_CELLS * pct / 100)
    style = "red" if pct < 25 else "yellow" if pct < 50 else "green"  # noqa: PLR2004
    bar = Text("█" * filled, style=style)
    bar.append("░" * (BATTERY_CELLS - filled), style="dim")
    bar.append(f" {pct:3.0f}%")
    return bar


def _more(count: int, what: str) -> Text:
    return Text(f"… {count} more {what}", style="dim italic")


# --- sections -------------------------------------------------------------------------------


def _header(view: FleetView, now: float) -> Text:
    by_liveness = dict.fromkeys(Liveness, 0)
    for drone in view.drones.values():
        by_liveness[view.liveness(drone, now)] += 1
    active = sum(1 for d in view.deliveries.values() if not d.terminal)
    text = Text("Murmuration", style="bold")
    if view.connected is False:
        text.append("  broker disconnected", style="bold red")
    text.append(f" │ drones {len(view.drones)}:")
    for state in Liveness:
        if by_liveness[state] or state is Liveness.ONLINE:
            text.append(f" {by_liveness[state]} {state}", style=_LIVENESS_STYLE[state])
    text.append(f" │ deliveries {active} active, {view.finished_count()} finished")
    text.append(" │ DLQ ")
    text.append(str(view.dlq_count), style="bold red" if view.dlq_count else "green")
    return text


def _progress(view: FleetView, batch: Batch) -> Table:
    finished = view.finished_of(batch)
    done = sum(finished.values())
    count = Text(f"{done}/{batch.total} finished", style="bold")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, width=24)
    grid.add_column(no_wrap=True, min_width=len(count))
    grid.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
    bar = ProgressBar(total=max(batch.total, 1), completed=min(done, batch.total), width=24)
    stages = ", ".join(f"{n} {stage}" for stage, n in finished.most_common())
    grid.add_row(bar, count, Text(stages, style="dim"))
    return grid


def _sorted_drones(view: FleetView, now: float) -> list[DroneView]:
    def key(drone: DroneView) -> tuple[int, int, str]:
        availability = _AVAILABILITY_ORDER.get(drone.availability, 3) if drone.availability else 3
        return (_LIVENESS_ORDER[view.liveness(drone, now)], availability, drone.drone_id)

    return sorted(view.drones.values(), key=key)


def _fleet(view: FleetView, now: float, max_rows: int) -> Table:
    table = Table(
        title="Fleet", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), expand=False
    )
    # Only job and phase may shrink (rich collapses wrappable columns first); their values
    # hold no spaces, so they are cut with an ellipsis rather than wrapped.
    table.add_column("drone", no_wrap=True, min_width=5)
    table.add_column("link", no_wrap=True, min_width=7)
    table.add_column("avail", no_wrap=True, overflow="ellipsis", min_width=4)
    table.add_column("battery", no_wrap=True, min_width=BATTERY_CELLS + 5)
    table.add_column("job", overflow="ellipsis", max_width=18)
    table.add_column("phase", overflow="ellipsis", max_width=22)
    table.add_column("ETA", no_wrap=True, justify="right", min_width=6)
    table.add_column("seen", no_wrap=True, justify="right", min_width=4)
    drones = _sorted_drones(view, now)
    for drone in drones[:max_rows]:
        liveness = view.liveness(drone, now)
        availability = (
            Text(drone.availability, style=_AVAILABILITY_STYLE[drone.availability])
            if drone.availability
            else Text("—", style="dim")
        )
        job_phase = drone.current_job_phase()
        phase = "·".join(p for p in (job_phase, drone.flight_phase) if p) or "—"
        table.add_row(
            drone.drone_id,
            Text(liveness, style=_LIVENESS_STYLE[liveness]),
            availability,
            battery_bar(drone.battery_pct),
            drone.job_id or "—",
            phase,
            duration(drone.eta_s) if drone.eta_s is not None else "—",
            ago(now - drone.last_seen) if drone.last_seen is not None else "—",
        )
    # In the caption, not a row: a long row would widen the first column.
    if len(drones) > max_rows:
        table.caption = _more(len(drones) - max_rows, "drones")
        table.caption_justify = "left"
    elif not drones:
        table.caption = Text("no drones yet", style="dim")
        table.caption_justify = "left"
    return table


def _deliveries(view: FleetView, now: float, max_rows: int) -> Table:
    table = Table(title="Deliveries", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    ids = [d.delivery_id for d in view.deliveries.values()]
    table.add_column("delivery", no_wrap=True, min_width=min(24, max(map(len, ids), default=8)))
    table.add_column("stage", no_wrap=True)
    table.add_column("drone", no_wrap=True, overflow="ellipsis")
    table.add_column("ETA", no_wrap=True)
    table.add_column("age", no_wrap=True, justify="right")
    table.add_column("note", no_wrap=True, overflow="ellipsis", ratio=1)
    active = sorted(
        (d for d in view.deliveries.values() if not d.terminal), key=lambda d: d.first_seen
    )
    finished = sorted(
        (d for d in view.deliveries.values() if d.terminal),
        key=lambda d: -(d.terminal_at or 0.0),
    )
    # Active ones first; finished ones fill what is left, but at least a few are shown.
    active_rows = min(len(active), max(max_rows - min(len(finished), 3), 1))
    finished_rows = min(len(finished), max(max_rows - active_rows, 0))
    for delivery in active[:active_rows]:
        table.add_row(*_delivery_row(delivery, now))
    if len(active) > active_rows:
        table.add_row(_more(len(active) - active_rows, "active"), end_section=True)
    elif active_rows and finished_rows:
        table.rows[-1].end_section = True
    for delivery in finished[:finished_rows]:
        table.add_row(*_delivery_row(delivery, now))
    if len(finished) > finished_rows:
        table.add_row(_more(len(finished) - finished_rows, "finished"))
    if not view.deliveries:
        table.caption = Text("no deliveries yet", style="dim")
        table.caption_justify = "left"
    return table


def _delivery_row(delivery: DeliveryView, now: float) -> tuple[Text | str, ...]:
    # The ETA is the producer's clock time (simulated under `murmur up`), so it is shown as
    # a time of day rather than compared with the console's clock.
    eta = delivery.eta.strftime("%H:%M:%S") if delivery.eta and not delivery.terminal else "—"
    return (
        delivery.delivery_id,
        Text(delivery.stage, style=_STAGE_STYLE.get(delivery.stage, "")),
        delivery.drone_id or "—",
        eta,
        ago(now - delivery.first_seen),
        Text(delivery.reason or "", style="dim"),
    )


def _bottom(view: FleetView, now: float) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="ellipsis")
    grid.add_row(_map(view, now), _side(view, now))
    return grid


def _side(view: FleetView, now: float) -> Group:
    parts: list[RenderableType] = []
    rates = view.rates(now)
    rate_line = Text("events/s ", style="bold")
    if rates:
        shown = list(rates.items())[:RATES_SHOWN]
        rate_line.append("  ".join(f"{name} {rate:.1f}" for name, rate in shown))
    else:
        rate_line.append("—", style="dim")
    parts.append(rate_line)
    services = Text("services ", style="bold")
    if view.services:
        for name, service in sorted(view.services.items()):
            up = service.link is Link.ONLINE
            services.append(f"{name} ", style="")
            services.append("online " if up else "offline ", style="green" if up else "red")
    else:
        services.append("—", style="dim")
    parts.append(services)
    dlq = Text("DLQ ", style="bold")
    dlq.append(str(view.dlq_count), style="bold red" if view.dlq_count else "green")
    if view.dlq_by_component:
        dlq.append(
            " (" + ", ".join(f"{c} {n}" for c, n in view.dlq_by_component.most_common()) + ")"
        )
    if view.undecodable:
        dlq.append(f"  undecodable seen {view.undecodable}", style="yellow")
    parts.append(dlq)
    parts.append(Text("alerts", style="bold"))
    parts += _alerts(view.alerts, now)
    return Group(*parts)


def _alerts(alerts: Iterable[Alert], now: float) -> list[Text]:
    recent = list(alerts)[-ALERTS_SHOWN:]
    if not recent:
        return [Text("  none", style="dim")]
    lines = []
    for alert in reversed(recent):  # newest first
        line = Text(" ")
        line.append_text(_SEVERITY_MARK[alert.severity])
        line.append(f" {ago(now - alert.at):>3} {alert.text}")
        line.no_wrap, line.overflow = True, "ellipsis"
        lines.append(line)
    return lines


# --- the map ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mark:
    location: Location
    char: str
    style: str
    rank: int  # the higher one wins a shared cell


def _marks(view: FleetView, now: float) -> list[_Mark]:
    marks = []
    for delivery in view.deliveries.values():
        if delivery.terminal:
            continue  # the map is about what is happening
        if delivery.pickup is not None:
            marks.append(_Mark(delivery.pickup, "P", "blue", 1))
        if delivery.dropoff is not None:
            marks.append(_Mark(delivery.dropoff, "X", "magenta", 1))
    for drone in view.drones.values():
        if drone.position is not None:
            style = _LIVENESS_STYLE[view.liveness(drone, now)]
            char = "D" if drone.availability is Availability.BUSY else "d"
            marks.append(_Mark(drone.position, char, f"bold {style}", 2))
    return marks


def _map(view: FleetView, now: float) -> Group:
    marks = _marks(view, now)
    if not marks:
        return Group(Text("map: no positions yet", style="dim"))
    # Local flat projection around the mean latitude: metres east and north. Fine for a
    # fleet's area; a fleet spanning the antimeridian would be drawn across the world.
    lat0 = sum(m.location.latitude for m in marks) / len(marks)
    east_per_degree = 111_320.0 * math.cos(math.radians(lat0))
    points = [
        (m.location.longitude * east_per_degree, m.location.latitude * 110_574.0) for m in marks
    ]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    # A character cell is about twice as tall as wide: one row spans two columns' metres.
    per_column = max(
        (max(xs) - min(xs)) / (MAP_WIDTH - 1),
        (max(ys) - min(ys)) / (2 * (MAP_HEIGHT - 1)),
        MIN_METRES_PER_COLUMN,
    )
    x_mid, y_mid = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    cells: dict[tuple[int, int], _Mark] = {}
    for mark, (x, y) in zip(marks, points, strict=True):
        column = round((x - x_mid) / per_column + (MAP_WIDTH - 1) / 2)
        row = round((y_mid - y) / (2 * per_column) + (MAP_HEIGHT - 1) / 2)
        cell = (min(max(row, 0), MAP_HEIGHT - 1), min(max(column, 0), MAP_WIDTH - 1))
        held = cells.get(cell)
        if held is None or mark.rank > held.rank:
            cells[cell] = mark
        elif mark.rank == held.rank and mark.char != held.char:
            cells[cell] = _Mark(mark.location, "*", held.style, held.rank)
    lines = [Text("┌" + "─" * MAP_WIDTH + "┐", style="dim")]
    for row in range(MAP_HEIGHT):
        line = Text("│", style="dim")
        for column in range(MAP_WIDTH):
            held = cells.get((row, column))
            line.append(held.char if held else " ", style=held.style if held else "")
        line.append("│", style="dim")
        lines.append(line)
    lines.append(Text("└" + "─" * MAP_WIDTH + "┘", style="dim"))
    legend = Text("d idle/D busy drone  P pickup  X dropoff", style="dim")
    scale = Text(f"1 column ≈ {_metres(per_column)}, north up", style="dim")
    return Group(*lines, legend, scale)


def _metres(value: float) -> str:
    return f"{value / 1000:.1f} km" if value >= 1000 else f"{value:.0f} m"  # noqa: PLR2004
