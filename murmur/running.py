"""How a command runs and ends: signals, broker errors, exit codes, problems on stderr."""

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

INVALID = 2  # a setting to fix: every problem was printed
FAILED = 1
INTERRUPTED = 130  # the shell's exit code for a process ended by Ctrl-C


def problems_reported(command: str, problems: Sequence[str]) -> int:
    """Print each problem naming the command; the exit code for invalid settings."""
    for problem in problems:
        print(f"murmur {command}: {problem}", file=sys.stderr)
    return INVALID


def run_until_signalled(main: Coroutine[Any, Any, None]) -> None:
    """Run `main`; SIGINT or SIGTERM cancels it, so it can say goodbye on the bus."""

    async def runner() -> None:
        task = asyncio.create_task(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(runner())


def run_against_broker(command: str, main: Coroutine[Any, Any, int]) -> int:
    """Run a command that talks to the broker and ends; its exit code.

    A broker that cannot be reached or refuses us, and a `--timeout` that ran out, end the
    command with a message instead of a traceback.
    """
    from bus.errors import TransportError  # noqa: PLC0415 - only commands that connect need it

    try:
        return asyncio.run(main)
    except TransportError as exc:
        print(f"murmur {command}: broker unreachable or refused: {exc}", file=sys.stderr)
        return FAILED
    except TimeoutError:
        print(f"murmur {command}: no terminal stage within --timeout", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
