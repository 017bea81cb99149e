"""Who publishes each event type, and the CloudEvents `source` that producer must carry.

One table for the contract document (`contracts.asyncapi`), the decoder's source check
(`contracts.codec`) and the broker ACL: the contract says who publishes what.
"""

from typing import Any

# Who publishes each type, by longest matching type prefix. A new type without an entry here
# makes the document refuse to build, so the contract always says who publishes what.
_PRODUCER_BY_PREFIX = {
    "murmur.delivery.requested.": "client",
    "murmur.delivery.cancellation_requested.": "client",
    "murmur.package.": "package",
    "murmur.delivery.drone_assigned.": "scheduler",
    "murmur.delivery.unassignable.": "scheduler",
    "murmur.job.offered.": "scheduler",
    "murmur.job.cancelled.": "scheduler",
    "murmur.job.": "agent",
    "murmur.delivery.status_changed.": "delivery",
    "murmur.delivery.trace_requested.": "client",
    "murmur.delivery.traced.": "delivery",
    "murmur.drone.command.": "operator",
    "murmur.drone.": "agent",
    "murmur.service.": "service",
    "murmur.dead_letter.": "any",
}
PRODUCERS = {
    "client": "a client application (requests and cancels deliveries)",
    "package": "the Package service",
    "scheduler": "the Drone Scheduler service",
    "delivery": "the Delivery service",
    "agent": "a drone's agent (about that drone only)",
    "operator": "an operator's console",
    "service": "any cloud service (about itself only)",
    "any": "any component that refused an input",
}


def drone_source(drone_id: str) -> str:
    """The CloudEvents `source` of everything a drone publishes."""
    return f"/drones/{drone_id}"


def service_source(name: str) -> str:
    """The CloudEvents `source` of everything a cloud service publishes."""
    return f"/cloud/{name}"


def producer_of(event_type: str) -> str:
    """The key in PRODUCERS of whoever publishes `event_type`."""
    prefixes = [p for p in _PRODUCER_BY_PREFIX if event_type.startswith(p)]
    if not prefixes:
        msg = f"no producer is declared for {event_type!r} in contracts.producers"
        raise LookupError(msg)
    return _PRODUCER_BY_PREFIX[max(prefixes, key=len)]


def expected_source(event_type: str, data: Any) -> str | None:  # noqa: ANN401 - any event's data
    """The only `source` an event of this type may carry, or None where any source may publish it.

    A drone speaks only about itself (`/drones/{drone_id}`), each service only as itself
    (`/cloud/{name}`); clients, operators and dead letters come from many places, and the
    broker's ACL is what limits them.
    """
    try:
        producer = producer_of(event_type)
    except LookupError:
        return None  # a type the contract does not list (the contract document refuses it)
    if producer == "agent":
        return drone_source(data.drone_id)
    if producer in {"package", "scheduler", "delivery"}:
        return service_source(producer)
    if producer == "service":
        return service_source(data.service)
    return None
