"""The fleet section's Delivery service: the real one, recording the lag of every report.

A child process of `benchmarks.fleet_scale` (`python -m benchmarks.fleet_scale --broker URL
--db FILE`), in place of `murmur service delivery`: the real `DeliveryService`, whose
`_on_telemetry` first records lag = when the service handles the TelemetryReported - the
envelope's `time` (set by the agent just before it hands the message to its MQTT client; one
machine, one clock). The parent tells it on stdin `window START END` (count the reports sent in
that wall-clock window) and `report` (answer the window's counts and lag percentiles, one JSON
line).
"""

import argparse
import asyncio
import contextlib
import signal
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.processes import commands, say
from benchmarks.stats import percentile
from bus.bus import Bus
from bus.outbox import Outbox
from bus.store import open_database
from bus.transport import open_transport
from cloud.delivery.service import DeliveryService
from cloud.services import service_presence
from contracts import Envelope
from contracts.producers import service_source
from flight_model.clock import ScaledClock


class LagRecorder:
    """Lag of every telemetry report sent inside the window, and each drone's sequence span."""

    def __init__(self) -> None:
        self.window: tuple[float, float] | None = None
        self.lags = array("d")
        self.spans: dict[str, tuple[int, int]] = {}
        self.heard = 0

    def open(self, start: float, end: float) -> None:
        """Count reports sent in [start, end) (wall-clock seconds); forget earlier ones."""
        self.window = (start, end)
        self.lags = array("d")
        self.spans = {}

    def record(self, event: Envelope[Any], handled: float) -> None:
        """One TelemetryReported, handled at `handled`."""
        self.heard += 1
        sent = event.time.timestamp()
        if self.window is None or not self.window[0] <= sent < self.window[1]:
            return
        self.lags.append(handled - sent)
        if event.sequence is not None:
            drone = event.data.drone_id
            low, high = self.spans.get(drone, (event.sequence, event.sequence))
            self.spans[drone] = (min(low, event.sequence), max(high, event.sequence))

    def report(self) -> dict[str, Any]:
        """What the window saw: counts and lag percentiles in ms."""
        lags = sorted(self.lags)
        return {
            "received": len(lags),
            # Reports the drones numbered inside the window, lost ones included.
            "sent": sum(high - low + 1 for low, high in self.spans.values()),
            "drones_heard": len(self.spans),
            "heard_total": self.heard,
            **{f"lag_{name}_ms": _ms(percentile(lags, q)) for name, q in _QUANTILES},
        }


_QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 1)


class LagDeliveryService(DeliveryService):
    """The real Delivery service; its telemetry handler records lag before doing its work."""

    def __init__(self, bus: Bus, clock: ScaledClock, recorder: LagRecorder) -> None:
        self.recorder = recorder
        super().__init__(bus, clock)  # routes TelemetryReported to self._on_telemetry

    def _on_telemetry(self, event: Envelope[Any], out: Outbox) -> None:
        self.recorder.record(event, time.time())
        super()._on_telemetry(event, out)


async def _obey(recorder: LagRecorder) -> None:
    """Obey the parent on stdin: `window START END`, `report`; return at end of input."""
    async for line in commands():
        command, *args = line.split() or [""]
        if command == "window":
            recorder.open(float(args[0]), float(args[1]))
        elif command == "report":
            say(recorder.report())


async def serve_delivery(broker: str, db: Path) -> None:
    """`murmur service delivery`, with the lag-recording handler, until stdin closes or SIGTERM."""
    # Wired by hand as cloud.services.build_service wires the Delivery service, because the
    # measurement is in the service's own telemetry handler: build_service builds the stock one.
    bus = Bus(
        component="delivery",
        transport=open_transport(broker),
        db=open_database(db),
        client_id="murmur-delivery",
        source=service_source("delivery"),
        presence=service_presence("delivery"),
    )
    recorder = LagRecorder()
    service = LagDeliveryService(bus, ScaledClock(1.0), recorder)
    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, main.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        async with asyncio.TaskGroup() as tasks:
            serving = tasks.create_task(service.run(), name="delivery")
            await _obey(recorder)
            serving.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    """The instrumented Delivery service, a child process of `measure` (run `murmur bench`)."""
    child = argparse.ArgumentParser(prog="python -m benchmarks.fleet_scale")
    child.add_argument("--broker", required=True)
    child.add_argument("--db", type=Path, required=True)
    args = child.parse_args(argv)
    args.db.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve_delivery(args.broker, args.db))
    return 0
