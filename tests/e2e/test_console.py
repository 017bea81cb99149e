"""`murmur up` in a terminal: the live console, run for real through a pseudo-terminal."""

import asyncio
import contextlib
import os
import pty
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")


async def in_a_terminal(*args: str, timeout: float = 90) -> tuple[int, str]:
    """Run `murmur ARGS` with a pty as its terminal; its exit code and what it drew (no ANSI)."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "60"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "murmur",
        *args,
        cwd=REPO,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    drawn = bytearray()
    closed = asyncio.Event()
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the terminal's last writer is gone
            chunk = b""
        if chunk:
            drawn.extend(chunk)
        else:
            loop.remove_reader(controller)
            closed.set()

    loop.add_reader(controller, readable)
    try:
        async with asyncio.timeout(timeout):
            await closed.wait()
            code = await proc.wait()
    finally:
        loop.remove_reader(controller)
        os.close(controller)
        if proc.returncode is None:
            proc.kill()
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
    return code, _ANSI.sub(b"", bytes(drawn)).decode(errors="replace")


async def test_murmur_up_in_a_terminal_draws_the_live_console_until_every_delivery_ends() -> None:
    code, screen = await in_a_terminal(
        "up", "--drones", "3", "--deliveries", "3", "--speedup", "200", "--until-idle"
    )
    assert code == 0, screen
    for drone in ("d-001", "d-002", "d-003"):
        assert drone in screen
    assert "Delivered" in screen
    assert "3/3" in screen  # the batch's progress bar, complete
    assert '"Delivered": 3' in screen  # then the summary


async def test_murmur_up_no_ui_in_a_terminal_prints_status_lines_instead() -> None:
    code, screen = await in_a_terminal(
        "up", "--drones", "2", "--deliveries", "2", "--speedup", "200", "--until-idle", "--no-ui"
    )
    assert code == 0, screen
    delivered = re.findall(r"^up-\w+-\d{5}  v\d+  Delivered", screen, flags=re.MULTILINE)
    assert len(delivered) == 2, screen
