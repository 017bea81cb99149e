"""The Package service's handlers: decide, record and emit inside the bus transaction."""

from typing import Any

from bus.bus import Bus
from bus.outbox import Outbox
from cloud.package.rules import PackagePolicy, PackageStatus, Refusal, duplicate, refusal
from cloud.package.store import PackageStore
from contracts import Envelope
from contracts.events import (
    DeliveryCancellationRequested,
    DeliveryRequested,
    DeliveryUnassignable,
    JobFailed,
    JobPhase,
    JobProgressed,
    JobSucceeded,
    PackageReady,
    PackageRejected,
    PackageState,
    PackageStranded,
)

# A package is with its drone from the moment it flies towards the dropoff.
_IN_TRANSIT_PHASES = frozenset({JobPhase.TO_DROPOFF, JobPhase.RELEASING})
_BEFORE_PICKUP = frozenset({PackageStatus.READY})


class PackageService:
    """Validates packages and follows them from ready to delivered or stranded."""

    def __init__(self, bus: Bus, policy: PackagePolicy | None = None) -> None:
        self.bus = bus
        self.policy = policy or PackagePolicy()
        self.store = PackageStore(bus.db)
        bus.route(DeliveryRequested, self._on_requested)
        bus.route(DeliveryCancellationRequested, self._on_released)
        bus.route(DeliveryUnassignable, self._on_released)
        bus.route(JobProgressed, self._on_progress)
        bus.route(JobSucceeded, self._on_succeeded)
        bus.route(JobFailed, self._on_failed)

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.bus.run()

    def _on_requested(self, event: Envelope[Any], out: Outbox) -> None:
        request: DeliveryRequested = event.data
        package = request.package
        known = self.store.get(package.package_id)
        if known is not None:
            if known.delivery_id != request.delivery_id:
                _reject(request, duplicate(package.package_id, known.delivery_id), out)
            return  # the same request again, under a new event id: answered already
        refused = refusal(package, self.policy)
        self.store.add(
            package_id=package.package_id,
            delivery_id=request.delivery_id,
            status=PackageStatus.REJECTED if refused else PackageStatus.READY,
            info=package.model_dump_json(),
            pickup=request.pickup,
            detail=refused[1] if refused else None,
        )
        if refused is not None:
            _reject(request, refused, out)
            return
        out.emit(
            PackageReady(
                package_id=package.package_id,
                delivery_id=request.delivery_id,
                size=package.size,
                weight_kg=package.weight_kg,
            )
        )

    def _on_released(self, event: Envelope[Any], _: Outbox) -> None:
        known = self.store.of_delivery(event.data.delivery_id)
        if known is not None and known.status in _BEFORE_PICKUP:
            self.store.set_status(known.package_id, PackageStatus.RELEASED)

    def _on_progress(self, event: Envelope[Any], _: Outbox) -> None:
        progress: JobProgressed = event.data
        known = self.store.of_delivery(progress.delivery_id)
        if known is None or known.status is not PackageStatus.READY:
            return
        if progress.phase in _IN_TRANSIT_PHASES:
            self.store.set_status(known.package_id, PackageStatus.IN_TRANSIT)

    def _on_succeeded(self, event: Envelope[Any], _: Outbox) -> None:
        success: JobSucceeded = event.data
        known = self.store.of_delivery(success.delivery_id)
        if known is not None and known.status in {PackageStatus.READY, PackageStatus.IN_TRANSIT}:
            self.store.set_status(
                known.package_id, PackageStatus.DELIVERED, location=success.location
            )

    def _on_failed(self, event: Envelope[Any], out: Outbox) -> None:
        failure: JobFailed = event.data
        known = self.store.of_delivery(failure.delivery_id)
        if failure.package_state is not PackageState.ON_BOARD or known is None:
            return  # not loaded: the delivery is rescheduled; released: it was delivered
        if known.status not in {PackageStatus.READY, PackageStatus.IN_TRANSIT}:
            return
        # Without a position in the report, the last place we know it was is the pickup.
        where = failure.location or known.location or known.pickup
        self.store.set_status(known.package_id, PackageStatus.STRANDED, location=where)
        out.emit(
            PackageStranded(
                package_id=known.package_id,
                delivery_id=failure.delivery_id,
                drone_id=failure.drone_id,
                location=where,
            )
        )


def _reject(request: DeliveryRequested, refused: Refusal, out: Outbox) -> None:
    reason, detail = refused
    out.emit(
        PackageRejected(
            package_id=request.package.package_id,
            delivery_id=request.delivery_id,
            reason=reason,
            detail=detail,
        )
    )
