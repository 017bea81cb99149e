"""`murmur bench`: every benchmark section against one broker in one run, raw baseline first.

Sections run one after the other against the same broker, so their figures share a machine, a
broker and a moment:

* ``raw`` — `benchmarks.raw`: paho-mqtt alone, QoS 1 throughput and round trip, with the payload
  size of our events. The baseline the others are held against.
* ``choreography`` — `benchmarks.choreography`: our services end to end, a burst and a fixed
  offered rate; it reports ``events_per_s`` and ``ratio_to_raw``.
* ``fleet`` — `benchmarks.fleet_scale`: the drone side at scale, telemetry lag and memory.

The broker: None starts the embedded amqtt broker for the run, in its own process (`murmur
broker`); ``"mosquitto"`` starts a private Mosquitto (loopback, password, persistence) in a
temporary directory; a `BrokerUrl` uses a running broker as it is.
"""

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final, Literal

from rich.console import Console
from rich.table import Table

from benchmarks import choreography, fleet_scale, raw
from benchmarks.machine import machine
from bus.client import connect
from bus.errors import TransportError
from bus.transport import open_transport
from bus.url import BrokerUrl

__all__ = [
    "MEASURES",
    "MOSQUITTO",
    "SECTIONS",
    "StartedBroker",
    "Target",
    "main",
    "run",
    "started_broker",
    "table",
]

_log = logging.getLogger(__name__)

MOSQUITTO: Final = "mosquitto"
Target = BrokerUrl | Literal["mosquitto"] | None
"""Where to run: a running broker, a private Mosquitto started for the run, or None (embedded)."""

# Each section's `measure(url, *, quick, ...)`: a coroutine function is awaited on this loop, a
# plain (blocking) one runs in a thread, so that this loop's own clients keep running.
MEASURES: dict[str, Callable[..., Any]] = {
    "raw": raw.measure,
    "choreography": choreography.measure,
    "fleet": fleet_scale.measure,
}
SECTIONS = tuple(MEASURES)
_SYS_VERSION_TOPIC = "$SYS/broker/version"
_PROBE_TIMEOUT_S = 2.0
_BROKER_START_S = 15.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StartedBroker:
    """A broker for a run: where, what kind, which version (when it says)."""

    url: BrokerUrl
    kind: str
    version: str | None


