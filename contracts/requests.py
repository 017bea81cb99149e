"""Building a delivery request the way every client does: the client owns the delivery id."""

import uuid
from datetime import datetime

from contracts.events import DeliveryRequested, PackageInfo
from contracts.ids import Location, PackageSize


def new_delivery_id() -> str:
    """A fresh delivery id; the client owns it."""
    return f"del-{uuid.uuid4().hex[:16]}"


def delivery_request(
    *,
    pickup: Location,
    dropoff: Location,
    weight_kg: float,
    size: PackageSize = PackageSize.SMALL,
    deadline: datetime | None = None,
    owner_id: str = "cli",
    tag: str | None = None,
    delivery_id: str | None = None,
) -> DeliveryRequested:
    """Build a request; pydantic's ValidationError names any bad field."""
    delivery_id = delivery_id or new_delivery_id()
    return DeliveryRequested(
        delivery_id=delivery_id,
        owner_id=owner_id,
        pickup=pickup,
        dropoff=dropoff,
        deadline=deadline,
        package=PackageInfo(
            package_id=f"pkg-{delivery_id}"[:64], size=size, weight_kg=weight_kg, tag=tag
        ),
    )
