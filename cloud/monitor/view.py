"""What the console knows: decoded events folded into fleet, delivery and alert state.

Pure: no I/O and no clock. Every fold takes `now`, seconds on any monotonic scale (the
watcher passes `time.monotonic()`), so tests script time. Times kept here are receive
times on that scale, never the producers' `time` attribute: under `murmur up` producers
stamp simulated time, which runs many times faster than the console's.

One fold of every event the console shows, with the small records it folds into: past 400
lines because the records and the rules that fill them read best side by side.
"""

import math
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from contracts.envelope import Envelope
from contracts.events import (
    Availability,
    DeadLetter,
    DeliveryRequested,
    DeliveryStatusChanged,
    DeliveryUnassignable,
    DroneEvent,
    DroneEventKind,
    DroneState,
    DroneStatus,
    Event,
    JobCancellationRefused,
    JobFailed,
    JobOffered,
    JobPhase,
    JobProgressed,
    JobRejected,
    Link,
    PackageRejected,
    ServiceStatus,
    TelemetryReported,
)
from contracts.ids import Location
from contracts.states import TERMINAL_STAGES, DeliveryStage

DEFAULT_STALE_AFTER_S = 10.0
RATE_WINDOW_S = 10.0
MAX_ALERTS = 50
MAX_TERMINAL = 200
# Ids of finished deliveries remembered after their row is dropped, so a late duplicate
# status neither brings the row back nor counts twice towards the progress.
MAX_FINISHED_IDS = 100_000


class Liveness(StrEnum):
    """How the console judges a drone's link."""

    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    """How loudly an alert is shown."""

    INFO = "info"
    WARN = "warn"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Alert:
    """One line of the alert list: when it was received, how bad, what happened."""

    at: float
    severity: Severity
    text: str


@dataclass
class DroneView:
    """One drone as its retained status and state, telemetry and job updates describe it."""

    drone_id: str
    known_since: float
    link: Link | None = None
    session: int | None = None
    # Receive time of the newest live telemetry or state; retained replays do not count,
    # since a snapshot can be hours old.
    last_seen: float | None = None
    availability: Availability | None = None
    job_id: str | None = None
    job_phase: tuple[str, JobPhase] | None = None  # (job id, phase) of the last JobProgressed
    battery_pct: float | None = None
    position: Location | None = None
    flight_phase: str | None = None
    eta_s: float | None = None
    telemetry_order: tuple[int, int] | None = None  # (session, sequence) of the newest report

    def liveness(self, now: float, stale_after_s: float) -> Liveness:
        """Offline if its status says so, stale if silent too long, else online."""
        if self.link is Link.OFFLINE:
            return Liveness.OFFLINE
        reference = self.last_seen if self.last_seen is not None else self.known_since
        if now - reference > stale_after_s:
            return Liveness.STALE
        if self.link is Link.ONLINE or self.last_seen is not None:
            return Liveness.ONLINE
        return Liveness.UNKNOWN

    def current_job_phase(self) -> JobPhase | None:
        """The job phase, if it belongs to the job the drone is on now."""
        if self.job_phase is None or self.job_phase[0] != self.job_id:
            return None
        return self.job_phase[1]


@dataclass
class DeliveryView:
    """One delivery as its retained status (and its request, when seen) describe it."""

    delivery_id: str
    first_seen: float
    stage: DeliveryStage = DeliveryStage.REQUESTED
    version: int | None = None  # None: only the request was seen, no status yet
    drone_id: str | None = None
    job_id: str | None = None
    eta: datetime | None = None
    reason: str | None = None
    pickup: Location | None = None
    dropoff: Location | None = None
    last_known_location: Location | None = None
    terminal_at: float | None = None

    @property
    def terminal(self) -> bool:
        """Whether the delivery reached a stage it never leaves."""
        return self.stage in TERMINAL_STAGES


@dataclass
class ServiceView:
    """A cloud service's retained presence."""

    service: str
    link: Link
    session: int
    since: float


def family(event_type: str) -> str:
    """The rate bucket of a type: its second dotted part, telemetry on its own.

    `murmur.job.progressed.v1` -> `job`; telemetry would drown the other drone events.
    """
    parts = event_type.split(".")
    if len(parts) < 3:  # noqa: PLR2004 - murmur.<family>.<name>
        return event_type
    if parts[1:3] == ["drone", "telemetry"]:
        return "telemetry"
    return parts[1]