async def run(
    url: Target,
    *,
    quick: bool,
    only: set[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the sections in order against one broker.

    Args:
        url: The broker (see `Target`).
        quick: Small counts, a smoke run of seconds; else the full run.
        only: Run just these sections (names from `SECTIONS`); None runs all. Without ``raw``
            the choreography section gets ``raw=None`` and has no baseline to compare with.
        progress: Told, in words, when each section starts and ends.

    Returns:
        JSON-able results: ``machine`` (CPUs, Python, platform, broker kind and version),
        ``started`` (ISO 8601, UTC), ``quick``, ``broker`` (the URL without its password),
        ``sections`` (name to that section's figures; ``{"error": ...}`` for one that failed),
        ``section_elapsed_s`` and ``elapsed_s``.

    Raises:
        ValueError: `only` names an unknown section.
        broker.mosquitto.MosquittoError: ``"mosquitto"`` was asked for and cannot start.
    """
    unknown = sorted((only or set()) - set(SECTIONS))
    if unknown:
        msg = f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}"
        raise ValueError(msg)
    tell = progress or (lambda _: None)
    started = datetime.now(UTC)
    clock = time.perf_counter()
    sections: dict[str, dict[str, Any]] = {}
    elapsed: dict[str, float] = {}
    async with started_broker(url) as broker:
        for name in SECTIONS:
            if only is not None and name not in only:
                continue
            tell(f"{name}: running against {broker.url}")
            section_clock = time.perf_counter()
            sections[name] = await _section(
                name, broker.url, quick=quick, baseline=sections.get("raw")
            )
            elapsed[name] = round(time.perf_counter() - section_clock, 1)
            tell(f"{name}: done in {elapsed[name]:g} s")
    return {
        "machine": _machine(broker),
        "started": started.isoformat(timespec="seconds"),
        "quick": quick,
        "broker": str(broker.url),
        "sections": sections,
        "section_elapsed_s": elapsed,
        "elapsed_s": round(time.perf_counter() - clock, 1),
    }


@contextlib.asynccontextmanager
async def started_broker(url: Target) -> AsyncIterator[StartedBroker]:
    """The broker for the run, started here unless `url` is a running one."""
    if url is None:
        # In its own process, as `murmur broker` runs it: in this one it would share an event
        # loop with the benchmark's own clients and count their work as the broker's.
        async with _embedded_broker() as embedded:
            yield StartedBroker(embedded, "amqtt (embedded, `murmur broker`)", version("amqtt"))
    elif isinstance(url, BrokerUrl):
        yield StartedBroker(url, "given URL", await _sys_version(url))
    else:
        from broker.mosquitto import Mosquitto  # noqa: PLC0415

        user, password = "bench", secrets.token_urlsafe(16)
        with tempfile.TemporaryDirectory(prefix="murmur-bench-") as workdir:
            async with Mosquitto(Path(workdir), users={user: password}) as mosquitto:
                broker_url = BrokerUrl(mosquitto.host, mosquitto.port, user, password)
                yield StartedBroker(
                    broker_url, "mosquitto (private, this machine)", await _sys_version(broker_url)
                )


@contextlib.asynccontextmanager
async def _embedded_broker() -> AsyncIterator[BrokerUrl]:
    """`murmur broker` on a free loopback port, in dev mode (any client with a username)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "murmur", "broker", "--host", "127.0.0.1", "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with asyncio.timeout(_BROKER_START_S):
            while True:  # until it listens (bounded by the timeout)
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        yield BrokerUrl("127.0.0.1", port)
    finally:
        process.terminate()
        await process.wait()


async def _sys_version(url: BrokerUrl) -> str | None:
    """The broker's own version string, where it publishes one (Mosquitto does; amqtt not)."""
    try:
        async with (
            asyncio.timeout(_PROBE_TIMEOUT_S),
            connect(open_transport(url), name="bench-probe") as client,
        ):
            await client.subscribe(_SYS_VERSION_TOPIC)
            async for received in client.received():
                return received.payload.decode(errors="replace")
    except (TimeoutError, TransportError):
        return None
    return None  # pragma: no cover - the message loop only ends by returning or timing out


async def _section(
    name: str, url: BrokerUrl, *, quick: bool, baseline: dict[str, Any] | None
) -> dict[str, Any]:
    """One section's figures; a failure is recorded, so one broken section spares the others."""
    measure = MEASURES[name]
    options: dict[str, Any] = {"quick": quick}
    if name == "choreography":
        options["raw"] = baseline
    try:
        if inspect.iscoroutinefunction(measure):
            result = await measure(url, **options)
        else:
            result = await asyncio.to_thread(measure, url, **options)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded, and the run goes on
        _log.exception("benchmark section %s failed", name)
        return {"error": f"{type(exc).__name__}: {exc}"}
    return dict(result)


def _machine(broker: StartedBroker) -> dict[str, Any]:
    return {**machine(), "broker_kind": broker.kind, "broker_version": broker.version}


# --- the table ---------------------------------------------------------------------------------

Row = tuple[str, str, str]  # figure, value, versus the raw baseline


def table(results: Mapping[str, Any]) -> Table:
    """The key figures of every section in one table: section, figure, value, vs raw.

    Args:
        results: What `run` returned (or the same read back from its JSON).

    Returns:
        A rich table; print it with a `rich.console.Console`. Every figure is in the JSON.
    """
    machine = results.get("machine", {})
    broker = " ".join(
        part for part in (machine.get("broker_kind"), machine.get("broker_version")) if part
    )
    title = (
        f"murmur bench ({'quick' if results.get('quick') else 'full'}) on {broker or 'a broker'}"
        f", {machine.get('cpus', '?')} CPUs, Python {machine.get('python', '?')}"
    )
    out = Table(title=title, title_justify="left")
    out.add_column("section", no_wrap=True)
    out.add_column("figure")
    out.add_column("value", justify="right", no_wrap=True)
    out.add_column("vs raw", justify="right", no_wrap=True)
    rows = {"raw": _raw_rows, "choreography": _choreography_rows, "fleet": _fleet_rows}
    for name, section in results.get("sections", {}).items():
        lines = [("error", str(section["error"]), "")] if "error" in section else []
        for i, (figure, value, versus) in enumerate(lines or rows[name](section)):
            out.add_row(name if i == 0 else "", figure, value, versus, end_section=False)
        out.add_section()
    elapsed = results.get("elapsed_s")
    if elapsed is not None:
        out.caption = f"{elapsed:g} s in all; every figure is in the JSON (--json FILE)"
    return out


def _raw_rows(section: Mapping[str, Any]) -> Iterator[Row]:
    rtt = section["rtt_ms"]
    yield "paho QoS 1 throughput", f"{_number(section['throughput_msg_s'])} msg/s", "1.00x"
    yield "round trip p50 / p99", f"{_number(rtt['p50'])} / {_number(rtt['p99'])} ms", ""
    yield "messages x payload", f"{section['messages']:,} x {section['payload_bytes']} B", ""


def _choreography_rows(section: Mapping[str, Any]) -> Iterator[Row]:
    burst, latency = section["throughput"], section["latency"]
    if "error" in burst:
        yield f"burst failed: {burst['error']}", "", ""
    else:
        head = f"burst of {burst['deliveries']}"
        yield f"{head} -> DroneAssigned", f"{_number(burst['assigned_per_s'])} /s", ""
        yield f"{head} -> Delivered", f"{_number(burst['delivered_per_s'])} /s", ""
        ratio = burst.get("ratio_to_raw")
        versus = f"{ratio:.2f}x" if isinstance(ratio, int | float) else ""
        yield "events the services handled", f"{_number(burst['events_per_s'])} /s", versus
    if "error" in latency:
        yield f"latency failed: {latency['error']}", "", ""
        return
    fixed = latency["fixed_rate"]
    spans = fixed["request_to_assigned"]
    yield (
        f"{fixed['rate_per_s']:g}/s: request -> assigned p50/p99",
        f"{_number(spans['p50_ms'])} / {_number(spans['p99_ms'])} ms",
        "",
    )
    best = latency.get("highest_sustainable_rate_per_s")
    yield f"highest rate, p99 < {_number(latency['p99_limit_ms'])} ms", f"{_number(best)} /s", ""


def _fleet_rows(section: Mapping[str, Any]) -> Iterator[Row]:
    yield "telemetry", "1 Hz per drone", ""
    for step in section["steps"]:
        verdict = "" if step["ok"] else " (over)"
        yield (
            f"{step['drones']:,} drones, lag p50 / p99{verdict}",
            f"{_number(step['lag_p50_ms'])} / {_number(step['lag_p99_ms'])} ms",
            "",
        )
    yield "largest fleet within limits", f"{_number(section['largest_ok'])} drones", ""
    yield "memory per drone", f"{_number(section['steps'][-1]['fleet_rss_mib_per_drone'])} MiB", ""


def _number(value: Any) -> str:  # noqa: ANN401 - any JSON figure
    if value is None:
        return "—"
    if isinstance(value, int) or abs(value) >= 1000:  # noqa: PLR2004 - past here decimals are noise
        return f"{value:,.0f}"
    return f"{value:.3g}"


# --- entry points --------------------------------------------------------------------------------


async def main(url: Target, *, quick: bool, json_path: Path | None, only: set[str] | None) -> int:
    """Run, print the table, write the JSON when asked.

    Args:
        url: The broker (see `Target`).
        quick: Small counts (seconds) instead of the full run (minutes).
        json_path: Where to write the results as JSON, or None.
        only: Sections to run; None runs all.

    Returns:
        0; 1 if a section failed (its error is in the table and the JSON) or the broker could
        not start; 2 for an unknown section.
    """
    from broker.mosquitto import MosquittoError  # noqa: PLC0415 - lazy like the brokers above

    console = Console()
    errors = Console(stderr=True)
    try:
        results = await run(
            url, quick=quick, only=only, progress=lambda line: errors.print(line, style="dim")
        )
    except ValueError as exc:
        errors.print(f"murmur bench: {exc}")
        return 2
    except MosquittoError as exc:
        errors.print(f"murmur bench: {exc}")
        return 1
    if json_path is not None:  # first: the figures are kept whatever happens to the table
        text = json.dumps(results, indent=2) + "\n"
        await asyncio.to_thread(json_path.write_text, text, encoding="utf-8")
    console.print(table(results))
    if json_path is not None:
        console.print(f"results written to {json_path}")
    return 1 if _failed(results["sections"]) else 0


def _failed(value: Any) -> bool:  # noqa: ANN401 - any JSON
    """Whether a section, or a part of one, recorded an error."""
    if not isinstance(value, Mapping):
        return False
    return "error" in value or any(_failed(item) for item in value.values())
