import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from flight_model.clock import Clock, ManualClock, ScaledClock
from tests.builders import T0


async def test_a_scaled_clock_runs_speedup_times_faster_than_real_time() -> None:
    clock = ScaledClock(speedup=1_000.0, start=T0)
    real_start = time.monotonic()
    await clock.sleep(20.0)  # 20 simulated seconds, 20 real milliseconds
    real_s = time.monotonic() - real_start
    assert clock.monotonic() >= 20.0
    assert real_s < 1.0
    assert clock.now() >= T0 + timedelta(seconds=20.0)


def test_a_scaled_clock_refuses_a_non_positive_speedup() -> None:
    with pytest.raises(ValueError, match="speedup"):
        ScaledClock(speedup=0.0)


def test_both_clocks_are_clocks() -> None:
    clocks: list[Clock] = [ScaledClock(), ManualClock()]
    assert all(c.now().tzinfo is not None for c in clocks)


def test_a_manual_clock_moves_only_when_advanced() -> None:
    clock = ManualClock(T0)
    assert (clock.monotonic(), clock.now()) == (0.0, T0)
    clock.advance(1.5)
    assert (clock.monotonic(), clock.now()) == (1.5, T0 + timedelta(seconds=1.5))


def test_a_manual_clock_never_goes_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        ManualClock().advance(-1.0)


async def test_manual_sleepers_wake_on_advance_in_deadline_order() -> None:
    clock = ManualClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in [("c", 3.0), ("a", 1.0), ("b", 2.0)]]
    await clock.wait_for_sleepers(3)
    clock.advance(2.0)
    await asyncio.gather(*tasks[1:])
    assert woke == ["a", "b"]
    assert not tasks[0].done()
    clock.advance(1.0)
    await tasks[0]
    assert woke == ["a", "b", "c"]


async def test_a_cancelled_sleeper_is_skipped() -> None:
    clock = ManualClock()
    task = asyncio.create_task(clock.sleep(1.0))
    await clock.wait_for_sleepers()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0
    clock.advance(2.0)


async def test_a_non_positive_sleep_returns_at_once() -> None:
    clock = ManualClock()
    await clock.sleep(0.0)
    assert clock.sleepers == 0


def test_clocks_anchored_on_one_epoch_agree_whenever_they_are_made() -> None:
    epoch = datetime.now(UTC) - timedelta(seconds=10)
    first = ScaledClock.anchored(100.0, epoch)
    later = ScaledClock.anchored(100.0, epoch)  # a process (re)started after the first
    # Ten real seconds after the epoch at x100: a thousand simulated seconds on both.
    assert abs((first.now() - epoch).total_seconds() - 1_000) < 5
    assert abs((later.now() - first.now()).total_seconds()) < 1
