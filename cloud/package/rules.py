"""What the fleet carries: pure rules, no I/O."""

from dataclasses import dataclass, field
from enum import StrEnum

from contracts.events import PackageInfo, PackageRejectionReason
from contracts.ids import PackageSize


class PackageStatus(StrEnum):
    """Where a package is, as the Package service knows it."""

    READY = "ready"
    REJECTED = "rejected"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    STRANDED = "stranded"
    RELEASED = "released"  # the delivery ended before pickup; the package stays with its owner


@dataclass(frozen=True)
class PackagePolicy:
    """The fleet's limits. The defaults fit the simulated airframe (2.5 kg, no large boxes)."""

    max_weight_kg: float = 2.5
    sizes: frozenset[PackageSize] = frozenset({PackageSize.SMALL, PackageSize.MEDIUM})
    refused_tags: frozenset[str] = field(
        default_factory=lambda: frozenset({"hazmat", "lithium-bulk", "live-animal"})
    )


Refusal = tuple[PackageRejectionReason, str]


def refusal(package: PackageInfo, policy: PackagePolicy) -> Refusal | None:
    """Why the fleet cannot carry `package`, or None if it can. The first failing rule wins."""
    if package.weight_kg > policy.max_weight_kg:
        return (
            PackageRejectionReason.OVERWEIGHT,
            f"{package.weight_kg:g} kg is over the fleet's maximum of {policy.max_weight_kg:g} kg",
        )
    if package.size not in policy.sizes:
        carried = ", ".join(sorted(s.value for s in policy.sizes))
        return PackageRejectionReason.TOO_LARGE, f"size {package.size.value}; carried: {carried}"
    refused = {tag.strip().lower() for tag in policy.refused_tags}
    if package.tag is not None and package.tag.strip().lower() in refused:
        return PackageRejectionReason.TAG_REFUSED, f"tag {package.tag!r} is not carried"
    return None


def duplicate(package_id: str, owner_delivery: str) -> Refusal:
    """The refusal of a package id already recorded for another delivery."""
    return (
        PackageRejectionReason.DUPLICATE_PACKAGE,
        f"package {package_id} already belongs to delivery {owner_delivery}",
    )
