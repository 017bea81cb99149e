"""The benchmarks' child processes: started one way, spoken to in JSON lines, stopped in time.

The parent's side: `spawn` starts `python ARGS` from the repository, with this shell's
`MURMUR_*` settings removed (a child is configured by its arguments alone) and its stderr in
`<workdir>/<name>.log`; `Child` sends it lines, reads its JSON answers and stops it with a
bounded wait, then SIGKILL. `workers` starts several JSON-line workers and waits until each
says it is ready. The child's side: `commands` reads the parent's lines, `say` answers one.

Used by the choreography rig (its service and fleet workers), the fleet-scale section and the
storms (`murmur service`, `murmur sim`), and the chaos run (tests/chaos.py).
"""

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil  # type: ignore[import-untyped]  # no stubs in the venv; amqtt brings psutil

from bus.url import BrokerUrl

REPO = Path(__file__).resolve().parents[1]


def url_arg(url: BrokerUrl) -> str:
    """`url` with its password, for a child's broker argument (loopback, benchmark logins)."""
    auth = ""
    if url.username:
        password = f":{quote(url.password, safe='')}" if url.password else ""
        auth = f"{quote(url.username, safe='')}{password}@"
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{'mqtts' if url.tls else 'mqtt'}://{auth}{host}:{url.port}"


@dataclass
class Child:
    """One subprocess of a benchmark, with its psutil handle and log file."""

    name: str
    process: asyncio.subprocess.Process
    ps: psutil.Process
    log: Path

    def alive(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, lines: int = 10) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def send(self, line: str) -> None:
        """One line to the child's stdin (spawned `piped`)."""
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        await self.process.stdin.drain()

    async def read_json(self) -> dict[str, Any]:
        """The child's next JSON line on stdout (spawned `piped`).

        Raises:
            RuntimeError: The child closed its stdout (it exited); with the end of its log.
        """
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            msg = f"{self.name} (pid {self.process.pid}) exited: {self.log_tail()}"
            raise RuntimeError(msg)
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stop(self, grace_s: float, sig: signal.Signals | None = signal.SIGTERM) -> None:
        """Close its stdin, send `sig`, and SIGKILL it if it has not exited after `grace_s`.

        SIGTERM: agents and services say goodbye on the bus. None: closing stdin is the signal
        (the JSON-line workers stop on the end of their input).
        """
        if self.process.stdin is not None:
            self.process.stdin.close()
        if sig is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
        try:
            async with asyncio.timeout(grace_s):
                await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MURMUR_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


async def spawn(name: str, args: Sequence[str], workdir: Path, *, piped: bool = False) -> Child:
    """`python ARGS` from the repository; stdin and stdout are pipes if `piped`."""
    log = workdir / f"{name}.log"
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            cwd=REPO,
            env=_child_env(),
            stdin=asyncio.subprocess.PIPE if piped else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if piped else asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    return Child(name, process, psutil.Process(process.pid), log)


async def stop_all(
    children: Iterable[Child], grace_s: float, sig: signal.Signals | None = signal.SIGTERM
) -> None:
    """Stop every child at once, each within `grace_s` (see `Child.stop`)."""
    await asyncio.gather(*(child.stop(grace_s, sig) for child in children))


@contextlib.asynccontextmanager
async def workers(
    commands_of: Mapping[str, Sequence[str]], workdir: Path, *, ready_within_s: float
) -> AsyncIterator[dict[str, Child]]:
    """JSON-line workers (name -> arguments), each ready, for the block; stopped after it.

    A worker says `{"ready": true}` once it is up, and stops when its stdin closes.

    Raises:
        TimeoutError: Not every worker was ready within `ready_within_s`.
        RuntimeError: A worker exited before it was ready.
    """
    children: dict[str, Child] = {}
    try:
        for name, args in commands_of.items():
            children[name] = await spawn(name, args, workdir, piped=True)
        async with asyncio.timeout(ready_within_s):
            for child in children.values():
                await child.read_json()  # {"ready": true}
        yield children
    finally:
        await stop_all(children.values(), 10, sig=None)


# --- the child's side ----------------------------------------------------------------------------


async def commands() -> AsyncIterator[str]:
    """The parent's lines on stdin, stripped, until it closes stdin."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        yield line.decode().strip()


def say(message: dict[str, Any]) -> None:
    """One JSON line to the parent, on stdout."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
