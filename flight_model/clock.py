"""Simulated time: a clock the simulator, the agent and the tests all read.

Every timer and timestamp in a simulated world reads one `Clock`, so a fleet can fly faster than
real time (`ScaledClock`, like ArduPilot's `SIM_SPEEDUP`) or only when a test says so
(`ManualClock`).
"""

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """What simulated code may ask of time."""

    speedup: float
    """How many simulated seconds pass per real second (nominal for a `ManualClock`)."""

    def now(self) -> datetime:
        """Simulated wall time, aware and in UTC."""
        ...

    def monotonic(self) -> float:
        """Simulated seconds since the clock was made."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of simulated time."""
        ...


class ScaledClock:
    """Simulated time running `speedup` times faster than the real monotonic clock.

    Args:
        speedup: simulated seconds per real second; 1.0 is real time.
        start: simulated wall time at creation; the real wall time when omitted.
    """

    def __init__(self, speedup: float = 1.0, *, start: datetime | None = None) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup must be positive, got {speedup}")
        self.speedup = speedup
        self._start = start if start is not None else datetime.now(UTC)
        self._origin = time.monotonic()

    @classmethod
    def anchored(cls, speedup: float, epoch: datetime | None) -> "ScaledClock":
        """A clock on which simulated and real time coincided at `epoch`.

        Every process given the same epoch reads the same simulated time, whenever it starts:
        the processes of one simulated run agree, and one restarted mid-run carries on where it
        was instead of going back to the real time. None: the epoch is now (a fresh clock).
        """
        if epoch is None:
            return cls(speedup)
        elapsed = datetime.now(UTC) - epoch
        return cls(speedup, start=epoch + elapsed * speedup)

    def now(self) -> datetime:
        """Simulated wall time: the start plus the simulated seconds elapsed."""
        return self._start + timedelta(seconds=self.monotonic())

    def monotonic(self) -> float:
        """Simulated seconds since creation."""
        return (time.monotonic() - self._origin) * self.speedup

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of simulated time, that is `seconds / speedup` real seconds."""
        await asyncio.sleep(max(0.0, seconds) / self.speedup)


class ManualClock:
    """Simulated time that moves only when `advance` is called: for deterministic tests.

    Sleepers wait on futures, woken by `advance` in deadline order (ties in call order),
    so nothing polls and no real time passes.
    """

    speedup = 1.0
    """Nominal only: a manual clock has no real-time rate, so real timeouts stay unscaled."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start if start is not None else _EPOCH
        self._seconds = 0.0
        self._order = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._watchers: list[tuple[int, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        """Simulated wall time: the start plus every second advanced so far."""
        return self._start + timedelta(seconds=self._seconds)

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        return self._seconds

    @property
    def sleepers(self) -> int:
        """How many `sleep` calls are waiting right now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by `seconds`; a non-positive wait only yields."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._seconds + seconds, next(self._order), future))
        self._notify_watchers()
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake, in deadline order, every sleeper now due."""
        if seconds < 0:
            raise ValueError(f"time cannot go backwards, got {seconds}")
        self._seconds += seconds
        while self._sleepers and self._sleepers[0][0] <= self._seconds:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():  # a cancelled sleeper has already gone
                future.set_result(None)

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Wait until at least `count` tasks are asleep on this clock, so a test can advance it.

        Waking a sleeper does not run it; this lets a test wait for the loop under test to come
        back to its `sleep` before advancing again, without polling.
        """
        if self.sleepers >= count:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watchers.append((count, future))
        await future

    def _notify_watchers(self) -> None:
        waiting = self.sleepers
        still: list[tuple[int, asyncio.Future[None]]] = []
        for count, future in self._watchers:
            if future.done():
                continue
            if waiting >= count:
                future.set_result(None)
            else:
                still.append((count, future))
        self._watchers = still
