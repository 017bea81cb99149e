"""Subscribe, fold, draw: the console's only I/O.

A plain MQTT client with a clean session: the console owns nothing and publishes nothing,
so a restart starts from the retained snapshots again.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable

from rich.console import Console
from rich.live import Live

from bus.backoff import Backoff
from bus.client import Client, connect, stay_connected
from bus.errors import TransportError
from bus.transport import Transport
from cloud.monitor.render import DEFAULT_MAX_ROWS, render
from cloud.monitor.view import DEFAULT_STALE_AFTER_S, Batch, FleetView
from contracts import DEFAULT_ROOT
from contracts.events import (
    DeadLetter,
    DeliveryRequested,
    DeliveryStatusChanged,
    DeliveryUnassignable,
    DroneEvent,
    DroneState,
    DroneStatus,
    Event,
    JobAccepted,
    JobOffered,
    PackageRejected,
    ServiceStatus,
    TelemetryReported,
)

# The retained replay has no end marker in MQTT 3.1.1: it is over once no retained message
# came for SETTLE_QUIET_S, or at SETTLE_MAX_S whatever happens.
SETTLE_QUIET_S = 0.5
SETTLE_MAX_S = 3.0
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 5.0
# Lines of a frame besides the table rows: header, progress, two table heads, map, legend.
_FIXED_LINES = 26

# What the console reads. Job updates share one topic, so JobAccepted's template covers them.
WATCHED: tuple[type[Event], ...] = (
    DroneStatus,
    DroneState,
    TelemetryReported,
    DroneEvent,
    JobAccepted,
    JobOffered,
    DeliveryRequested,
    DeliveryStatusChanged,
    DeliveryUnassignable,
    PackageRejected,
    DeadLetter,
    ServiceStatus,
)


async def watch(
    transport: Transport,
    *,
    root: str = DEFAULT_ROOT,
    console: Console,
    once: bool = False,
    batch: Batch | None = None,
    until_done: bool = False,
    refresh_hz: float = 4.0,
    settle_s: float = SETTLE_QUIET_S,
    settle_max_s: float = SETTLE_MAX_S,
    stale_after_s: float = DEFAULT_STALE_AFTER_S,
) -> FleetView:
    """Show the live console until cancelled; with `once`, print one frame and return.

    Args:
        transport: the broker.
        root: the topic root.
        console: where to draw.
        once: collect the retained snapshot and what arrives while it settles (no retained
            message for `settle_s`, at most `settle_max_s`), print one frame, return the view.
        batch: the deliveries expected; adds a progress bar of the finished ones.
        until_done: return once every delivery of `batch` finished, after drawing it.
        refresh_hz: frames per second of the live console.
        settle_s: the quiet period that ends the retained replay (`once` only).
        settle_max_s: the longest the replay may take (`once` only).
        stale_after_s: a drone silent this long (wall time) is shown stale.

    Raises:
        ValueError: `refresh_hz` is not positive.
        TransportError: with `once`, when the broker cannot be reached. Live, the console
            reconnects with backoff instead and says so in its alerts.
    """
    if refresh_hz <= 0:
        raise ValueError(f"refresh_hz must be positive, got {refresh_hz}")
    view = FleetView(stale_after_s=stale_after_s)
    if once:
        await _snapshot(transport, root, view, quiet_s=settle_s, max_s=settle_max_s)
        console.print(render(view, time.monotonic(), batch=batch))
        return view
    # The frame is drawn from this task only (no auto-refresh thread): the view is mutated by
    # the feed task on the same loop, never while a frame is being built.
    with Live(console=console, auto_refresh=False, transient=False) as live:
        feed = asyncio.create_task(_follow(transport, root, view), name="monitor-feed")
        try:
            while not feed.done():
                rows = max(3, (console.size.height - _FIXED_LINES) // 2)
                frame = render(
                    view, time.monotonic(), batch=batch, max_rows=min(rows, DEFAULT_MAX_ROWS)
                )
                live.update(frame, refresh=True)
                if until_done and batch and sum(view.finished_of(batch).values()) >= batch.total:
                    return view
                await asyncio.sleep(1 / refresh_hz)
            feed.result()  # a bug in the feed ends the console rather than freezing it
        finally:
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed
    return view


async def _feed(client: Client, view: FleetView, on_retained: Callable[[], None]) -> None:
    """Fold every message on our filters into the view, until the connection ends."""
    async for received in client.received():
        now = time.monotonic()
        if received.envelope is None:
            view.note_undecodable(now)
            continue
        view.apply(received.envelope, now, retained=received.retained)
        if received.retained:
            on_retained()


async def _snapshot(
    transport: Transport, root: str, view: FleetView, *, quiet_s: float, max_s: float
) -> None:
    """Fold the retained replay and live traffic until the replay has settled."""
    heard = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with connect(transport, root=root, name="monitor") as client:
        await client.subscribe(*WATCHED)
        view.note_connection(time.monotonic(), connected=True)
        feed = asyncio.create_task(_feed(client, view, heard.set))
        try:
            deadline = loop.time() + max_s
            while (left := deadline - loop.time()) > 0 and not feed.done():
                heard.clear()
                try:
                    async with asyncio.timeout(min(quiet_s, left)):
                        await heard.wait()
                except TimeoutError:
                    break  # quiet for quiet_s (or out of time): the replay is over
            if feed.done():
                feed.result()  # the connection dropped: say so rather than print half
        finally:
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed


async def _follow(transport: Transport, root: str, view: FleetView) -> None:
    """Keep the view fed; reconnect with backoff when the broker goes away."""

    async def serve(client: Client) -> None:
        # One SUBSCRIBE for all filters: the replay of each starts after the one SUBACK.
        await client.subscribe(*WATCHED)
        view.note_connection(time.monotonic(), connected=True)
        await _feed(client, view, lambda: None)

    def lost(exc: TransportError) -> None:
        view.note_connection(time.monotonic(), connected=False, detail=str(exc))

    await stay_connected(
        transport,
        serve,
        on_lost=lost,
        backoff=Backoff(ceiling_s=RECONNECT_MAX_S, base_s=RECONNECT_MIN_S),
        root=root,
        name="monitor",
    )
