"""Wiring: one service = its own database file, its own broker connection, its own rules.

The only module of `cloud` that knows all three services; they never import each other.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bus.bus import Bus, Presence
from bus.store import open_database
from bus.transport import Transport
from cloud.delivery.service import DeliveryService
from cloud.package.rules import PackagePolicy
from cloud.package.service import PackageService
from cloud.scheduler.service import SchedulerService, SchedulerSettings
from contracts import DEFAULT_ROOT
from contracts.events import ServiceStatus
from contracts.producers import service_source
from flight_model.clock import Clock

SERVICE_NAMES = ("package", "scheduler", "delivery")


class Service(Protocol):
    """What every service offers its runner."""

    bus: Bus

    async def run(self) -> None:
        """Serve until cancelled."""


@dataclass(frozen=True)
class CloudSettings:
    """What the services are told; each reads its own part."""

    package: PackagePolicy = field(default_factory=PackagePolicy)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)


def service_presence(name: str) -> Presence:
    """The retained status a service's bus publishes (and leaves as its last will)."""
    return lambda link, session: ServiceStatus(service=name, link=link, session=session)


def build_service(
    name: str,
    *,
    transport: Transport,
    db_path: Path,
    clock: Clock,
    settings: CloudSettings | None = None,
    root: str = DEFAULT_ROOT,
    client_id: str | None = None,
) -> Service:
    """Build the service called `name`, ready to `run()`."""
    settings = settings or CloudSettings()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    bus = Bus(
        component=name,
        transport=transport,
        db=open_database(db_path),
        root=root,
        client_id=client_id or f"murmur-{name}",
        source=service_source(name),
        presence=service_presence(name),
    )
    if name == "package":
        return PackageService(bus, settings.package)
    if name == "scheduler":
        return SchedulerService(bus, clock, settings.scheduler)
    if name == "delivery":
        return DeliveryService(bus, clock)
    msg = f"no service called {name!r}; one of {', '.join(SERVICE_NAMES)}"
    raise ValueError(msg)