_EVENT_SEVERITY = {
    DroneEventKind.FAILSAFE_BATTERY: Severity.CRITICAL,
    DroneEventKind.FAILSAFE_GPS: Severity.CRITICAL,
    DroneEventKind.FAILSAFE_LINK: Severity.CRITICAL,
    DroneEventKind.FAILSAFE_MOTOR: Severity.CRITICAL,
    DroneEventKind.BATTERY_LOW: Severity.WARN,
    DroneEventKind.FC_LINK_LOST: Severity.WARN,
    DroneEventKind.FC_LINK_RESTORED: Severity.INFO,
}


@dataclass(frozen=True)
class Batch:
    """The deliveries a progress bar counts: `total` of them, ids starting with `prefix`.

    The prefix keeps a shared broker's older deliveries (retained statuses) out of the count.
    """

    total: int
    prefix: str = ""


@dataclass
class FleetView:
    """Everything the console shows, folded from events; bounded in memory.

    Drones and active deliveries are kept as long as they exist; finished deliveries only
    the newest `max_terminal`, alerts the newest `max_alerts`.
    """

    stale_after_s: float = DEFAULT_STALE_AFTER_S
    rate_window_s: float = RATE_WINDOW_S
    max_alerts: int = MAX_ALERTS
    max_terminal: int = MAX_TERMINAL
    drones: dict[str, DroneView] = field(default_factory=dict)
    deliveries: dict[str, DeliveryView] = field(default_factory=dict)
    services: dict[str, ServiceView] = field(default_factory=dict)
    alerts: deque[Alert] = field(init=False)
    dlq_count: int = 0
    dlq_by_component: Counter[str] = field(default_factory=Counter)
    events_total: int = 0
    undecodable: int = 0
    finished: Counter[DeliveryStage] = field(default_factory=Counter)
    connected: bool | None = None  # set by the watcher; None: not told
    started: float | None = None
    _finished_ids: OrderedDict[str, DeliveryStage] = field(default_factory=OrderedDict, init=False)
    _terminal_rows: OrderedDict[str, None] = field(default_factory=OrderedDict, init=False)
    _buckets: deque[tuple[int, Counter[str]]] = field(default_factory=deque, init=False)

    def __post_init__(self) -> None:
        self.alerts = deque(maxlen=self.max_alerts)

    # --- folding -------------------------------------------------------------------------

    def apply(self, envelope: Envelope[Any], now: float, *, retained: bool = False) -> None:
        """Fold one event received at `now`; `retained` if the broker replayed a snapshot.

        A replay is not news: it does not count as traffic, as a sign of life or as an alert.
        """
        self._start(now)
        self.events_total += 1
        if not retained:
            self._count(family(envelope.type), now)
        data = envelope.data
        if self._fold_drone(data, envelope.sequence, now, retained=retained):
            return
        if self._fold_delivery(data, now, retained=retained):
            return
        notice = _notice(data)
        if notice is not None:
            self.alert(now, *notice)

    def note_undecodable(self, now: float) -> None:
        """A message on a watched topic that is not a valid event (the services dead-letter it)."""
        self._start(now)
        self.undecodable += 1

    def note_connection(self, now: float, *, connected: bool, detail: str = "") -> None:
        """The watcher's broker connection came up or went down."""
        self._start(now)
        if connected is False and self.connected is not False:
            what = "lost the broker" if self.connected else "cannot reach the broker"
            self.alert(now, Severity.CRITICAL, f"monitor {what}{': ' if detail else ''}{detail}")
        self.connected = connected

    def alert(self, now: float, severity: Severity, text: str) -> None:
        """Add an alert; the oldest falls off past `max_alerts`."""
        self.alerts.append(Alert(now, severity, text))

    # --- reading -------------------------------------------------------------------------

    def liveness(self, drone: DroneView, now: float) -> Liveness:
        """A drone's link as the console judges it now."""
        return drone.liveness(now, self.stale_after_s)

    def rates(self, now: float) -> dict[str, float]:
        """Live events per second over the window, per family, highest first."""
        newest = math.floor(now)
        totals: Counter[str] = Counter()
        for second, counts in self._buckets:
            if newest - second < self.rate_window_s:
                totals.update(counts)
        # Over the time actually watched when that is shorter than the window.
        watched = now - self.started if self.started is not None else 0.0
        span = min(self.rate_window_s, max(1.0, watched))
        return {name: count / span for name, count in totals.most_common()}

    def finished_count(self) -> int:
        """How many deliveries reached a terminal stage while watched (or were seen there)."""
        return sum(self.finished.values())

    def finished_of(self, batch: "Batch") -> Counter[DeliveryStage]:
        """Finished deliveries of one batch, by stage."""
        if not batch.prefix:
            return self.finished
        return Counter(
            stage for id_, stage in self._finished_ids.items() if id_.startswith(batch.prefix)
        )

    # --- the folds -----------------------------------------------------------------------

    def _fold_drone(self, data: Event, sequence: int | None, now: float, *, retained: bool) -> bool:
        match data:
            case DroneStatus():
                self._drone_status(data, now, retained=retained)
            case DroneState():
                self._drone_state(data, now, retained=retained)
            case TelemetryReported():
                self._telemetry(data, sequence, now)
            case DroneEvent():
                self._drone_event(data, now)
            case JobProgressed():
                self._drone(data.drone_id, now).job_phase = (data.job_id, data.phase)
            case _:
                return False
        return True

    def _fold_delivery(self, data: Event, now: float, *, retained: bool) -> bool:
        match data:
            case DeliveryRequested() | JobOffered():
                self._route(data, now)
            case DeliveryStatusChanged():
                self._delivery_status(data, now, retained=retained)
            case DeadLetter():
                self.dlq_count += 1
                self.dlq_by_component[data.component] += 1
                self.alert(
                    now, Severity.WARN, f"dlq/{data.component}: {data.reason} on {data.topic_name}"
                )
            case ServiceStatus():
                self._service_status(data, now, retained=retained)
            case _:
                return False
        return True

    def _start(self, now: float) -> None:
        if self.started is None:
            self.started = now

    def _count(self, name: str, now: float) -> None:
        second = math.floor(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append((second, Counter()))
        self._buckets[-1][1][name] += 1
        while self._buckets and second - self._buckets[0][0] >= self.rate_window_s:
            self._buckets.popleft()

    def _drone(self, drone_id: str, now: float) -> DroneView:
        drone = self.drones.get(drone_id)
        if drone is None:
            drone = self.drones[drone_id] = DroneView(drone_id, known_since=now)
        return drone

    def _drone_status(self, status: DroneStatus, now: float, *, retained: bool) -> None:
        drone = self._drone(status.drone_id, now)
        # Sessions order births and wills: a late will of an old session changes nothing.
        # Within one session the will (offline) is the last word.
        rank = (status.session, status.link is Link.OFFLINE)
        if drone.session is not None and rank < (drone.session, drone.link is Link.OFFLINE):
            return
        was = drone.link
        drone.link, drone.session = status.link, status.session
        if status.link is Link.OFFLINE and was is not Link.OFFLINE and not retained:
            self.alert(now, Severity.WARN, f"{status.drone_id} went offline")

    def _drone_state(self, state: DroneState, now: float, *, retained: bool) -> None:
        drone = self._drone(state.drone_id, now)
        drone.availability = state.availability
        drone.job_id = state.job_id
        # A replay (after a reconnect) is older than telemetry already seen live.
        if not retained or drone.last_seen is None:
            drone.battery_pct = state.battery_pct
            drone.position = state.position
        if not retained:
            drone.last_seen = now

    def _telemetry(self, report: TelemetryReported, sequence: int | None, now: float) -> None:
        drone = self._drone(report.drone_id, now)
        if sequence is not None:
            # QoS 0 may arrive out of order; the sequence counts up within a session.
            order = (report.session, sequence)
            if drone.telemetry_order is not None and order <= drone.telemetry_order:
                return
            drone.telemetry_order = order
        drone.last_seen = now
        drone.position = report.position
        drone.battery_pct = report.battery_pct
        drone.flight_phase = report.phase
        drone.eta_s = report.eta_s
        drone.job_id = report.job_id

    def _drone_event(self, event: DroneEvent, now: float) -> None:
        self._drone(event.drone_id, now)
        severity = _EVENT_SEVERITY.get(event.kind)
        if severity is None:
            return  # takeoff, landed, loaded, released: the normal course of a job
        detail = f": {event.detail}" if event.detail else ""
        self.alert(now, severity, f"{event.drone_id} {event.kind}{detail}")

    def _route(self, data: DeliveryRequested | JobOffered, now: float) -> None:
        # The request is not retained, so a console started later learns the route from the
        # next job offer, if there is one.
        if data.delivery_id in self._finished_ids:
            return
        delivery = self._delivery(data.delivery_id, now)
        delivery.pickup, delivery.dropoff = data.pickup, data.dropoff

    def _delivery(self, delivery_id: str, now: float) -> DeliveryView:
        delivery = self.deliveries.get(delivery_id)
        if delivery is None:
            delivery = self.deliveries[delivery_id] = DeliveryView(delivery_id, first_seen=now)
        return delivery

    def _delivery_status(
        self, status: DeliveryStatusChanged, now: float, *, retained: bool
    ) -> None:
        if status.delivery_id in self._finished_ids:
            return  # finished: nothing changes after a terminal stage
        delivery = self._delivery(status.delivery_id, now)
        # The version grows with every change: a duplicate or a late one changes nothing.
        if delivery.version is not None and status.version <= delivery.version:
            return
        delivery.version = status.version
        delivery.stage = status.stage
        delivery.drone_id = status.drone_id
        delivery.job_id = status.job_id
        delivery.eta = status.eta
        delivery.reason = status.reason
        if status.last_known_location is not None:
            delivery.last_known_location = status.last_known_location
        if delivery.terminal:
            self._finish(delivery, now)
            if status.stage is DeliveryStage.FAILED and not retained:
                reason = f": {status.reason}" if status.reason else ""
                self.alert(now, Severity.CRITICAL, f"{status.delivery_id} failed{reason}")

    def _finish(self, delivery: DeliveryView, now: float) -> None:
        delivery.terminal_at = now
        self.finished[delivery.stage] += 1
        self._finished_ids[delivery.delivery_id] = delivery.stage
        if len(self._finished_ids) > MAX_FINISHED_IDS:
            self._finished_ids.popitem(last=False)
        self._terminal_rows[delivery.delivery_id] = None
        while len(self._terminal_rows) > self.max_terminal:
            oldest, _ = self._terminal_rows.popitem(last=False)
            del self.deliveries[oldest]

    def _service_status(self, status: ServiceStatus, now: float, *, retained: bool) -> None:
        known = self.services.get(status.service)
        rank = (status.session, status.link is Link.OFFLINE)
        if known is not None and rank < (known.session, known.link is Link.OFFLINE):
            return  # a late will of an earlier session
        if (
            status.link is Link.OFFLINE
            and not retained
            and (known is None or known.link is Link.ONLINE)
        ):
            self.alert(now, Severity.WARN, f"service {status.service} went offline")
        if known is None or known.link is not status.link or known.session != status.session:
            self.services[status.service] = ServiceView(
                status.service, status.link, status.session, since=now
            )


def _notice(data: Event) -> tuple[Severity, str] | None:
    """The alert an event that changes no state raises, if any."""
    match data:
        case JobRejected():
            detail = f" ({data.detail})" if data.detail else ""
            return (
                Severity.INFO,
                f"{data.drone_id} declined {data.delivery_id}: {data.reason}{detail}",
            )
        case JobFailed():
            where = f"package {data.package_state}"
            return (
                Severity.WARN,
                f"{data.drone_id} failed {data.delivery_id}: {data.reason} ({where})",
            )
        case JobCancellationRefused():
            return (
                Severity.INFO,
                f"{data.drone_id} refused to cancel {data.delivery_id}: {data.reason}",
            )
        case PackageRejected():
            return (
                Severity.WARN,
                f"package {data.package_id} of {data.delivery_id} rejected: {data.reason}",
            )
        case DeliveryUnassignable():
            return Severity.WARN, f"{data.delivery_id} unassignable: {data.reason}"
        case _:
            return None  # counted in the rates; nothing of it is shown
