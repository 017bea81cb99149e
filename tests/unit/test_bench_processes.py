"""The benchmarks' one process runner: a clean environment, JSON lines, a bounded stop."""

import asyncio
import signal
import time
from pathlib import Path

import pytest

from benchmarks.processes import spawn, workers

ECHO = """
import json, os, sys
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    murmur = sorted(k for k in os.environ if k.startswith("MURMUR_"))
    print(json.dumps({"got": line.strip(), "murmur": murmur}), flush=True)
"""
STUBBORN = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("up", file=sys.stderr, flush=True)
time.sleep(60)
"""


async def test_a_worker_answers_in_json_lines_without_the_shells_murmur_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MURMUR_BROKER", "mqtt://elsewhere:1883")

    async with workers({"echo": ["-c", ECHO]}, tmp_path, ready_within_s=30) as children:
        await children["echo"].send("stats")
        answer = await children["echo"].read_json()

    assert answer == {"got": "stats", "murmur": []}
    assert not children["echo"].alive()  # stopped when its stdin closed


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    child = await spawn("stubborn", ["-c", STUBBORN], tmp_path)
    for _ in range(100):  # until it has set its handler
        if "up" in child.log_tail():
            break
        await asyncio.sleep(0.05)

    started = time.monotonic()
    await child.stop(0.5)

    assert child.process.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


async def test_reading_from_a_child_that_exited_says_so_with_its_log(tmp_path: Path) -> None:
    code = "import sys; print('no broker', file=sys.stderr)"
    child = await spawn("short", ["-c", code], tmp_path, piped=True)

    with pytest.raises(RuntimeError, match="no broker"):
        await child.read_json()
    await child.stop(5)
