"""What the benchmarks' client sees: one instrument, fed raw messages as they arrive.

`Watch.see` takes each message of `benchmarks.instrument` (topic, payload, arrival time) and
records what the sections need, from the topic and plain JSON, never decoding an event with
pydantic: the instrument must not be what lags. Fed from the client's reading task, with no
queue between. What it records, each from the messages subscribed to:

- per delivery, when it was first seen offered to a drone, accepted, assigned and delivered
  (`JobOffered`, `JobAccepted`, `DroneAssigned`, `DeliveryStatusChanged`);
- for the deliveries in `wanted`, the latest status (version, stage, reason) and which are
  terminal;
- the drones reporting telemetry (`TelemetryReported`);
- each drone's and service's latest link (`DroneStatus`, `ServiceStatus`) with its envelope's
  time, so that a birth from before a step can be told from a fresh one.

`until(done, timeout_s)` waits for a condition on what was seen.
"""

import asyncio
import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.states import TERMINAL_STAGES

_TERMINAL = frozenset(stage.value for stage in TERMINAL_STAGES)
_RECHECK_S = 1.0  # `until` also looks again this often: not every condition is a message


@dataclass
class Watch:
    """What the client saw; see the module's docstring."""

    # When each delivery was first seen at each hop (the arrival time the instrument gives).
    offered_at: dict[str, float] = field(default_factory=dict)
    accepted_at: dict[str, float] = field(default_factory=dict)
    assigned_at: dict[str, float] = field(default_factory=dict)
    delivered_at: dict[str, float] = field(default_factory=dict)
    # The deliveries whose every status counts: their latest (version, stage, reason).
    wanted: set[str] = field(default_factory=set)
    latest: dict[str, tuple[int, str, str | None]] = field(default_factory=dict)
    terminal: set[str] = field(default_factory=set)
    telemetry_from: set[str] = field(default_factory=set)
    # Latest retained link of each drone and service, and its envelope's time (epoch seconds).
    drone_links: dict[str, tuple[str, float]] = field(default_factory=dict)
    service_links: dict[str, tuple[str, float]] = field(default_factory=dict)
    trace: dict[str, dict[str, float]] | None = None  # BENCH_DEBUG: job traffic per delivery
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def see(self, topic: str, payload: bytes, now: float) -> None:
        """Record one message; one that is not what its topic says is skipped.

        An exception here would end the client's reading task, and the watch with it.
        """
        levels = topic.split("/")
        if len(levels) < 3:  # noqa: PLR2004 - every event topic is entity/id/kind or deeper
            return
        entity, subject, kind = levels[-3:]
        if kind == "telemetry":
            if subject not in self.telemetry_from:
                self.telemetry_from.add(subject)
                self.changed.set()
            return
        try:
            if entity == "jobs":
                self._job(kind, payload, now)
            elif entity == "deliveries":
                self._delivery(subject, kind, payload, now)
            elif kind == "status" and entity in {"drones", "services"}:
                self._link(entity, payload)
        except (ValueError, KeyError, TypeError):
            return
        self.changed.set()

    def drones_online(self, since: float = -math.inf) -> int:
        """Drones whose latest status says online, sent at or after `since` (epoch s)."""
        return _online(self.drone_links, since)

    def services_online(self, since: float = -math.inf) -> int:
        """Services whose latest status says online, sent at or after `since` (epoch s)."""
        return _online(self.service_links, since)

    async def until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until `done()`, checked on every message and each second; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not done():
            left = deadline - loop.time()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, _RECHECK_S)):
                    await self.changed.wait()
        return True

    def _job(self, kind: str, payload: bytes, now: float) -> None:
        if self.trace is None and kind == "update" and b"job.accepted" not in payload:
            return  # progress of a flight: not needed unless tracing
        data = json.loads(payload)["data"]
        delivery_id = data["delivery_id"]
        if kind == "offer":
            self.offered_at.setdefault(delivery_id, now)
        elif b"job.accepted" in payload:
            self.accepted_at.setdefault(delivery_id, now)
        if self.trace is not None:
            self.trace.setdefault(delivery_id, {}).setdefault(data.get("phase") or kind, now)

    def _delivery(self, delivery_id: str, kind: str, payload: bytes, now: float) -> None:
        if kind == "assigned":
            self.assigned_at.setdefault(delivery_id, now)
            return
        if kind != "status":
            return
        wanted = delivery_id in self.wanted
        if not wanted and b'"Delivered"' not in payload:
            return  # decoded only when it is wanted or may say Delivered
        data = json.loads(payload)["data"]
        if data["stage"] == "Delivered":
            self.delivered_at.setdefault(delivery_id, now)
        if wanted:
            self._status(delivery_id, data)

    def _status(self, delivery_id: str, data: dict[str, Any]) -> None:
        known = self.latest.get(delivery_id)
        if known is not None and known[0] >= data["version"]:
            return
        self.latest[delivery_id] = (data["version"], data["stage"], data.get("reason"))
        if data["stage"] in _TERMINAL:
            self.terminal.add(delivery_id)

    def _link(self, entity: str, payload: bytes) -> None:
        envelope = json.loads(payload)
        data = envelope["data"]
        sent = datetime.fromisoformat(envelope["time"]).timestamp()
        if entity == "drones":
            self.drone_links[data["drone_id"]] = (data["link"], sent)
        else:
            self.service_links[data["service"]] = (data["link"], sent)


def _online(links: dict[str, tuple[str, float]], since: float) -> int:
    return sum(link == "online" and sent >= since for link, sent in links.values())
