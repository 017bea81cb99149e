"""The newest status of every delivery this process has seen, and followers of each.

Pure (no I/O): the gateway feeds it from the retained topics `deliveries/+/status`, so a GET
reads memory instead of opening a broker connection per call, and an SSE stream waits here.
"""

import asyncio
import weakref
from collections.abc import AsyncIterator

from contracts.events import DeliveryStatusChanged
from contracts.states import TERMINAL_STAGES

# What a follower's queue carries: a status, or the board closing.
_CLOSED = None


class Follower:
    """One reader of one delivery's status changes, from the current one on."""

    def __init__(self, board: "StatusBoard", delivery_id: str, after_version: int) -> None:
        self.delivery_id = delivery_id
        self._board = board
        self._last = after_version
        self._changes: asyncio.Queue[DeliveryStatusChanged | None] = asyncio.Queue()

    def offer(self, status: DeliveryStatusChanged | None) -> None:
        """Hand over a newer status (or `None`: the board is closing)."""
        self._changes.put_nowait(status)

    async def statuses(self, heartbeat_s: float) -> AsyncIterator[DeliveryStatusChanged | None]:
        """Each newer status, in version order, until a terminal stage or the board closes.

        Yields `None` after `heartbeat_s` without news, so a stream can prove it is alive.
        """
        try:
            while True:
                try:
                    async with asyncio.timeout(heartbeat_s):
                        status = await self._changes.get()
                except TimeoutError:
                    yield None
                    continue
                if status is _CLOSED:
                    return
                if status.version > self._last:
                    self._last = status.version
                    yield status
                # A terminal stage is final even if the reader has seen it already (Last-Event-ID).
                if status.stage in TERMINAL_STAGES:
                    return
        finally:
            self.close()

    def close(self) -> None:
        """Stop receiving; idempotent."""
        self._board.forget(self)


class StatusBoard:
    """Newest status per delivery (highest `version` wins) and who follows which."""

    def __init__(self) -> None:
        self._latest: dict[str, DeliveryStatusChanged] = {}
        # Weak: a stream whose response was never started must not leak its follower.
        self._followers: dict[str, weakref.WeakSet[Follower]] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._latest)

    def get(self, delivery_id: str) -> DeliveryStatusChanged | None:
        """The newest status known for this delivery."""
        return self._latest.get(delivery_id)

    def update(self, status: DeliveryStatusChanged) -> bool:
        """Keep `status` if it is newer than what we have; returns whether it was."""
        known = self._latest.get(status.delivery_id)
        # Retained replays after a reconnect and redeliveries bring old versions again.
        if known is not None and status.version <= known.version:
            return False
        self._latest[status.delivery_id] = status
        followers = self._followers.get(status.delivery_id)
        if followers is not None:
            for follower in list(followers):
                follower.offer(status)
            if not followers:  # every stream of it was garbage-collected unstarted
                del self._followers[status.delivery_id]
        return True

    def follow(self, delivery_id: str, *, after_version: int = -1) -> Follower:
        """Start following now, so nothing published after this call is missed.

        The current status (if known) comes first; versions up to `after_version` are skipped.
        """
        follower = Follower(self, delivery_id, after_version)
        if self._closed:
            follower.offer(_CLOSED)
            return follower
        self._followers.setdefault(delivery_id, weakref.WeakSet()).add(follower)
        current = self._latest.get(delivery_id)
        if current is not None:
            follower.offer(current)
        return follower

    def forget(self, follower: Follower) -> None:
        """Drop a follower (its stream ended)."""
        followers = self._followers.get(follower.delivery_id)
        if followers is None:
            return
        followers.discard(follower)
        if not followers:
            del self._followers[follower.delivery_id]

    def close(self) -> None:
        """End every stream: the process is stopping."""
        self._closed = True
        for followers in list(self._followers.values()):
            for follower in list(followers):
                follower.offer(_CLOSED)
