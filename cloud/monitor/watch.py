"""Subscribe, fold, draw: the console's only I/O.

A plain MQTT client with a clean session: the console owns nothing and publishes nothing,
so a restart starts from the retained snapshots again.
"""

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable

import aiomqtt
from rich.console import Console
from rich.live import Live

from bus.url import BrokerUrl
from cloud.monitor.render import DEFAULT_MAX_ROWS, render
from cloud.monitor.view import DEFAULT_STALE_AFTER_S, Batch, FleetView
from contracts import DEFAULT_ROOT, DecodeError, decode
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
from contracts.topics import filter_matches, to_filter

# The retained replay has no end marker in MQTT 3.1.1: it is over once no retained message
# came for SETTLE_QUIET_S, or at SETTLE_MAX_S whatever happens.
SETTLE_QUIET_S = 0.5
SETTLE_MAX_S = 3.0
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 5.0
CONNECT_TIMEOUT_S = 10.0
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
_ids = itertools.count()


def subscriptions(root: str = DEFAULT_ROOT) -> list[str]:
    """The topic filters the console subscribes to under `root`."""
    return list(dict.fromkeys(to_filter(cls.topic, root=root) for cls in WATCHED))


async def watch(
    url: BrokerUrl | str,
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
        url: the broker.
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
        aiomqtt.MqttError: with `once`, when the broker cannot be reached. Live, the console
            reconnects with backoff instead and says so in its alerts.
    """
    if refresh_hz <= 0:
        raise ValueError(f"refresh_hz must be positive, got {refresh_hz}")
    parsed = url if isinstance(url, BrokerUrl) else BrokerUrl.parse(url)
    view = FleetView(stale_after_s=stale_after_s)
    if once:
        await _snapshot(parsed, root, view, quiet_s=settle_s, max_s=settle_max_s)
        console.print(render(view, time.monotonic(), batch=batch))
        return view
    # The frame is drawn from this task only (no auto-refresh thread): the view is mutated by
    # the feed task on the same loop, never while a frame is being built.
    with Live(console=console, auto_refresh=False, transient=False) as live:
        feed = asyncio.create_task(_follow(parsed, root, view), name="monitor-feed")
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


@contextlib.asynccontextmanager
async def _subscribed(url: BrokerUrl, root: str) -> AsyncIterator[aiomqtt.Client]:
    client_id = f"murmur-monitor-{uuid.uuid4().hex[:8]}-{next(_ids)}"
    async with url.client(client_id, clean_session=True, timeout=CONNECT_TIMEOUT_S) as client:
        # One SUBSCRIBE for all filters: the replay of each starts after the one SUBACK.
        await client.subscribe([(f, 1) for f in subscriptions(root)])
        yield client


async def _feed(
    client: aiomqtt.Client, root: str, view: FleetView, on_retained: Callable[[], None]
) -> None:
    """Fold every message on our filters into the view, until the connection ends."""
    filters = subscriptions(root)
    async for message in client.messages:
        topic = str(message.topic)
        # amqtt also replays retained topics matching other clients' filters on connect.
        if not any(filter_matches(f, topic) for f in filters):
            continue
        payload = message.payload
        raw = payload if isinstance(payload, bytes) else str(payload or "").encode()
        now = time.monotonic()
        try:
            envelope = decode(topic, raw, root=root)
        except DecodeError:
            view.note_undecodable(now)
            continue
        view.apply(envelope, now, retained=message.retain)
        if message.retain:
            on_retained()


async def _snapshot(
    url: BrokerUrl, root: str, view: FleetView, *, quiet_s: float, max_s: float
) -> None:
    """Fold the retained replay and live traffic until the replay has settled."""
    heard = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with _subscribed(url, root) as client:
        view.note_connection(time.monotonic(), connected=True)
        feed = asyncio.create_task(_feed(client, root, view, heard.set))
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


async def _follow(url: BrokerUrl, root: str, view: FleetView) -> None:
    """Keep the view fed; reconnect with backoff when the broker goes away."""
    backoff = RECONNECT_MIN_S
    while True:
        try:
            async with _subscribed(url, root) as client:
                view.note_connection(time.monotonic(), connected=True)
                backoff = RECONNECT_MIN_S
                await _feed(client, root, view, lambda: None)
        except aiomqtt.MqttError as exc:
            view.note_connection(time.monotonic(), connected=False, detail=str(exc))
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, RECONNECT_MAX_S)
